from __future__ import annotations

from passk_plugin.report import points, tables
from passk_plugin.report.collect import collect_run

from .conftest import WIDE_TASKS


def test_roles_curve_and_one_colour_per_point(wide_run):
    records = collect_run(wide_run)
    late = points.late_point(records)
    assert late is not None and late.id == "wise-ft_a1.000"
    assert points.early_point(records).id == "wise-ft_a0.000"
    for task in WIDE_TASKS:
        curve = points.temperature_curve(records, task)
        # The late checkpoint's own point (T = 0.6) sits between its T = 0.3 and T = 1 points.
        assert [r.id for r in curve] == ["late-T0.3", "wise-ft_a1.000", "late-T1"]
    colours = points.point_colours(records)
    assert len(set(colours.values())) == len(records)  # every point its own colour
    board = tables.build_leaderboard(records)
    assert {r.id: r.colour for r in board.rows} == colours  # the tables use the same ones
    labels = {points.short_label(r, records) for r in records}
    assert {"wise-ft α=0.5", "slerp t=0.5", "T=1 (late)"} <= labels

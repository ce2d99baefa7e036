from __future__ import annotations

import json

import pytest

from passk_plugin.grid import checkpoint_points, early_late_points, unique_points
from passk_plugin.report import build_report, points, tables
from passk_plugin.report.collect import collect_run
from passk_plugin.sweep_store import RunStore

from .conftest import WIDE_TASKS, N
from .test_trajectory import TRAJECTORY, WISE, _store


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


def test_headline_and_paired_take_the_same_late_point(tmp_path):
    # A trajectory plus an early × late grid: α = 0 and 1 are checkpoint points, and two late
    # checkpoints each end a WiSE-FT line, so "the late checkpoint" has several candidates.
    paths = {s: str(tmp_path / "train" / f"checkpoint-{s}") for s in TRAJECTORY}
    grid = unique_points(
        checkpoint_points(paths.values())
        + early_late_points(paths[100], [paths[300], paths[400]], [0.0, 0.5, 1.0])
    )
    assert sorted(p.method for p in grid) == ["checkpoint"] * 4 + ["wise-ft"] * 2
    store = RunStore(tmp_path / "run")
    for p in grid:
        assert p.step is not None
        _store(store, p, WISE[p.step] if p.method == "wise-ft" else TRAJECTORY[p.step])
    records = collect_run(store.root)
    late = points.late_point(records)
    assert late is not None and late.id == "ckpt_checkpoint-400"  # the latest late one
    assert points.early_point(records).id == "ckpt_checkpoint-100"

    written = build_report(store.root, with_plots=False)
    rows = json.loads(written["paired.json"].read_text())
    assert {r["reference"] for r in rows if r["reference_role"] == "late"} == {late.id}
    board = written["leaderboard.md"].read_text()

    def sign(x: float) -> str:
        return f"{x:+.3f}".replace("-", "−")

    # Each headline sentence's difference "against the late checkpoint" is paired.json's row
    # for that point against its late reference. Against checkpoint-400 (5 of 10 problems
    # always solved, Pass@1 0.5) α = 0.5 gains 0 on Pass@1 and 0.5 on Pass@8; against
    # checkpoint-300 it would be 0.1 and 0.6.
    for metric, best, delta in (
        ("pass@1", "ckpt_checkpoint-400_wise-ft_a0.500", 0.0),
        (f"pass@{N}", "ckpt_checkpoint-300_wise-ft_a0.500", 1.0 - 5 / 10),
    ):
        (row,) = [
            r
            for r in rows
            if (r["point"], r["metric"], r["reference_role"]) == (best, metric, "late")
        ]
        assert row["delta"] == pytest.approx(delta, abs=1e-12)
        diff = f"{sign(row['delta'])} (95% CI {sign(row['ci_low'])} to {sign(row['ci_high'])})"
        label = metric.replace("pass", "Pass")
        sentence = f"{label} is highest at α=0.5 with {row['a']:.3f}, {diff} against the late"
        assert sentence in board

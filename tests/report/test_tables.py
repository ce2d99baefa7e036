from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest

from passk_plugin import metrics
from passk_plugin.report import significance, tables
from passk_plugin.report.collect import PointRecord, TaskResult, collect_run

from .conftest import KS, POINTS, TASK, N


def _counts_rec(pid: str, c: list[int], n: int = 4, task: str = "t", **kw) -> PointRecord:
    """A point whose stored metrics are computed from per-problem counts, as the tasks do."""
    c_arr = np.asarray(c)
    vals, errs = {}, {}
    for k in range(1, n + 1):
        vals[f"pass@{k}"], errs[f"pass@{k}"] = metrics.mean_and_stderr(
            metrics.pass_at_k(n, c_arr, k)
        )
    n_arr = np.full(len(c), n)
    tr = TaskResult(task, vals, errs, n=n_arr, c=c_arr, rho=c_arr / n)
    return PointRecord(pid, pid, tasks={task: tr}, **kw)


def test_short_headers_and_key_metrics():
    assert tables.short_header("pass@16") == "Pass@16"
    assert tables.short_header("maj@16") == "maj@16"
    assert tables.short_header("g-pass@16_0.5") == "G-Pass@16 τ=0.5"
    assert tables.short_header("mg-pass@16") == "mG-Pass@16"
    shown = [
        m for m in ("pass@1", "pass@2", "pass@16", "maj@4", "maj@16") if tables.is_key_metric(m, 16)
    ]
    assert shown == ["pass@1", "pass@16", "maj@16"]
    assert tables.is_key_metric("distinct_answers", 16) and tables.is_key_metric("frac_rho_0", 16)


def test_best_only_when_significantly_ahead_of_every_other_point():
    far_ahead = _counts_rec("a", [4] * 40)
    behind = _counts_rec("b", [1] * 40)
    board = tables.build_leaderboard([far_ahead, behind])
    assert board.marks["t/pass@1"] == {"a": tables.BEST}
    # One problem of forty apart: the top value is not distinguishable from the next.
    close = _counts_rec("c", [4] * 39 + [3])
    board = tables.build_leaderboard([far_ahead, close, behind])
    assert board.marks["t/pass@1"] == {"a": tables.TIE, "c": tables.TIE}
    assert "t/pass@1" not in board.best
    # The decision is the paired test's: c against a on the same problems.
    d = significance.compare(close, far_ahead, "t", "pass@1")
    assert d is not None and not d.significant and d.delta == pytest.approx(-1 / 160)


def test_untestable_columns_are_not_marked():
    # Stored means without per-problem counts: nothing can be tested, nothing is marked.
    recs = [
        PointRecord("a", "a", tasks={"t": TaskResult("t", {"pass@1": 0.9}, {"pass@1": 0.01})}),
        PointRecord("b", "b", tasks={"t": TaskResult("t", {"pass@1": 0.1}, {"pass@1": 0.01})}),
    ]
    assert tables.build_leaderboard(recs).marks == {}


def _late_setup():
    # Late: every problem solved always or never (rho piles at 0 and 1).
    late = _counts_rec("late", [4, 0] * 20, method="wise-ft", alpha=1.0, temperature=0.6)
    # Same Pass@1, every problem half-solved: Pass@4 = 1 against 0.5.
    spread = _counts_rec("mid", [2] * 40, method="wise-ft", alpha=0.5, temperature=0.6)
    # Pass@4 also 1, but Pass@1 only 0.25: a significant loss on Pass@1.
    costly = _counts_rec("low", [1] * 40, method="wise-ft", alpha=0.0, temperature=0.6)
    return [costly, spread, late]


def test_beats_late_needs_a_pass_at_kmax_gain_without_a_pass1_loss():
    board = tables.build_leaderboard(_late_setup())
    assert board.late_id == "late" and board.k_max == {"t": 4}
    flags = {r.id: r.beats_late["t"] for r in board.rows}
    assert flags == {"mid": True, "low": False, "late": False}
    md = tables.to_markdown(board)
    assert sum("★" in line for line in md.splitlines() if line.startswith("| ")) == 1
    mid_line = next(line for line in md.splitlines() if line.startswith("| α=0.5 "))
    assert mid_line.rstrip(" |").endswith("★")


def test_markdown_one_table_per_task_short_headers_marks_match(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    md = tables.to_markdown(board, intro=["The answer."])
    assert md.index("The answer.") < md.index(f"## {TASK}")
    assert md.count(TASK) == 1  # the task name once, as the section heading
    head = next(line for line in md.splitlines() if line.startswith("| point"))
    assert [h.strip() for h in head.strip("|").split("|")] == [
        "point",
        "α",
        "T",
        "Pass@1",
        "Pass@8",
    ]
    rows = [line for line in md.splitlines() if line.startswith("| ") and line != head]
    labels = {r.id: r.label for r in board.rows}
    cols = [c for c in board.columns if c.shown]
    seen = 0
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        row = next(r for r in board.rows if labels[r.id] == cells[0])
        for col, cell in zip(cols, cells[3:], strict=True):
            mark = board.mark(row, col)
            assert cell.startswith("**") == (mark == tables.BEST), (row.id, col.key, cell)
            assert ("≈" in cell) == (mark == tables.TIE), (row.id, col.key, cell)
            seen += mark is not None
    assert seen == sum(len(v) for k, v in board.marks.items() if k in {c.key for c in cols})
    assert seen > 0


def test_csv_carries_the_stored_numbers_at_full_precision(synthetic_run):
    records = collect_run(synthetic_run)
    text = tables.to_csv(tables.build_leaderboard(records))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(POINTS)
    for row in rows:
        c = np.asarray(POINTS[row["id"]][3])
        for k in KS:
            mean, se = metrics.mean_and_stderr(metrics.pass_at_k(N, c, k))
            assert float(row[f"{TASK}/pass@{k}"]) == mean
            assert float(row[f"{TASK}/pass@{k}_stderr"]) == se
        assert row["method"] == POINTS[row["id"]][0]


def test_json_flags_match_the_marks(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    doc = json.loads(tables.to_json(board))
    assert doc["best"] == board.best and doc["marks"] == board.marks
    for row in doc["rows"]:
        for key, cell in row["values"].items():
            mark = board.marks.get(key, {}).get(row["id"])
            assert cell["best"] == (mark == tables.BEST) and cell["tie"] == (mark == tables.TIE)


def test_averages_across_tasks_combine_stderrs(two_task_run):
    board = tables.build_leaderboard(collect_run(two_task_run))
    keys = [c.key for c in board.columns]
    assert "avg/pass@1" in keys and keys.index("avg/pass@1") > keys.index("t2/pass@1")
    assert not any(c.shown for c in board.columns if c.task == tables.AVG)
    row = next(r for r in board.rows if r.id == "a")
    assert row.values["avg/pass@1"] == pytest.approx(
        (row.values["t1/pass@1"] + row.values["t2/pass@1"]) / 2
    )
    assert row.stderrs["avg/pass@1"] == pytest.approx(
        math.hypot(row.stderrs["t1/pass@1"], row.stderrs["t2/pass@1"]) / 2
    )


def test_no_average_for_a_single_task(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    assert not [c for c in board.columns if c.task == tables.AVG]


def test_html_groups_columns_per_task_and_hides_the_rest(wide_run):
    board = tables.build_leaderboard(collect_run(wide_run))
    frag = tables.leaderboard_html(board)
    thead = frag[frag.index("<thead>") : frag.index("</thead>")]
    for task in board.tasks:
        name = "mean over tasks" if task == tables.AVG else task
        assert thead.count(f">{name}</th>") == 1
    headers = re.findall(r'<th(?: class="extra")? data-col="\d+" title="[^"]*">([^<]*)</th>', thead)
    assert headers == [c.header for c in board.columns]
    assert thead.count('class="extra"') == sum(not c.shown for c in board.columns)
    assert "toggle-all" in frag
    # every numeric cell carries its full-precision value for sorting
    first = board.rows[0]
    col = board.columns[0]
    assert f'data-v="{first.values[col.key]!r}"' in frag
    n_marked = sum(len(v) for v in board.marks.values())
    assert len(re.findall(r'<td class="(?:extra )?(?:best|tie)"', frag)) == n_marked

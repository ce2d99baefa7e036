from __future__ import annotations

import csv
import io
import json
import math
import re

import numpy as np
import pytest

from passk_plugin import metrics
from passk_plugin.report import tables
from passk_plugin.report.collect import PointRecord, TaskResult, collect_run

from .conftest import KS, POINTS, TASK, N


def _rec(pid: str, values: dict[str, float], task: str = "t") -> PointRecord:
    errs = {k: 0.01 for k in values}
    return PointRecord(pid, pid, tasks={task: TaskResult(task, values, errs)})


def test_best_per_column_marks_ties_and_skips_missing():
    board = tables.build_leaderboard(
        [
            _rec("a", {"pass@1": 0.5, "pass@2": 0.7}),
            _rec("b", {"pass@1": 0.5, "pass@2": 0.6}),
            _rec("c", {"pass@1": 0.2}),
        ]
    )
    assert board.best == {"t/pass@1": ["a", "b"], "t/pass@2": ["a"]}


def test_markdown_bolds_exactly_the_best_cells(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    md = tables.to_markdown(board)
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(POINTS)
    bold = 0
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        pid = cells[0]
        for col, cell in zip(board.columns, cells[4:], strict=True):
            assert cell.startswith("**") == (pid in board.best[col.key]), (pid, col.key, cell)
            bold += cell.startswith("**")
    assert bold == sum(len(v) for v in board.best.values())
    # pass@1 is best at alpha=1 / T=0.5 (tied: same mean c); pass@8 at alpha=0.5 (wider support)
    c = {pid: np.asarray(v[3]) for pid, v in POINTS.items()}
    p1 = {pid: metrics.pass_at_k(N, cc, 1).mean() for pid, cc in c.items()}
    top = max(p1.values())
    assert set(board.best[f"{TASK}/pass@1"]) == {p for p, v in p1.items() if v == top}


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


def test_json_flags_best(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    doc = json.loads(tables.to_json(board))
    assert doc["best"] == board.best
    for row in doc["rows"]:
        for key, cell in row["values"].items():
            assert cell["best"] == (row["id"] in board.best[key])


def test_averages_across_tasks_combine_stderrs(two_task_run):
    board = tables.build_leaderboard(collect_run(two_task_run))
    keys = [c.key for c in board.columns]
    assert "avg/pass@1" in keys and keys.index("avg/pass@1") > keys.index("t2/pass@1")
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


def test_html_is_self_contained_and_sortable(synthetic_run):
    board = tables.build_leaderboard(collect_run(synthetic_run))
    png = b"\x89PNG\r\n\x1a\nfake"
    page = tables.to_html(board, "T <&>", images={"plot.png": png})
    assert page.startswith("<!DOCTYPE html>")
    assert "T &lt;&amp;&gt;" in page  # escaped
    assert not re.search(r"(?:https?:)?//[a-z]", page)  # no external resources
    assert not re.search(r"<(?:link|iframe)\b", page) and "<script src" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script>" in page and "addEventListener('click'" in page
    n_best = sum(len(v) for v in board.best.values())
    assert page.count('class="best"') == n_best
    # every numeric cell carries its full-precision value for sorting
    assert f'data-v="{board.rows[0].values[board.columns[0].key]!r}"' in page

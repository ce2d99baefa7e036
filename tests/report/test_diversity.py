from __future__ import annotations

import json
import math

import pytest

from passk_plugin.report import collect_run, diversity
from passk_plugin.sweep_store import RunStore

from .conftest import POINTS, TASK, N, write_point


def test_rho_shares_from_counts(synthetic_run):
    records = {r.id: r for r in collect_run(synthetic_run)}
    for pid, (*_, counts) in POINTS.items():
        got = diversity.diversity(records[pid], TASK)
        assert got["rho0_share"] == pytest.approx(sum(c == 0 for c in counts) / len(counts))
        assert got["rho1_share"] == pytest.approx(sum(c == N for c in counts) / len(counts))
        assert "distinct_answers" not in got  # the fixture logs no per-sample answers
    png = diversity.diversity_plot(list(records.values()), TASK)
    assert png is not None and png.startswith(b"\x89PNG")
    assert diversity.diversity_plot(list(records.values()), "other") is None


def test_answer_classes_from_logged_verdicts(tmp_path):
    store = RunStore(tmp_path / "run")
    write_point(store, "p", "wise-ft", 1.0, 0.6, {TASK: [1, 2]})
    path = store.point_dir("p") / f"samples_{TASK}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    answers = [["7", "7", "8", None, "9", "9", "9", "9"], ["1", "2", "3", "4", "5", "6", "7", "8"]]
    for row, ans in zip(rows, answers, strict=True):
        verdicts = [json.dumps({"correct": a == "7", "answer": a, "result": ""}) for a in ans]
        row["filtered_resps"] = [verdicts]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (record,) = collect_run(store.root)
    got = diversity.diversity(record, TASK)
    assert got["distinct_answers"] == pytest.approx((3 + 8) / 2)
    # Problem 0: 7 answers over 3 classes (2, 1, 4); problem 1: 8 equally likely classes.
    h0 = -sum(p * math.log2(p) for p in (2 / 7, 1 / 7, 4 / 7))
    assert got["answer_entropy"] == pytest.approx((h0 + 3.0) / 2)

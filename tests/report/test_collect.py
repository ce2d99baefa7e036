from __future__ import annotations

import json
import math

import numpy as np
import pytest

from passk_plugin.report.collect import (
    collect_lm_eval_dirs,
    collect_run,
    counts_from_samples,
    split_metrics,
    task_temperature,
)
from passk_plugin.sweep_store import RunStore

from .conftest import KS, POINTS, TASK, N, results_doc, samples_lines


def test_collect_run_reads_every_point(synthetic_run):
    records = collect_run(synthetic_run)
    assert {r.id for r in records} == set(POINTS)
    # merges by alpha first, then the temperature baseline by temperature
    assert [r.id for r in records] == [
        "wise-ft_a0.000",
        "wise-ft_a0.500",
        "wise-ft_a1.000",
        "late-T0.5",
        "late-T1",
    ]
    for rec in records:
        method, alpha, temp, c = POINTS[rec.id]
        assert (rec.method, rec.alpha, rec.temperature) == (method, alpha, temp)
        tr = rec.tasks[TASK]
        assert tr.ks == list(KS)
        assert list(tr.metrics) == [f"pass@{k}" for k in KS]  # n and c are counts, not scores
        np.testing.assert_array_equal(tr.c, c)
        np.testing.assert_array_equal(tr.n, [N] * len(c))
        np.testing.assert_allclose(tr.rho, np.asarray(c) / N)
        assert tr.metrics["pass@1"] == pytest.approx(np.mean(c) / N)


def test_unfinished_points_are_not_reported(synthetic_run):
    store = RunStore(synthetic_run)
    (store.point_dir("late-T1") / "DONE.json").unlink()
    assert "late-T1" not in {r.id for r in collect_run(synthetic_run)}


def test_split_metrics_prefers_the_all_filter_and_reads_na_stderr():
    block = {
        "alias": "t",
        "pass@1,none": 0.9,
        "pass@1,all": 0.5,
        "pass@1_stderr,all": "N/A",
        "maj@2,all": 0.25,
        "pass@2,all": 0.75,
        "c,all": 3.0,
    }
    vals, errs, filt = split_metrics(block)
    assert filt == "all"
    assert list(vals) == ["pass@1", "pass@2", "maj@2"]
    assert vals["pass@1"] == 0.5
    assert math.isnan(errs["pass@1"]) and math.isnan(errs["maj@2"])


def test_split_metrics_falls_back_to_the_first_filter():
    vals, _, filt = split_metrics({"exact_match,strict-match": 0.4, "exact_match,flexible": 0.6})
    assert filt == "strict-match" and vals == {"exact_match": 0.4}


def test_counts_fall_back_to_per_problem_pass_at_1():
    rows = [{"doc_id": 1, "pass@1": 0.25}, {"doc_id": 0, "pass@1": 1.0}]
    n, c, rho = counts_from_samples(rows)
    assert n is None and c is None
    np.testing.assert_allclose(rho, [1.0, 0.25])  # ordered by doc_id


def test_temperature_is_zero_for_greedy():
    doc = {"configs": {"t": {"generation_kwargs": {"do_sample": False, "temperature": 0.7}}}}
    assert task_temperature(doc, "t") == 0.0
    assert task_temperature({"configs": {}}, "t") is None


def test_groups_are_not_tasks(tmp_path):
    store = RunStore(tmp_path / "r")
    doc = results_doc({"t1": [1, 2]}, 0.6)
    doc["results"]["passk"] = {"alias": "passk", "pass@1,all": 0.1}
    doc["groups"] = {"passk": {"pass@1,all": 0.1}}
    spec = {
        "id": "p",
        "method": "decoding",
        "checkpoints": ["/x"],
        "sampling": {"temperature": 0.6},
    }
    store.write_point("p", {"point.json": json.dumps(spec), "results.json": json.dumps(doc)}, {})
    (rec,) = collect_run(store.root)
    assert list(rec.tasks) == ["t1"]
    assert rec.tasks["t1"].rho is None  # no samples stored


def _lm_eval_dir(root, model_dir: str, ts: str, pretrained: str, c: list[int]):
    d = root / model_dir
    d.mkdir(parents=True, exist_ok=True)
    doc = results_doc({TASK: c}, 0.6, model_args=f"pretrained={pretrained},dtype=float32")
    (d / f"results_{ts}.json").write_text(json.dumps(doc))
    (d / f"samples_{TASK}_{ts}.jsonl").write_text(samples_lines(c))


def test_collect_lm_eval_dirs(tmp_path):
    _lm_eval_dir(tmp_path / "out", "org__model-a", "2025-01-01T00-00-00", "org/model-a", [1, 2])
    _lm_eval_dir(tmp_path / "out", "org__model-b", "2025-01-01T00-00-00", "org/model-b", [8, 8])
    _lm_eval_dir(tmp_path / "out", "org__model-b", "2025-01-02T00-00-00", "org/model-b", [0, 8])
    records = collect_lm_eval_dirs([tmp_path / "out"])
    labels = sorted(r.label for r in records)
    assert labels == [
        "org/model-a",
        "org/model-b (2025-01-01T00-00-00)",
        "org/model-b (2025-01-02T00-00-00)",
    ]
    by = {r.label: r for r in records}
    np.testing.assert_array_equal(by["org/model-a"].tasks[TASK].c, [1, 2])
    assert by["org/model-a"].temperature == 0.6
    assert all("/" not in r.id for r in records)


def test_collect_lm_eval_dirs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lm_eval results"):
        collect_lm_eval_dirs([tmp_path])
    with pytest.raises(FileNotFoundError, match="not found"):
        collect_lm_eval_dirs([tmp_path / "missing"])

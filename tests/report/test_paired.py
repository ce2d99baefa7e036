from __future__ import annotations

import csv
import json
from math import comb
from pathlib import Path

import numpy as np
import pytest

from passk_plugin import stats
from passk_plugin.cli import main
from passk_plugin.report import collect_run, paired
from passk_plugin.sweep_store import RunStore

from .conftest import POINTS, TASK, N, results_doc, samples_lines


def _rows(run: Path) -> list[paired.PairedRow]:
    return paired.paired_rows(collect_run(run), n_resamples=2000)


def test_references_and_metrics(synthetic_run):
    rows = _rows(synthetic_run)
    roles = {(r.reference_role, r.reference) for r in rows}
    assert ("late", "wise-ft_a1.000") in roles and ("early", "wise-ft_a0.000") in roles
    # The late checkpoint's best temperature point on Pass@8 is T = 1 (0.8 against 0.6).
    best = {(r.metric, r.reference) for r in rows if r.reference_role == "best_temperature"}
    assert best == {("pass@8", "late-T1")}
    assert {r.metric for r in rows} == {"pass@1", "pass@8"}  # no answers logged: no maj@k
    assert not [r for r in rows if r.point == r.reference]
    # Each point against the late checkpoint: 4 points x 2 metrics.
    assert len([r for r in rows if r.reference_role == "late"]) == 8


def test_delta_is_the_difference_of_stored_metrics_and_holm_covers_the_table(synthetic_run):
    rows = _rows(synthetic_run)
    store = RunStore(synthetic_run)
    for r in rows:
        a = json.loads((store.point_dir(r.point) / "results.json").read_text())
        b = json.loads((store.point_dir(r.reference) / "results.json").read_text())
        stored_a = a["results"][TASK][f"{r.metric},all"]
        stored_b = b["results"][TASK][f"{r.metric},all"]
        assert (r.a, r.b, r.delta) == (stored_a, stored_b, stored_a - stored_b)
        assert r.ci_low - 1e-12 <= r.delta <= r.ci_high + 1e-12 and r.n_problems == 10
    assert [r.p_holm for r in rows] == stats.holm([r.p_value for r in rows])


def test_per_problem_values_are_independent_recomputations(synthetic_run):
    """The interval of one row, recomputed from the fixture's counts with math.comb."""
    rows = _rows(synthetic_run)
    (row,) = [
        r
        for r in rows
        if (r.point, r.reference_role, r.metric) == ("wise-ft_a0.500", "late", "pass@8")
    ]
    c_a, c_b = POINTS["wise-ft_a0.500"][3], POINTS["wise-ft_a1.000"][3]
    per_a = [1 - comb(N - c, 8) / comb(N, 8) for c in c_a]
    per_b = [1 - comb(N - c, 8) / comb(N, 8) for c in c_b]
    want = stats.paired_compare(np.array(per_a), np.array(per_b), n_resamples=2000)
    assert (row.ci_low, row.ci_high, row.p_value) == pytest.approx(
        (want.ci_low, want.ci_high, want.p_value), abs=1e-12
    )


def _row(metric: str, delta: float, p_holm: float, point: str = "x") -> paired.PairedRow:
    return paired.PairedRow(
        task="t",
        metric=metric,
        point=point,
        reference="late",
        reference_role="late",
        a=0.5 + delta,
        b=0.5,
        delta=delta,
        ci_low=delta - 0.1,
        ci_high=delta + 0.1,
        p_value=p_holm,
        p_holm=p_holm,
        n_problems=100,
    )


def test_beats_late():
    gain = _row("pass@16", 0.1, 0.01)
    assert paired.beats_late([gain, _row("pass@1", -0.02, 0.3)], "x", "t")
    assert not paired.beats_late([gain, _row("pass@1", -0.05, 0.01)], "x", "t")
    assert not paired.beats_late([_row("pass@16", 0.1, 0.2)], "x", "t")
    assert not paired.beats_late([gain], "y", "t")


def test_tables(synthetic_run):
    rows = _rows(synthetic_run)
    md = paired.to_markdown(rows)
    assert "Holm" in md and md.count("\n| gsm8k_passk |") == len(rows)
    parsed = list(csv.DictReader(paired.to_csv(rows).splitlines()))
    assert len(parsed) == len(rows) and float(parsed[0]["delta"]) == rows[0].delta
    doc = json.loads(paired.to_json(rows))
    assert doc[0]["p_holm"] == rows[0].p_holm and set(doc[0]) == set(paired.COLUMNS)
    png = paired.forest_plot(rows, TASK)
    assert png is not None and png.startswith(b"\x89PNG")
    assert paired.forest_plot(rows, "other") is None


def _lm_eval_dir(root: Path, model: str, c: list[int]) -> Path:
    out = root / model / model
    out.mkdir(parents=True)
    ts = "2025-01-01T00-00-00.000000"
    doc = results_doc({TASK: c}, 0.6, model_args=f"pretrained={model}")
    (out / f"results_{ts}.json").write_text(json.dumps(doc))
    (out / f"samples_{TASK}_{ts}.jsonl").write_text(samples_lines(c))
    return root / model


def test_report_results_dirs_compare_with_the_first(tmp_path):
    base = _lm_eval_dir(tmp_path, "base", POINTS["wise-ft_a1.000"][3])
    other = _lm_eval_dir(tmp_path, "other", POINTS["wise-ft_a0.500"][3])
    third = _lm_eval_dir(tmp_path, "third", POINTS["late-T1"][3])
    out = tmp_path / "rep"
    assert main(["report", "--results", str(base), str(other), str(third), "--out", str(out)]) == 0
    doc = json.loads((out / "paired.json").read_text())
    assert {r["reference"] for r in doc} == {"base"}
    assert {r["reference_role"] for r in doc} == {"reference"}
    assert {r["point"] for r in doc} == {"other", "third"}
    assert (out / f"forest_{TASK}.png").stat().st_size > 0


def test_compare_points_matches_the_table(synthetic_run):
    records = {r.id: r for r in collect_run(synthetic_run)}
    rows = _rows(synthetic_run)
    got = paired.compare_points(
        records["wise-ft_a0.500"],
        records["late-T1"],
        TASK,
        ["pass@8"],
        n_resamples=2000,
    )
    (row,) = [
        r
        for r in rows
        if (r.point, r.reference, r.metric) == ("wise-ft_a0.500", "late-T1", "pass@8")
    ]
    res = got["pass@8"]
    assert (res.delta, res.ci_low, res.ci_high, res.p_value) == (
        row.delta,
        row.ci_low,
        row.ci_high,
        row.p_value,
    )
    assert (
        paired.compare_points(records["late-T1"], records["late-T1"], "other", ["pass@1"]) is None
    )

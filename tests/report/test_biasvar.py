from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from passk_plugin import metrics
from passk_plugin.report import biasvar
from passk_plugin.report.collect import collect_run

from .conftest import KS, POINTS, TASK, N


def test_rows_match_metrics_bias_variance_on_the_stored_counts(synthetic_run):
    rows = biasvar.bias_variance_rows(collect_run(synthetic_run))
    assert len(rows) == len(POINTS) * len(KS)
    for r in rows:
        c = np.asarray(POINTS[r.point][3])
        rho = c / N
        expected = metrics.bias_variance(rho, r.k)
        assert r.task == TASK and r.problems == len(c)
        for key in ("mean_rho", "var_rho", "jensen_term", "excess", "pass_at_k_of_rho"):
            assert getattr(r, key) == pytest.approx(expected[key], abs=1e-15), key
        assert r.frac_rho_0 == np.mean(c == 0)
        assert r.frac_rho_1 == np.mean(c == N)
        stored = metrics.pass_at_k(N, c, r.k).mean()
        assert r.pass_at_k_stored == pytest.approx(stored)


def test_known_values_by_hand(synthetic_run):
    rows = {(r.point, r.k): r for r in biasvar.bias_variance_rows(collect_run(synthetic_run))}
    # alpha=1: rho is 0 or 1 only (6 of 10 problems always solved): mean 0.6, var 0.24,
    # (1-rho)^k is 0.4 for every k, so the excess is 0.4 - 0.4^k.
    r = rows[("wise-ft_a1.000", 4)]
    assert (r.mean_rho, r.var_rho) == pytest.approx((0.6, 0.24))
    assert r.jensen_term == pytest.approx(0.4**4)
    assert r.excess == pytest.approx(0.4 - 0.4**4)
    assert (r.frac_rho_0, r.frac_rho_1) == (0.4, 0.6)
    assert rows[("wise-ft_a1.000", 1)].excess == pytest.approx(0.0)


def test_points_without_samples_are_left_out(synthetic_run):
    for p in (synthetic_run / "points").iterdir():
        for f in p.glob("samples_*.jsonl"):
            f.unlink()
    assert biasvar.bias_variance_rows(collect_run(synthetic_run)) == []


def test_formats_agree(synthetic_run):
    rows = biasvar.bias_variance_rows(collect_run(synthetic_run))
    as_json = json.loads(biasvar.to_json(rows))
    as_csv = list(csv.DictReader(io.StringIO(biasvar.to_csv(rows))))
    md = biasvar.to_markdown(rows)
    assert len(as_json) == len(as_csv) == len(rows)
    assert md.count("\n| ") == len(rows) + 1  # header + one line per row
    for r, j, c in zip(rows, as_json, as_csv, strict=True):
        assert j["excess"] == r.excess and float(c["excess"]) == r.excess
        assert j["point"] == c["point"] == r.point

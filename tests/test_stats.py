from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import beta as beta_fn

from passk_plugin import metrics, stats


def _true_pass_at_k(a: float, b: float, k: int) -> float:
    """E[1 - (1 - rho)^k] for rho ~ Beta(a, b): 1 - B(a, b + k) / B(a, b)."""
    return 1.0 - beta_fn(a, b + k) / beta_fn(a, b)


def test_bootstrap_interval_covers_the_true_difference_95_percent():
    """Synthetic problems with known population Pass@k for two models; coverage of Δ.

    Problem x has a latent quantile U_x; model A's success rate is the U_x-quantile of
    Beta(0.6, 0.9), model B's of Beta(0.8, 0.8) (paired: a hard problem is hard for both).
    Each model draws n = 8 samples per problem; per-problem unbiased pass@4 estimates go into
    the paired comparison. True Δ = E[pass@4(A)] - E[pass@4(B)] in closed form.
    """
    from scipy.stats import beta

    rng = np.random.default_rng(1234)
    n, k, problems, datasets = 8, 4, 80, 1000
    true_delta = _true_pass_at_k(0.6, 0.9, k) - _true_pass_at_k(0.8, 0.8, k)
    u = rng.random((datasets, problems))
    rho_a = beta.ppf(u, 0.6, 0.9)
    rho_b = beta.ppf(u, 0.8, 0.8)
    c_a = rng.binomial(n, rho_a)
    c_b = rng.binomial(n, rho_b)
    est_a = metrics.pass_at_k(n, c_a.ravel(), k).reshape(c_a.shape)
    est_b = metrics.pass_at_k(n, c_b.ravel(), k).reshape(c_b.shape)
    diffs = est_a - est_b
    # All datasets at once: rows share resampled problem sets but their data are independent.
    boot = stats.bootstrap_means(diffs, n_resamples=2000, seed=7)
    lo, hi = stats.bootstrap_interval(diffs, boot)
    coverage = float(np.mean((lo <= true_delta) & (true_delta <= hi)))
    print(f"coverage {coverage:.3f}")
    assert 0.93 <= coverage <= 0.97, coverage
    # The interval is not trivially wide: the mean half-width is near 1.96 standard errors.
    se = diffs.std(axis=1, ddof=1) / np.sqrt(problems)
    assert np.mean((hi - lo) / 2) == pytest.approx(1.96 * np.mean(se), rel=0.1)


def test_paired_compare_basic_and_reported_means():
    a = np.array([1.0, 0.5, 0.25, 1.0, 0.0, 0.75, 1.0, 0.5])
    b = a - 0.1
    res = stats.paired_compare(a, b, n_resamples=2000)
    assert res.delta == pytest.approx(0.1)
    # A constant shift: every resample's mean difference is 0.1.
    assert res.ci_low == pytest.approx(0.1) and res.ci_high == pytest.approx(0.1)
    # All 8 differences positive: exact sign-flip p = 2 / 2^8.
    assert res.p_value == pytest.approx(2 / 256)
    assert res.n_problems == 8
    stored = stats.paired_compare(a, b, n_resamples=2000, a_mean=0.625, b_mean=0.5)
    assert stored.delta == 0.625 - 0.5


def test_sign_flip_p_value_matches_enumeration():
    d = np.array([0.3, -0.1, 0.2, 0.0, 0.5, -0.4, 0.25])
    obs = abs(d.mean())
    flips = [abs(np.mean(d * np.array(s))) for s in itertools.product((-1, 1), repeat=d.size)]
    want = np.mean(np.array(flips) >= obs - 1e-12)
    assert stats.sign_flip_p_value(d) == pytest.approx(want)
    assert stats.sign_flip_p_value(np.zeros(5)) == 1.0


def test_identical_sides_give_zero_delta_and_p_one():
    a = np.array([0.2, 0.4, 0.9])
    res = stats.paired_compare(a, a.copy(), n_resamples=2000)
    assert (res.delta, res.ci_low, res.ci_high, res.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_seeded_and_checked():
    rng = np.random.default_rng(0)
    a, b = rng.random(30), rng.random(30)
    assert stats.paired_compare(a, b, seed=3) == stats.paired_compare(a, b, seed=3)
    with pytest.raises(ValueError, match="at least 2000"):
        stats.paired_compare(a, b, n_resamples=100)
    with pytest.raises(ValueError, match="one value per problem"):
        stats.paired_compare(a, b[:-1])


def test_holm():
    # Worked example: p sorted 0.01, 0.02, 0.03, 0.5 with m = 4.
    got = stats.holm([0.03, 0.01, 0.5, 0.02, float("nan")])
    np.testing.assert_allclose(got[:4], [0.06, 0.04, 0.5, 0.06])
    assert np.isnan(got[4])
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]

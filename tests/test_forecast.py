"""The Pass@k forecast, checked against what the samples it did not see say."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from passk_plugin import forecast


def _unbiased_pass_at_k(n: int, c: np.ndarray, k: int) -> float:
    return float(np.mean([1.0 - comb(n - ci, k) / comb(n, k) for ci in c]))


# Known rho distributions: a two-Beta mixture (hard and easy problems) and one where a
# fifth of the problems are never solved.
RHO = {
    "beta mixture": lambda rng, p: np.where(
        rng.random(p) < 0.4, rng.beta(0.3, 4.0, p), rng.beta(3.0, 1.0, p)
    ),
    "zero-inflated": lambda rng, p: np.where(rng.random(p) < 0.2, 0.0, rng.beta(0.5, 2.0, p)),
}


@pytest.mark.parametrize("name", sorted(RHO))
def test_forecast_from_an_eighth_of_the_samples_matches_all_of_them(name: str) -> None:
    rng = np.random.default_rng(7)
    problems, n = 300, 256
    rho = RHO[name](rng, problems)
    outcomes = rng.random((problems, n)) < rho[:, None]
    seen = n // 8
    c_seen = outcomes[:, :seen].sum(axis=1)
    result = forecast.forecast_pass_at_k([seen] * problems, c_seen, [seen, n], bootstrap=0)
    # Within the samples drawn the model reproduces the unbiased estimate...
    assert result.estimate[0] == pytest.approx(_unbiased_pass_at_k(seen, c_seen, seen), abs=0.02)
    # ...and beyond them it forecasts what all n samples show, to a bounded error (0.06: the
    # worst seen over seeds, on the zero-inflated case; bench/bench_forecast.py)...
    full = _unbiased_pass_at_k(n, outcomes.sum(axis=1), n)
    assert abs(result.estimate[1] - full) < 0.06, (result.estimate[1], full)
    # ...much closer than the last value observed, which misses by far more.
    assert abs(result.estimate[1] - full) < (full - result.estimate[0]) / 2


def test_interval_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    rho = rng.beta(0.4, 1.0, 120)
    c = rng.binomial(16, rho)
    result = forecast.forecast_pass_at_k(
        [16] * 120, c, [64, 256], bootstrap=10, seed=1, components=(1,)
    )
    for value, low, high in zip(result.estimate, result.low, result.high, strict=True):
        assert low <= value + 1e-9 and value <= high + 1e-9
        assert high - low > 0
    assert result.estimate[1] >= result.estimate[0]


def test_mixture_pass_at_k_matches_monte_carlo() -> None:
    mixture = forecast.BetaMixture((0.6, 0.3), (0.5, 3.0), (4.0, 1.0), zero_weight=0.1)
    rng = np.random.default_rng(0)
    pick = rng.choice(3, size=400_000, p=[0.6, 0.3, 0.1])
    rho = np.where(pick == 0, rng.beta(0.5, 4.0, pick.size), rng.beta(3.0, 1.0, pick.size))
    rho[pick == 2] = 0.0
    for k in (1, 10, 100):
        assert mixture.pass_at_k(k) == pytest.approx(np.mean(1 - (1 - rho) ** k), abs=3e-3)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="0 <= c <= n"):
        forecast.forecast_pass_at_k([4, 4], [5, 1], [8])
    with pytest.raises(ValueError, match="positive"):
        forecast.forecast_pass_at_k([4], [1], [0])

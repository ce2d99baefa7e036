"""Paired comparisons of two models on the same problems: intervals and p-values.

Pure functions over per-problem values; nothing here knows where the values came from.

Why the bootstrap resamples problems only. Each problem x contributes one number per model,
an unbiased estimate (pass@k from n samples, G-Pass@k, expected maj@k, rho = c/n) of that
problem's true value v(x). The estimate is v(x) plus sampling noise e(x) with mean zero, and
problems are evaluated independently, so the per-problem values d(x) = a(x) - b(x) are
independent draws whose variance already holds both sources: the spread of v over the
population of problems and the within-problem noise (Var d = Var_x v + E_x Var e). The mean
of d estimates the population difference without bias, and resampling problems with
replacement reproduces its spread; resampling the n samples within each problem as well would
count the within-problem noise twice. Pairing is what makes the interval tight: problem
difficulty, which dominates Var_x v for each model alone, cancels in a(x) - b(x).

Interval: the expanded percentile bootstrap (Hesterberg 2015, "What teachers should know
about the bootstrap"), 10,000 resamples by default, seeded. The plain percentile interval of a
mean is too narrow in small samples (by about sqrt((n-1)/n), and normal instead of t
quantiles); the expansion fixes both and keeps the percentile interval's respect for skew and
for the [-1, 1] range of a difference of rates. Simulated with a known true difference (the
setting of tests/test_stats.py: pass@4 from n = 8, 3 seeds x 2000 datasets each), it covered
92.8% / 94.6% / 95.2% for 20 / 80 / 300 problems against BCa's 89.5% / 93.8% / 95.0%, hence
the choice; with fewer than ~30 problems every bootstrap interval is somewhat too narrow.
scipy.stats.bootstrap has no expanded percentile method, and here one set of resamples serves
every metric of a comparison and every row of a batch as one matrix product.

p-value: two-sided paired sign-flip (permutation) test of "A and B are exchangeable on each
problem" with the mean difference as statistic, via scipy.stats.permutation_test: exact
enumeration when 2^n is at most the number of resamples, otherwise Monte Carlo with the
(1 + hits) / (1 + resamples) correction, so p is never 0. It makes no normality assumption
and gives p = 1 when A and B agree on every problem.

Holm's step-down correction controls the family-wise error over a whole table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

DEFAULT_RESAMPLES = 10_000
MIN_RESAMPLES = 2_000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
# Resampled indices held in memory at once (rows x problems).
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of one metric: means, their difference, its interval, p-value."""

    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_problems: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "a": self.a,
            "b": self.b,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n_problems": self.n_problems,
        }


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"paired values need one value per problem on both sides, got {a.shape} and {b.shape}"
        )
    if a.shape[-1] < 1:
        raise ValueError("no problems to compare")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("per-problem values must be finite numbers")


def bootstrap_means(
    diffs: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> np.ndarray:
    """Means of `diffs` (..., problems) over n_resamples resamples of the problems.

    Every leading row uses the same resampled problem sets. Returns (..., n_resamples).
    """
    diffs = np.asarray(diffs, dtype=np.float64)
    n = diffs.shape[-1]
    rng = np.random.default_rng(seed)
    out = np.empty(diffs.shape[:-1] + (n_resamples,))
    flat = diffs.reshape(-1, n)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        size = stop - start
        idx = rng.integers(0, n, size=(size, n))
        # How often each problem was drawn in each resample; the resampled means of every
        # leading row are then one matrix product.
        weights = np.bincount((np.arange(size)[:, None] * n + idx).ravel(), minlength=size * n)
        weights = weights.reshape(size, n).astype(np.float64)
        out.reshape(-1, n_resamples)[:, start:stop] = flat @ weights.T / n
    return out


def bootstrap_interval(
    diffs: np.ndarray,
    boot: np.ndarray,
    confidence: float = CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """Expanded percentile interval for the mean of `diffs` (..., problems) from its
    bootstrap means (..., B).

    The plain percentile interval is too narrow for a mean by about sqrt((n-1)/n) and by
    using normal rather than t quantiles; the expanded interval (Hesterberg 2015) reads the
    bootstrap distribution at the levels Phi(sqrt(n/(n-1)) t_{n-1, alpha/2}) instead.
    """
    n = np.asarray(diffs).shape[-1]
    alpha = (1.0 - confidence) / 2.0
    level = alpha
    if n > 1:
        level = float(sps.norm.cdf(np.sqrt(n / (n - 1)) * sps.t.ppf(alpha, n - 1)))
    lo = np.full(boot.shape[:-1], level)
    return _quantile_rows(boot, lo), _quantile_rows(boot, 1.0 - lo)


def _quantile_rows(boot: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row quantile (numpy's default linear interpolation) at a per-row level q."""
    ordered = np.sort(boot, axis=-1)
    pos = np.asarray(q, dtype=np.float64)[..., None] * (boot.shape[-1] - 1)
    below = np.floor(pos).astype(np.int64)
    above = np.minimum(below + 1, boot.shape[-1] - 1)
    frac = pos - below
    lo = np.take_along_axis(ordered, below, axis=-1)
    hi = np.take_along_axis(ordered, above, axis=-1)
    return (lo + frac * (hi - lo))[..., 0]


def sign_flip_p_value(
    diffs: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> float:
    """Two-sided p-value of the paired sign-flip test on per-problem differences."""
    d = np.asarray(diffs, dtype=np.float64)
    nonzero = d[d != 0]
    if nonzero.size < 2:
        # Identical on every problem, or on all but one: both signs of a single difference
        # are as extreme as the observed one, so p = 1 exactly.
        return 1.0
    result = sps.permutation_test(
        (nonzero,),
        lambda x, axis=-1: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, result.pvalue))


def paired_compare_many(
    a: np.ndarray | Sequence[Sequence[float]],
    b: np.ndarray | Sequence[Sequence[float]],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    a_means: Sequence[float | None] | None = None,
    b_means: Sequence[float | None] | None = None,
) -> list[PairedResult]:
    """Compare several metrics (rows of a and b, problems along columns) on one problem set.

    All rows share the same resampled problem sets. a_means / b_means, where given, are the
    stored means to report (so Δ equals the difference of the numbers the results files show,
    to the last bit); otherwise the means of the rows.
    """
    if n_resamples < MIN_RESAMPLES:
        raise ValueError(
            f"use at least {MIN_RESAMPLES} bootstrap resamples for a 95% interval, "
            f"got {n_resamples}"
        )
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    _check_pair(a, b)
    d = a - b
    boot = bootstrap_means(d, n_resamples, seed)
    lo, hi = bootstrap_interval(d, boot, confidence)
    out = []
    for j in range(d.shape[0]):
        stored_a = None if a_means is None else a_means[j]
        stored_b = None if b_means is None else b_means[j]
        mean_a = float(np.mean(a[j])) if stored_a is None else float(stored_a)
        mean_b = float(np.mean(b[j])) if stored_b is None else float(stored_b)
        out.append(
            PairedResult(
                a=mean_a,
                b=mean_b,
                delta=mean_a - mean_b,
                ci_low=float(lo[j]),
                ci_high=float(hi[j]),
                p_value=sign_flip_p_value(d[j], n_resamples, seed),
                n_problems=int(d.shape[1]),
            )
        )
    return out


def paired_compare(
    a: np.ndarray | Sequence[float],
    b: np.ndarray | Sequence[float],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = CONFIDENCE,
    a_mean: float | None = None,
    b_mean: float | None = None,
) -> PairedResult:
    """Compare per-problem values a and b (same problems, same order); see
    paired_compare_many."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError("paired_compare takes one value per problem; see paired_compare_many")
    (result,) = paired_compare_many(
        a[None],
        b[None] if b.ndim == 1 else b,
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
        a_means=[a_mean],
        b_means=[b_mean],
    )
    return result


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaN entries stay NaN and do not count).

    Hand-written: scipy offers only Benjamini-Hochberg (false_discovery_control), and Holm is
    a few lines; statsmodels would be a heavy dependency for it.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out.tolist()
    order = valid[np.argsort(p[valid], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out.tolist()

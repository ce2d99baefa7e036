"""Pass@k beyond the samples drawn: a model of per-problem success rates, fitted to counts.

With n samples per problem the unbiased estimator gives Pass@k only for k <= n. Beyond n
the curve is decided by how much of the per-problem success rate rho sits near zero
(Schaeffer et al. 2025, "How Do Large Language Monkeys Get Their Power (Laws)?"). Here rho
is modelled as a mixture of Beta distributions, fitted by maximum likelihood to the counts
(c_i correct of n_i, a Beta-binomial mixture likelihood), with 1-2 components, with and
without a point mass at zero (never-solved problems); the forecasts of these candidates are
averaged with Akaike weights. The forecast is empirical Bayes over the problems actually evaluated:

    Pass@k = mean_i (1 - E[(1 - rho_i)^k | c_i, n_i])

with each problem's posterior a Beta mixture, so a problem solved often keeps its near-1
value and only problems with few or no successes are extrapolated. For k <= n it agrees
closely with the unbiased estimate. The interval is a percentile bootstrap over problems
(problems resampled with replacement, the mixture refitted each time).

All functions are pure; randomness comes from an explicit seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

MAX_COMPONENTS = 3


@dataclass(frozen=True)
class BetaMixture:
    """rho ~ zero_weight * (rho = 0) + sum_j weights[j] * Beta(alphas[j], betas[j]).

    The point mass at zero stands for problems the model never solves, which a Beta
    component can only approach; weights and zero_weight sum to 1.
    """

    weights: tuple[float, ...]
    alphas: tuple[float, ...]
    betas: tuple[float, ...]
    zero_weight: float = 0.0
    log_likelihood: float = float("nan")

    def pass_at_k(self, k: int) -> float:
        """Pass@k of a fresh problem drawn from the mixture: 1 - E[(1 - rho)^k]."""
        a, b, w = (np.asarray(x) for x in (self.alphas, self.betas, self.weights))
        miss = np.sum(w * np.exp(special.betaln(a, b + k) - special.betaln(a, b)))
        return float(1.0 - self.zero_weight - miss)


@dataclass(frozen=True)
class Forecast:
    """Pass@k forecasts with a percentile interval (level) from a bootstrap over problems."""

    ks: tuple[int, ...]
    estimate: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    level: float
    n_min: int
    mixture: BetaMixture  # the candidate with the largest Akaike weight (the forecast averages)

    def to_dict(self) -> dict:
        return {
            "ks": list(self.ks),
            "pass@k": list(self.estimate),
            "low": list(self.low),
            "high": list(self.high),
            "level": self.level,
            "n_min": self.n_min,
            "model": {
                "weights": list(self.mixture.weights),
                "alphas": list(self.mixture.alphas),
                "betas": list(self.mixture.betas),
                "zero_weight": self.mixture.zero_weight,
            },
        }


def _check_counts(n: Sequence[int] | np.ndarray, c: Sequence[int] | np.ndarray):
    n_arr = np.asarray(n, dtype=float)
    c_arr = np.asarray(c, dtype=float)
    if n_arr.shape != c_arr.shape or n_arr.ndim != 1 or n_arr.size == 0:
        raise ValueError("n and c must be equal-length, non-empty lists of per-problem counts")
    if np.any(n_arr < 1) or np.any(c_arr < 0) or np.any(c_arr > n_arr):
        raise ValueError("each problem needs n >= 1 samples and 0 <= c <= n correct")
    return n_arr, c_arr


def _log_bb(n: np.ndarray, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log P(c | n, Beta(a, b)) per problem (rows) and component (columns), without the
    binomial coefficient (constant in the parameters)."""
    return special.betaln(c[:, None] + a, (n - c)[:, None] + b) - special.betaln(a, b)


def _log_components(
    n: np.ndarray, c: np.ndarray, a: np.ndarray, b: np.ndarray, zero: bool
) -> np.ndarray:
    """_log_bb, plus a last column for the point mass at zero when `zero`."""
    log = _log_bb(n, c, a, b)
    if zero:
        log = np.concatenate([log, np.where(c == 0, 0.0, -np.inf)[:, None]], axis=1)
    return log


def _unpack(theta: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beta parameters and the weights of all components (the zero mass last, if any)."""
    a = np.exp(theta[:m])
    b = np.exp(theta[m : 2 * m])
    logits = np.concatenate([[0.0], theta[2 * m :]])
    w = np.exp(logits - special.logsumexp(logits))
    return a, b, w


def _negative_log_likelihood(
    theta: np.ndarray, n: np.ndarray, c: np.ndarray, mult: np.ndarray, m: int, zero: bool
) -> tuple[float, np.ndarray]:
    """The negative log-likelihood and its gradient in theta (log a, log b, logits)."""
    a, b, w = _unpack(theta, m)
    log = _log_components(n, c, a, b, zero) + np.log(np.maximum(w, 1e-300))
    top = log.max(axis=1)
    total = top + np.log(np.exp(log - top[:, None]).sum(axis=1))
    value = -np.dot(mult, total)
    if not np.isfinite(value):
        return 1e300, np.zeros_like(theta)
    resp = np.exp(log - total[:, None]) * mult[:, None]  # weighted responsibilities
    beta = resp[:, :m]
    digamma = special.digamma
    shared = digamma(n[:, None] + a + b) - digamma(a + b)
    grad_a = -np.sum(beta * (digamma(c[:, None] + a) - digamma(a) - shared), axis=0) * a
    grad_b = -np.sum(beta * (digamma((n - c)[:, None] + b) - digamma(b) - shared), axis=0) * b
    grad_logits = -(resp.sum(axis=0) - mult.sum() * w)[1:]
    return float(value), np.concatenate([grad_a, grad_b, grad_logits])


def _grouped(n: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (n, c) pairs, their multiplicities, and each problem's pair: the likelihood
    is a sum over pairs, so fits cost the same for 50 problems or 5 million."""
    pairs, inverse, mult = np.unique(
        np.stack([n, c], axis=1), axis=0, return_inverse=True, return_counts=True
    )
    return pairs[:, 0], pairs[:, 1], mult.astype(float), inverse.ravel()


def _fit(
    n: np.ndarray, c: np.ndarray, mult: np.ndarray, m: int, zero: bool, starts: list[np.ndarray]
) -> tuple[float, np.ndarray]:
    best = (np.inf, starts[0])
    for start in starts:
        result = optimize.minimize(
            _negative_log_likelihood,
            start,
            args=(n, c, mult, m, zero),
            jac=True,
            method="L-BFGS-B",
            # log a, log b in [e^-7, e^7]: wide enough for U-shaped and concentrated rho.
            bounds=[(-7.0, 7.0)] * (2 * m) + [(-12.0, 12.0)] * (m + zero - 1),
        )
        if result.fun < best[0]:
            best = (float(result.fun), result.x)
    return best


def _starts(m: int, zero: bool) -> list[np.ndarray]:
    """Starting points: components spread from hard (rho near 0) to easy (near 1)."""
    means = np.linspace(0.1, 0.9, m) if m > 1 else np.array([0.5])
    starts = []
    for concentration in (1.0, 5.0):
        theta = np.concatenate(
            [
                np.log(means * concentration),
                np.log((1 - means) * concentration),
                np.zeros(m + zero - 1),
            ]
        )
        starts.append(theta)
    return starts


def _mixture(theta: np.ndarray, m: int, zero: bool, nll: float) -> BetaMixture:
    a, b, w = _unpack(theta, m)
    return BetaMixture(
        weights=tuple(float(x) for x in w[:m]),
        alphas=tuple(float(x) for x in a),
        betas=tuple(float(x) for x in b),
        zero_weight=float(w[m]) if zero else 0.0,
        log_likelihood=-nll,
    )


def fit_candidates(
    n: Sequence[int] | np.ndarray,
    c: Sequence[int] | np.ndarray,
    components: Sequence[int] = (1, 2),
) -> list[tuple[BetaMixture, float]]:
    """Maximum-likelihood Beta-binomial mixtures for per-problem counts, each number of
    components with and without a point mass at zero, with their Akaike weights.

    Averaging rather than choosing one: from a few samples per problem a point mass at zero
    and a Beta piled up near zero fit about equally well, yet forecast large-k Pass@k quite
    differently (on synthetic data each was 6 points off when the other was true).
    """
    n_arr, c_arr = _check_counts(n, c)
    un, uc, mult, _ = _grouped(n_arr, c_arr)
    fits: list[tuple[BetaMixture, float]] = []
    for m in components:
        if not 1 <= m <= MAX_COMPONENTS:
            raise ValueError(f"components must be between 1 and {MAX_COMPONENTS}, got {m}")
        for zero in (False, True):
            if zero and not np.any(uc == 0):
                continue
            nll, theta = _fit(un, uc, mult, m, zero, _starts(m, zero))
            fits.append((_mixture(theta, m, zero, nll), 2 * nll + 2 * (3 * m - 1 + zero)))
    return _akaike(fits)


def _akaike(fits: list[tuple[BetaMixture, float]]) -> list[tuple[BetaMixture, float]]:
    aic = np.array([a for _, a in fits])
    weights = np.exp(-(aic - aic.min()) / 2)
    weights /= weights.sum()
    return [(mixture, float(w)) for (mixture, _), w in zip(fits, weights, strict=True)]


def fit_beta_mixture(
    n: Sequence[int] | np.ndarray,
    c: Sequence[int] | np.ndarray,
    components: Sequence[int] = (1, 2),
) -> BetaMixture:
    """The candidate of :func:`fit_candidates` with the largest Akaike weight."""
    return max(fit_candidates(n, c, components), key=lambda fit: fit[1])[0]


def _theta(mixture: BetaMixture) -> np.ndarray:
    w = np.array([*mixture.weights, *([mixture.zero_weight] if mixture.zero_weight else [])])
    w = np.maximum(w, 1e-12)
    return np.concatenate(
        [np.log(mixture.alphas), np.log(mixture.betas), np.log(w[1:]) - np.log(w[0])]
    )


def posterior_pass_at_k(
    n: Sequence[int] | np.ndarray,
    c: Sequence[int] | np.ndarray,
    k: int,
    mixture: BetaMixture,
) -> np.ndarray:
    """Per problem, 1 - E[(1 - rho)^k | c, n] under the mixture as prior."""
    n_arr, c_arr = _check_counts(n, c)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    zero = mixture.zero_weight > 0
    a, b = np.asarray(mixture.alphas), np.asarray(mixture.betas)
    w = np.array([*mixture.weights, *([mixture.zero_weight] if zero else [])])
    with np.errstate(divide="ignore"):
        log_post = _log_components(n_arr, c_arr, a, b, zero) + np.log(w)
    post = np.exp(log_post - special.logsumexp(log_post, axis=1, keepdims=True))
    a_post = c_arr[:, None] + a
    b_post = (n_arr - c_arr)[:, None] + b
    miss = np.exp(special.betaln(a_post, b_post + k) - special.betaln(a_post, b_post))
    if zero:
        miss = np.concatenate([miss, np.ones((len(n_arr), 1))], axis=1)  # never solved
    return 1.0 - np.sum(post * miss, axis=1)


def forecast_pass_at_k(
    n: Sequence[int] | np.ndarray,
    c: Sequence[int] | np.ndarray,
    ks: Sequence[int],
    *,
    level: float = 0.95,
    bootstrap: int = 50,
    seed: int = 0,
    components: Sequence[int] = (1, 2),
) -> Forecast:
    """Pass@k for each k in ks (any k, typically beyond n), with a bootstrap interval."""
    n_arr, c_arr = _check_counts(n, c)
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be non-negative, got {bootstrap}")
    candidates = fit_candidates(n_arr, c_arr, components)
    un, uc, _, inverse = _grouped(n_arr, c_arr)
    mult = np.bincount(inverse, minlength=len(un)).astype(float)

    def averaged(fits: list[tuple[BetaMixture, float]], weights: np.ndarray) -> np.ndarray:
        # Pass@k of each distinct (n, c) pair; a problem's value depends on nothing else.
        per_pair = sum(
            w * np.array([posterior_pass_at_k(un, uc, int(k), model) for k in ks])
            for model, w in fits
        )
        return per_pair @ weights / weights.sum()

    estimate = averaged(candidates, mult)
    rng = np.random.default_rng(seed)
    draws = np.empty((bootstrap, len(ks)))
    for i in range(bootstrap):
        # Resampling problems with replacement = multinomial multiplicities of the pairs.
        resampled = rng.multinomial(len(n_arr), mult / mult.sum()).astype(float)
        refits = []
        for model, _ in candidates:
            m, zero = len(model.weights), model.zero_weight > 0
            nll, theta = _fit(un, uc, resampled, m, zero, [_theta(model)])
            refits.append((_mixture(theta, m, zero, nll), 2 * nll + 2 * (3 * m - 1 + zero)))
        draws[i] = averaged(_akaike(refits), resampled)
    tail = (1 - level) / 2
    low = np.quantile(draws, tail, axis=0) if bootstrap else estimate
    high = np.quantile(draws, 1 - tail, axis=0) if bootstrap else estimate
    return Forecast(
        ks=tuple(int(k) for k in ks),
        estimate=tuple(float(x) for x in estimate),
        low=tuple(float(x) for x in low),
        high=tuple(float(x) for x in high),
        level=level,
        n_min=int(n_arr.min()),
        mixture=max(candidates, key=lambda fit: fit[1])[0],
    )

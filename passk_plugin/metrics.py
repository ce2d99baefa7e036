"""Pure estimators over per-problem sample counts.

Everything here works on numpy arrays of per-problem counts and knows nothing about
lm_eval, graders or models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np


def default_ks(n: int) -> list[int]:
    """Powers of two up to n, plus n itself: 1, 2, 4, ..., n."""
    if n < 1:
        raise ValueError(f"n must be at least 1 sample per problem, got n={n}")
    ks = [1 << i for i in range(n.bit_length()) if (1 << i) <= n]
    if ks[-1] != n:
        ks.append(n)
    return ks


def parse_ks(text: str | Iterable[int] | None, n: int) -> list[int]:
    """A k list from '1,2,8' (or an iterable); None gives default_ks(n). Checks k <= n."""
    if text is None or text == "":
        return default_ks(n)
    if isinstance(text, str):
        try:
            ks = [int(part) for part in text.replace(" ", "").split(",") if part]
        except ValueError as err:
            raise ValueError(f"k list must be comma-separated integers, got {text!r}") from err
    else:
        ks = [int(k) for k in text]
    for k in ks:
        _check_k(k, n)
    return sorted(set(ks))


def _check_k(k: int, n: int | np.ndarray) -> None:
    n_min = int(np.min(n)) if np.size(n) else 0
    if n_min < 1:
        raise ValueError("n must be at least 1: a problem has no samples")
    if k < 1:
        raise ValueError(f"k must be at least 1, got k={k}")
    if k > n_min:
        raise ValueError(
            f"k={k} is larger than the number of samples per problem (n={n_min}); "
            f"sample more (raise n) or drop k={k}"
        )


def pass_at_k(
    n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int], k: int
) -> np.ndarray:
    """Unbiased pass@k per problem: 1 - C(n-c, k) / C(n, k) (Chen et al. 2021).

    Uses the product form 1 - prod_{i=n-c+1}^{n} (1 - k/i), which never forms a binomial
    coefficient, so n = 1000 is as exact as n = 10. For each distinct n the suffix products of
    (1 - k/i) are built once and every problem reads its own, so the cost is O(n + problems),
    not O(n * problems). Where fewer than k samples failed, the product passes through the
    factor i = k, which is 0, so those problems get exactly 1.
    """
    c = np.asarray(c, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    if c.size and (np.any(c < 0) or np.any(c > n)):
        raise ValueError("each problem needs 0 <= c <= n correct samples")
    _check_k(k, n)
    out = np.empty(c.shape, dtype=np.float64)
    for n_value in np.unique(n):
        rows = n == n_value
        factors = 1.0 - k / np.arange(1, n_value + 1, dtype=np.float64)
        # suffix[m] = prod_{i=m+1}^{n} factors, with suffix[n] = 1 (no failures drawn).
        suffix = np.ones(n_value + 1)
        suffix[:-1] = np.cumprod(factors[::-1])[::-1]
        out[rows] = 1.0 - suffix[n_value - c[rows]]
    return out


def pass_at_ks(
    n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int], ks: Iterable[int]
) -> dict[int, np.ndarray]:
    """pass@k per problem for every k in ks."""
    return {int(k): pass_at_k(n, c, int(k)) for k in ks}


def success_rate(n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int]) -> np.ndarray:
    """Per-problem Pass@1 rho_x = c / n (also the mean accuracy over the n samples)."""
    c = np.asarray(c, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n, dtype=np.float64), c.shape)
    if np.any(n < 1):
        raise ValueError("n must be at least 1: a problem has no samples")
    return c / n


def majority_answer(answers: Sequence[Hashable | None]) -> Hashable | None:
    """Most frequent non-missing answer; ties go to the one seen first."""
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return None
    return votes.most_common(1)[0][0]


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """1.0 if the majority answer among the first k samples is a correct one, else 0.0.

    `answers` are normalised answers (None where nothing was extracted); `correct[i]` says
    whether sample i is graded correct, so equivalent spellings need not be merged here.
    """
    if len(answers) != len(correct):
        raise ValueError("answers and correct must have one entry per sample")
    _check_k(k, len(answers))
    winner = majority_answer(answers[:k])
    if winner is None:
        return 0.0
    return float(any(a == winner and ok for a, ok in zip(answers[:k], correct[:k], strict=True)))


def mean_and_stderr(values: np.ndarray | Sequence[float]) -> tuple[float, float]:
    """Mean over problems and its standard error (sample std / sqrt(N)), as lm_eval reports."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("no problems to average")
    if v.size == 1:
        return float(v[0]), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def bias_variance(rho: np.ndarray | Sequence[float], k: int) -> dict[str, float]:
    """Decompose Pass@k = 1 - E[(1-rho)^k] over problems.

    By Jensen, E[(1-rho)^k] >= (1 - E rho)^k: for a fixed mean Pass@1, spread in rho over
    problems (some always solved, some never) lowers Pass@k. `excess` is that gap.
    """
    r = np.asarray(rho, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no problems")
    mean = float(r.mean())
    fail_k = float(np.mean((1.0 - r) ** k))
    jensen = (1.0 - mean) ** k
    return {
        "k": int(k),
        "mean_rho": mean,
        "var_rho": float(r.var()),
        "pass_at_k_of_rho": 1.0 - fail_k,
        "jensen_term": jensen,
        "excess": fail_k - jensen,
    }

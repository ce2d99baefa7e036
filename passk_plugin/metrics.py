"""Pure estimators over per-problem sample counts.

Everything here works on numpy arrays of per-problem counts and knows nothing about
lm_eval, graders or models.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import special
from scipy import stats as sps

# G-Pass@k thresholds reported when none are asked for: Liu et al. (2024) and OpenCompass
# report tau in {0.25, 0.5, 0.75, 1.0}; 0.25 is left out because for the usual k <= 16 it is
# within a few samples of Pass@k itself (tau -> 0 gives Pass@k exactly).
DEFAULT_TAUS: tuple[float, ...] = (0.5, 0.75, 1.0)


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
    """Expected maj@k over all k-subsets of the n samples (see expected_maj_at_k)."""
    return expected_maj_at_k(answers, correct, k)


# ---------------------------------------------------------------- G-Pass@k


def parse_taus(text: str | Iterable[float] | None) -> tuple[float, ...]:
    """A tau list from '0.5,0.75,1.0' (or an iterable); None gives DEFAULT_TAUS, '' none.

    Each tau must lie in (0, 1]; the list comes back sorted without duplicates.
    """
    if text is None:
        return DEFAULT_TAUS
    if isinstance(text, str):
        parts = [part for part in text.replace(" ", "").split(",") if part]
        if text.strip().lower() in ("none", "off"):
            parts = []
        try:
            taus = [float(part) for part in parts]
        except ValueError as err:
            raise ValueError(
                f"tau list must be comma-separated numbers in (0, 1], got {text!r}"
            ) from err
    else:
        taus = [float(t) for t in text]
    for tau in taus:
        if not 0.0 < tau <= 1.0 or math.isnan(tau):
            raise ValueError(f"each tau must lie in (0, 1], got {tau!r}; e.g. --tau 0.5,0.75,1.0")
    return tuple(sorted(set(taus)))


def tau_label(tau: float) -> str:
    """The tau as it appears in metric names: 0.5, 0.75, 1.0 (shortest round-trip repr)."""
    return repr(float(tau))


def _min_correct(tau: float, k: int) -> int:
    # ceil(tau * k) in exact rational arithmetic: in floats 0.1 * 10 rounds up to 1.0000000000000002
    # and the ceiling would wrongly be 2.
    return max(1, math.ceil(Fraction(str(tau)) * k))


def g_pass_at_k(
    n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int], k: int, tau: float
) -> np.ndarray:
    """G-Pass@k_tau per problem (Liu et al. 2024): the chance that at least ceil(tau*k) of k
    samples drawn without replacement from the n are correct,
    sum_{j=ceil(tau k)}^{c} C(c,j) C(n-c,k-j) / C(n,k).

    That is the hypergeometric survival function; scipy evaluates it without forming
    binomial coefficients (relative error ~1e-15 at n = 1024, checked against exact
    rationals in the tests), vectorised over problems.
    """
    c = np.asarray(c, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    if c.size and (np.any(c < 0) or np.any(c > n)):
        raise ValueError("each problem needs 0 <= c <= n correct samples")
    _check_k(k, n)
    if not 0.0 < tau <= 1.0:
        raise ValueError(f"tau must lie in (0, 1], got {tau}")
    j = _min_correct(tau, k)
    return np.asarray(sps.hypergeom.sf(j - 1, n, c, k), dtype=np.float64).reshape(c.shape)


def mg_pass_at_k(
    n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int], k: int
) -> np.ndarray:
    """mG-Pass@k per problem: (2/k) * sum_{i=ceil(k/2)+1}^{k} G-Pass@k_{i/k} (Liu et al.
    2024), a discretised 2 * integral of G-Pass@k_tau over tau in [0.5, 1]. It is 0 at k = 1,
    where the sum is empty."""
    c = np.asarray(c, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    _check_k(k, n)
    total = np.zeros(c.shape, dtype=np.float64)
    # G-Pass@k_{i/k} needs at least i correct of k: ceil((i/k) k) = i exactly.
    for i in range(math.ceil(k / 2) + 1, k + 1):
        total += np.asarray(sps.hypergeom.sf(i - 1, n, c, k), dtype=np.float64).reshape(c.shape)
    return (2.0 / k) * total


# ---------------------------------------------------------------- maj@k as an expectation

# Above this many multiply-adds (of the exact algorithm, _exact_maj_cost) the maj@k
# expectation gives way to Monte Carlo. At the limit the exact pass takes seconds (measured:
# 1000 one-sample classes at n = 1024, all k up to 512, 5 s), about what Monte Carlo costs.
EXACT_MAJ_BUDGET = 500_000_000
MC_MAJ_DRAWS = 20_000


@dataclass(frozen=True)
class AnswerClasses:
    """One problem's samples grouped by answer equivalence class.

    counts[i] samples fell in class i, worth value[i] (1.0 when the class is graded correct;
    the share of its samples graded correct should a class mix verdicts); `missing` samples
    had no answer and cast no vote.
    """

    counts: tuple[int, ...]
    value: tuple[float, ...]
    missing: int

    @property
    def n(self) -> int:
        return sum(self.counts) + self.missing

    @classmethod
    def from_samples(
        cls, answers: Sequence[Hashable | None], correct: Sequence[bool]
    ) -> AnswerClasses:
        if len(answers) != len(correct):
            raise ValueError("answers and correct must have one entry per sample")
        total: dict[Hashable, int] = {}
        right: dict[Hashable, int] = {}
        missing = 0
        for answer, ok in zip(answers, correct, strict=True):
            if answer is None:
                missing += 1
                continue
            total[answer] = total.get(answer, 0) + 1
            right[answer] = right.get(answer, 0) + bool(ok)
        keys = list(total)
        return cls(
            counts=tuple(total[a] for a in keys),
            value=tuple(right[a] / total[a] for a in keys),
            missing=missing,
        )

    @property
    def distinct(self) -> int:
        """Number of distinct answer classes among the samples that gave an answer."""
        return len(self.counts)

    @property
    def entropy_bits(self) -> float:
        """Entropy (bits) of the answer-class distribution over samples with an answer."""
        if not self.counts:
            return 0.0
        freq = np.asarray(self.counts, dtype=np.float64)
        freq /= freq.sum()
        return float(max(-(freq * np.log2(freq)).sum(), 0.0))


def expected_maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """maj@k averaged over all C(n, k) subsets of the n samples, exactly where affordable.

    In each subset the answer class with the most votes wins; a j-way tie gives each tied
    class 1/j; samples without an answer cast no vote (a subset of only those scores 0).
    The result depends only on the class counts (AnswerClasses), see expected_maj_from_classes.
    """
    _check_k(k, len(answers))
    return expected_maj_from_classes(AnswerClasses.from_samples(answers, correct), k)


def expected_maj_from_classes(
    classes: AnswerClasses, k: int, *, seed: int = 0, budget: int = EXACT_MAJ_BUDGET
) -> float:
    """Expected maj@k from the answer-class counts (see expected_maj_at_ks)."""
    return expected_maj_at_ks(classes, [k], seed=seed, budget=budget)[int(k)]


def expected_maj_at_ks(
    classes: AnswerClasses, ks: Iterable[int], *, seed: int = 0, budget: int = EXACT_MAJ_BUDGET
) -> dict[int, float]:
    """Expected maj@k for every k in ks from the answer-class counts, sharing the work.

    Exact algorithm. A k-subset takes x_l samples from class l with multivariate
    hypergeometric probability prod_l C(m_l, x_l) / C(n, k). Class i wins with x_i = t when
    every other class has x_l <= t; the tie size is 1 + #{l: x_l = t}. For each class i worth
    something and each t, the other classes of size >= t (those that can tie) are merged one
    by one into a table over (j = how many of them sit at t, e = samples they contribute),
    each x_l <= t. The classes smaller than t (never tying) and the missing samples form one
    pool (Vandermonde). For t above every other class's size i wins outright: a hypergeometric
    tail. Only the last step depends on k, so one pass over t serves every k.

    To keep floats in range the table holds probabilities, not counts: entry (j, e) is the
    number of ways divided by C(N, e), N the merged size so far, so each merge weighs by a
    hypergeometric pmf and the last step by a three-group one, all from one table of
    log-factorials (no binomial coefficient of n = 1024 is ever formed).

    Cost: for each valued class i and t <= min(m_i, k), merging the j-th class that can tie
    takes (t + 1) * j * (min(j t, k - t) + 1) multiply-adds (_exact_maj_cost). For a k where
    the total exceeds `budget` it uses Monte Carlo over MC_MAJ_DRAWS random k-subsets
    (seeded): by Hoeffding the error is below sqrt(ln(2/0.001) / (2 * 20000)) = 0.0138 with
    probability 0.999 per problem, and it averages down over problems.
    """
    n = classes.n
    ks = sorted({int(k) for k in ks})
    for k in ks:
        _check_k(k, n)
    counts = np.asarray(classes.counts, dtype=np.int64)
    values = np.asarray(classes.value, dtype=np.float64)
    if counts.size == 0 or not np.any(values > 0):
        return dict.fromkeys(ks, 0.0)
    # k = n (every sample drawn) has a closed form; the rest pay for the exact pass.
    exact = [k for k in ks if k == n or _exact_maj_cost(counts, values, k) <= budget]
    out = dict(zip(exact, _exact_maj(counts, values, classes.missing, exact), strict=True))
    for k in ks:
        if k not in out:
            out[k] = _monte_carlo_maj(counts, values, classes.missing, k, seed)
    return {k: out[k] for k in ks}


class _LogComb:
    """log C(a, b) for the a of one problem, each row built once from a log-factorial table."""

    def __init__(self, n: int) -> None:
        self.log_fact = special.gammaln(np.arange(n + 1, dtype=np.float64) + 1.0)
        self.rows: dict[int, np.ndarray] = {}

    def row(self, a: int) -> np.ndarray:
        """log C(a, b) for b = 0..a."""
        if a not in self.rows:
            f = self.log_fact
            self.rows[a] = f[a] - f[: a + 1] - f[a::-1]
        return self.rows[a]

    def at(self, a: int, b: np.ndarray) -> np.ndarray:
        """log C(a, b) elementwise for any integer b; -inf where b < 0 or b > a."""
        padded = np.full(a + 3, -np.inf)
        padded[1 : a + 2] = self.row(a)
        return padded[np.clip(b, -1, a + 1) + 1]


# Where the chance of x_i = t is below exp(-80) = 1.8e-35 for a k, t adds less than that to
# maj@k (it is a bound on the term), so those (t, k) pairs are skipped: far below a double's
# resolution of the result, and most of the table work at large n.
_NEGLIGIBLE_LOG_P = -80.0


def _exact_maj(counts: np.ndarray, values: np.ndarray, missing: int, ks: list[int]) -> list[float]:
    n = int(counts.sum()) + missing
    out = {}
    if n in ks:
        # All n drawn: every class votes with its full count.
        winners = counts == counts.max()
        out[n] = float(values[winners].sum() / np.count_nonzero(winners))
    drawn = [k for k in ks if k != n]
    if drawn:
        k_arr = np.asarray(drawn, dtype=np.int64)
        lc = _LogComb(n)
        log_n_k = lc.row(n)[k_arr]
        total = np.zeros(k_arr.size)
        for i in np.flatnonzero(values > 0):
            total += values[i] * _class_wins(lc, counts, int(i), missing, k_arr, log_n_k)
        out.update(zip(drawn, total.tolist(), strict=True))
    return [float(min(max(out[k], 0.0), 1.0)) for k in ks]


def _class_wins(
    lc: _LogComb,
    counts: np.ndarray,
    i: int,
    missing: int,
    k_arr: np.ndarray,
    log_n_k: np.ndarray,
) -> np.ndarray:
    """For every k: the expected share of the win that class i takes."""
    n = int(counts.sum()) + missing
    m_i = int(counts[i])
    others = np.sort(np.delete(counts, i))[::-1]  # largest first
    top = int(others[0]) if others.size else 0
    t = np.arange(1, min(m_i, int(k_arr.max())) + 1)
    # log P(x_i = t) for each k (rows) and t (columns): hypergeometric.
    log_p = lc.row(m_i)[t][None, :] + lc.at(n - m_i, k_arr[:, None] - t[None, :]) - log_n_k[:, None]
    # t above every other class's size: i has the most votes outright.
    win = np.exp(log_p[:, top:]).sum(axis=1)
    relevant = log_p[:, :top] > _NEGLIGIBLE_LOG_P
    t_tied = np.flatnonzero(relevant.any(axis=0))
    if t_tied.size:
        merges = _Merges(lc, others, int(t_tied.max()) + 1, int(k_arr.max()))
        for t_tie in t_tied.tolist():
            rows = relevant[:, t_tie]
            win[rows] += _tied_win(
                lc, merges, others, missing, m_i, t_tie + 1, k_arr[rows], log_n_k[rows]
            )
    return win


class _Merges:
    """kernel(s)[e, x] = C(m_s, x) C(size_s, e - x) / C(size_s + m_s, e): of e samples drawn
    from the s largest other classes together, x come from the s-th (0-based, sizes sorted
    largest first, size_s the sum of the s before it). It does not depend on t, so each is
    built once per class i, for every t and e at once."""

    def __init__(self, lc: _LogComb, others: np.ndarray, t_max: int, k_max: int) -> None:
        self.lc = lc
        self.sizes = others.tolist()
        self.t_max = t_max
        self.width = k_max  # e <= k_max - 1: at least one sample is class i's
        self.kernels: dict[int, np.ndarray] = {}

    def kernel(self, s: int) -> np.ndarray:
        if s not in self.kernels:
            lc = self.lc
            m_s = self.sizes[s]
            size = sum(self.sizes[:s])
            x_max = min(m_s, self.t_max)
            width = min(self.width, size + m_s + 1)
            padded = np.full(x_max + width, -np.inf)
            kept = min(size + 1, width)
            padded[x_max : x_max + kept] = lc.row(size)[:kept]
            # window[e, x] = log C(size, e - x)
            window = np.lib.stride_tricks.sliding_window_view(padded, x_max + 1)[:width, ::-1]
            self.kernels[s] = np.exp(
                lc.row(m_s)[: x_max + 1][None, :] + window - lc.row(size + m_s)[:width][:, None]
            )
        return self.kernels[s]


def _tied_win(
    lc: _LogComb,
    merges: _Merges,
    others: np.ndarray,
    missing: int,
    m_i: int,
    t: int,
    k_arr: np.ndarray,
    log_n_k: np.ndarray,
) -> np.ndarray:
    """For every k: P(x_i = t and every other x_l <= t), each subset weighed by 1 / tie size.

    `others` is sorted largest first, so the classes that can tie are its first ones."""
    rest_max = int(k_arr.max()) - t  # samples the other classes and the pool may add
    tie_able = int(np.count_nonzero(others >= t))
    pool = int(others[tie_able:].sum()) + missing
    # The first class alone: each e < t one way per C(m, e) (normalised to 1), e = t a tie.
    width = min(t, rest_max) + 1
    table = np.zeros((2, width))
    table[0, : min(t, width)] = 1.0
    if t < width:
        table[1, t] = 1.0
    for s in range(1, tie_able):
        width = min(table.shape[1] - 1 + t, rest_max) + 1
        kernel = merges.kernel(s)[:width, : t + 1]
        rows = np.zeros((table.shape[0], t + width))
        kept = min(table.shape[1], width)
        rows[:, t : t + kept] = table[:, :kept]
        # shifted[j, e, x] = rows[j, t + e - x] = table[j, e - x], a view (strides, no copy;
        # sliding_window_view would do the same at many times the call overhead).
        step = rows.itemsize
        shifted = np.ndarray(
            (rows.shape[0], width, t + 1),
            dtype=rows.dtype,
            buffer=rows,
            offset=t * step,
            strides=(rows.strides[0], step, -step),
        )
        new = np.zeros((table.shape[0] + 1, width))
        new[:-1] = np.einsum("jex,ex->je", shifted[:, :, :t], kernel[:, :t])
        new[1:] += shifted[:, :, t] * kernel[:, t]
        table = new
    size = int(others[:tie_able].sum())
    e = np.arange(table.shape[1])
    share = (table / np.arange(1, table.shape[0] + 1)[:, None]).sum(axis=0)
    log_w = (
        lc.row(m_i)[t]
        + lc.row(size)[e][None, :]
        + lc.at(pool, k_arr[:, None] - t - e[None, :])
        - log_n_k[:, None]
    )
    return (np.exp(log_w) * share[None, :]).sum(axis=1)


def _exact_maj_cost(counts: np.ndarray, values: np.ndarray, k: int) -> int:
    """Multiply-adds of the exact algorithm for this k (see expected_maj_at_ks)."""
    cost = 0
    for i in np.flatnonzero(values > 0):
        others = np.sort(np.delete(counts, i))
        t_max = min(int(counts[i]), k, int(others[-1]) if others.size else 0)
        if t_max < 1:
            continue
        t = np.arange(1, t_max + 1)[:, None]
        big = others.size - np.searchsorted(others, t[:, 0], side="left")  # sizes >= t
        j = np.arange(1, int(big.max()) + 1)[None, :]
        terms = (t + 1) * j * (np.minimum(j * t, k - t) + 1)
        cost += int(np.where(j <= big[:, None], terms, 0).sum())
    return cost


def _monte_carlo_maj(
    counts: np.ndarray, values: np.ndarray, missing: int, k: int, seed: int
) -> float:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(counts.size), counts), np.full(missing, -1)])
    total = 0.0
    for start in range(0, MC_MAJ_DRAWS, 1000):
        size = min(1000, MC_MAJ_DRAWS - start)
        # k distinct samples per draw: the k smallest of n random keys.
        keys = rng.random((size, labels.size))
        picks = labels[np.argpartition(keys, k - 1, axis=1)[:, :k]]
        width = counts.size + 1  # column 0 counts the samples without an answer
        cells = (np.arange(size)[:, None] * width + picks + 1).ravel()
        votes = np.bincount(cells, minlength=size * width).reshape(size, width)[:, 1:]
        top = votes.max(axis=1, keepdims=True)
        tied = (votes == top) & (top > 0)
        ties = np.maximum(tied.sum(axis=1), 1)
        total += float(((tied * values).sum(axis=1) / ties).sum())
    return total / MC_MAJ_DRAWS


# ---------------------------------------------------------------- diversity


def answer_diversity(answers: Sequence[Hashable | None]) -> tuple[int, float]:
    """(number of distinct answer classes, entropy in bits of the answer distribution).

    Over the samples that gave an answer; a problem with none has 0 classes and entropy 0.
    """
    classes = AnswerClasses.from_samples(answers, [False] * len(answers))
    return classes.distinct, classes.entropy_bits


def rho_extremes(
    n: np.ndarray | Sequence[int] | int, c: np.ndarray | Sequence[int]
) -> tuple[float, float]:
    """Shares of problems never solved (rho = 0) and always solved (rho = 1)."""
    c = np.asarray(c, dtype=np.int64)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), c.shape)
    if c.size == 0:
        raise ValueError("no problems")
    return float(np.mean(c == 0)), float(np.mean(c == n))


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


def per_problem_metrics(
    n: np.ndarray | Sequence[int],
    c: np.ndarray | Sequence[int],
    ks: Iterable[int],
    taus: Iterable[float] = DEFAULT_TAUS,
    classes: Sequence[AnswerClasses] | None = None,
) -> dict[str, np.ndarray]:
    """Every per-problem figure passk reports, keyed as in results files.

    pass@k for each k; for k > 1 G-Pass@k_tau ("g-pass@{k}_{tau}") and mG-Pass@k; "mean_rho"
    (c/n, whose mean is Pass@1) and the indicators whose means are the shares of problems with
    rho = 0 ("rho0_share") and rho = 1 ("rho1_share"). With answer classes also expected maj@k
    (k > 1), "distinct_answers" and "answer_entropy" (bits). Means over problems give the
    reported figures.
    """
    n = np.asarray(n, dtype=np.int64)
    c = np.asarray(c, dtype=np.int64)
    ks = [int(k) for k in ks]
    taus = tuple(taus)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"pass@{k}"] = pass_at_k(n, c, k)
    # G-Pass@k depends on (n, c) only, and problems share them: compute each pair once.
    pairs, inverse = np.unique(
        np.stack([np.broadcast_to(n, c.shape), c]), axis=1, return_inverse=True
    )
    inverse = inverse.reshape(c.shape)
    for k in ks:
        if k < 2:
            continue  # at k = 1 G-Pass@1 is Pass@1 for every tau and mG-Pass@1 is 0
        for tau in taus:
            out[f"g-pass@{k}_{tau_label(tau)}"] = g_pass_at_k(pairs[0], pairs[1], k, tau)[inverse]
        out[f"mg-pass@{k}"] = mg_pass_at_k(pairs[0], pairs[1], k)[inverse]
    out["mean_rho"] = success_rate(n, c)
    out["rho0_share"] = (c == 0).astype(np.float64)
    out["rho1_share"] = (c == n).astype(np.float64)
    if classes is not None:
        if len(classes) != c.size:
            raise ValueError("answer classes need one entry per problem")
        maj_ks = [k for k in ks if k > 1]
        per_class = [expected_maj_at_ks(cl, maj_ks) for cl in classes]
        for k in maj_ks:
            out[f"maj@{k}"] = np.array([maj[k] for maj in per_class])
        out["distinct_answers"] = np.array([cl.distinct for cl in classes], dtype=np.float64)
        out["answer_entropy"] = np.array([cl.entropy_bits for cl in classes])
    return out

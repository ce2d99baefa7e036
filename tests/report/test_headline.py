from __future__ import annotations

from math import comb

import numpy as np

from passk_plugin.report import headline
from passk_plugin.report.collect import collect_run

from .test_tables import _counts_rec


def _pass_at_k_exact(n: int, c: int, k: int) -> float:
    return 1 - comb(n - c, k) / comb(n, k)


def test_headline_names_the_gain_with_its_interval():
    late = _counts_rec("late", [4, 0] * 20, method="wise-ft", alpha=1.0, temperature=0.6)
    mid = _counts_rec("mid", [2] * 40, method="wise-ft", alpha=0.5, temperature=0.6)
    hot = _counts_rec("hot", [3, 1] * 20, method="decoding", temperature=1.0)
    text = headline.headline([mid, late, hot])
    assert len(text) == 1
    p = text[0]
    # Pass@4: α=0.5 solves every problem at k = 4, the late checkpoint half of them.
    gain = np.mean([_pass_at_k_exact(4, 2, 4) - _pass_at_k_exact(4, c, 4) for c in [4, 0] * 20])
    assert f"Pass@4 is highest at α=0.5 with {1.0:.3f}, +{gain:.3f}" in p
    assert "against the late checkpoint: significantly higher" in p
    assert "Pass@1 is highest at" in p and "within noise" in p  # equal Pass@1 (0.5)
    assert "Temperature alone: the late checkpoint at T=1 has Pass@4" in p
    assert not p.startswith("No difference")
    assert headline.headline_text([mid, late, hot], width=60).count("\n") >= 3


def test_headline_says_plainly_when_nothing_is_distinguishable(synthetic_run):
    a = _counts_rec("a", [2, 3] * 10, method="wise-ft", alpha=0.5, temperature=0.6)
    b = _counts_rec("b", [3, 2] * 9 + [2, 2], method="wise-ft", alpha=1.0, temperature=0.6)
    (p,) = headline.headline([a, b])
    assert p.startswith("No difference here is distinguishable from noise.")
    # A sweep's stored points work the same way, one paragraph per task.
    assert len(headline.headline(collect_run(synthetic_run))) == 1

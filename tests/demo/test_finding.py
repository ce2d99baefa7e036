"""The demo's closing sentences, from paired rows."""

from __future__ import annotations

from passk_plugin.demo.finding import collapse_sentence, kmax_metric, wise_ft_sentence


def row(point, reference, metric, a, b, low, high, p_holm=0.001):
    return {
        "task": "t",
        "metric": metric,
        "point": point,
        "reference": reference,
        "a": a,
        "b": b,
        "delta": a - b,
        "ci_low": low,
        "ci_high": high,
        "p_holm": p_holm,
        "n_problems": 128,
    }


ROWS = [
    row("late", "early", "pass@1", 0.40, 0.30, 0.05, 0.15),
    row("late", "early", "pass@16", 0.50, 0.70, -0.28, -0.12),
    row("a25", "late", "pass@16", 0.62, 0.50, 0.05, 0.19),
    row("a25", "late", "pass@1", 0.39, 0.40, -0.03, 0.01, p_holm=0.6),
    row("a50", "late", "pass@16", 0.58, 0.50, 0.02, 0.14),
    row("T1.3", "late", "pass@16", 0.55, 0.50, 0.00, 0.10, p_holm=0.2),
]


def test_kmax_metric_is_the_largest_pass_at_k():
    assert kmax_metric(ROWS) == "pass@16"
    assert kmax_metric([]) is None


def test_collapse_sentence_states_both_changes_with_intervals():
    text = collapse_sentence(ROWS, early="early", late="late", early_step=25, late_step=600)
    assert "step 25 to step 600" in text and "128 held-out problems" in text
    assert "Pass@1 0.300 -> 0.400, +0.100 (95% CI +0.050 to +0.150): significantly higher" in text
    assert "Pass@16 0.700 -> 0.500, -0.200 (95% CI -0.280 to -0.120): significantly lower" in text


def test_collapse_sentence_says_when_the_comparison_is_missing():
    text = collapse_sentence(ROWS[2:], early="early", late="late", early_step=25, late_step=600)
    assert text.startswith("The report holds no paired comparison")


def test_wise_ft_sentence_names_the_best_alpha_and_the_best_decoding_point():
    text = wise_ft_sentence(ROWS, late="late", alphas={"a25": 0.25, "a50": 0.5}, decoding=["T1.3"])
    assert "alpha = 0.25 has the highest Pass@16, 0.620: +0.120 (95% CI +0.050 to +0.190)" in text
    assert "significantly higher; its Pass@1 is 0.390" in text and "within noise" in text
    assert "T1.3, has Pass@16 0.550 (0.070 below alpha = 0.25)" in text


def test_an_interval_that_excludes_zero_is_never_called_noise():
    rows = [
        row("late", "early", "pass@1", 0.43, 0.31, 0.054, 0.199, p_holm=0.08),
        row("late", "early", "pass@16", 0.58, 0.85, -0.37, -0.19),
    ]
    text = collapse_sentence(rows, early="early", late="late", early_step=25, late_step=600)
    assert "(95% CI +0.054 to +0.199): higher by its own interval, but not significant after " in (
        text
    )
    assert "within noise" not in text
    assert "(95% CI -0.370 to -0.190): significantly lower" in text

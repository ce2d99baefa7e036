"""Is one point's metric really above another's? The report's view of the paired tests.

Every point of a sweep is evaluated on the same problems, so two points are compared problem by
problem (passk_plugin.report.paired.compare_points: a 95% paired-bootstrap interval over problems
and a two-sided sign-flip p-value, seeded). Here a difference counts as significant when both
agree: p < 0.05 and the interval excludes 0, so a sentence never calls a difference significant
next to an interval that contains 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import passk_plugin.report.paired as paired
from passk_plugin import stats
from passk_plugin.report.collect import PointRecord

LEVEL = 0.05
_TESTED = re.compile(r"^(?:pass|maj)@\d+$")
# The best/tie marks only need a decision, made for many pairs: fewer resamples than the
# sentences and tables, whose intervals are shown.
MARK_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedDiff:
    """A − B over the problems both points share, with its interval and two-sided p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_problems: int

    @property
    def significant(self) -> bool:
        return self.p_value < LEVEL and (self.ci_low > 0 or self.ci_high < 0)


def compare(
    a: PointRecord,
    b: PointRecord,
    task: str,
    metric: str,
    *,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
) -> PairedDiff | None:
    """A − B on `task`/`metric`, or None when either side lacks per-problem values (maj@k
    needs answer classes) or the two were not run on the same problems. Only pass@k and maj@k
    have a paired test; other metrics (G-Pass@k, diversity) give None."""
    if not _TESTED.match(metric):
        return None
    try:
        found = paired.compare_points(a, b, task, [metric], n_resamples=n_resamples)
    except (ValueError, KeyError):
        return None
    if found is None or metric not in found:
        return None
    r = found[metric]
    return PairedDiff(r.delta, r.ci_low, r.ci_high, r.p_value, r.n_problems)


def fmt_diff(d: PairedDiff, digits: int = 3) -> str:
    """ "+0.012 (95% CI −0.004 to +0.028)"."""

    def s(x: float) -> str:
        return f"{x:+.{digits}f}".replace("-", "−") if math.isfinite(x) else "–"

    return f"{s(d.delta)} (95% CI {s(d.ci_low)} to {s(d.ci_high)})"

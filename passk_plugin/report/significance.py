"""Is one point's metric really above another's? A paired test over the problems both solved.

Every point of a sweep is evaluated on the same problems, so two points are compared problem by
problem: d_x = metric_A(x) − metric_B(x). The interval for mean d is a percentile bootstrap over
problems (the unit that varies; the sampling noise within a problem is already inside each
problem's unbiased estimate). Seeded, so a report is rebuilt identically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from passk_plugin import metrics
from passk_plugin.report.collect import PointRecord, TaskResult

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


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
        return self.ci_low > 0 or self.ci_high < 0


def per_problem(task: TaskResult, metric: str) -> np.ndarray | None:
    """One value per problem (ordered by problem id), or None when it was not stored.

    Pass@k comes exactly from each problem's stored (n, c) by the unbiased estimator.
    """
    if metric.startswith("pass@") and task.n is not None and task.c is not None:
        k = int(metric.split("@", 1)[1])
        if task.n.size and k <= int(task.n.min()):
            return metrics.pass_at_k(task.n, task.c, k)
    return None


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED
) -> PairedDiff:
    """Mean of a − b with a percentile-bootstrap interval and p-value from the same resamples.

    Hand-written rather than scipy.stats.bootstrap because the p-value must come from the very
    resamples that give the interval, so the two never disagree about significance.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("paired values need one entry per shared problem on both sides")
    d = a - b
    delta = float(d.mean())
    if np.all(d == d[0]):  # no spread: every resample gives the same mean
        return PairedDiff(delta, delta, delta, 1.0 if delta == 0 else 0.0, int(d.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    boot = d[idx].mean(axis=1)
    tail = (1 - LEVEL) / 2
    lo, hi = np.quantile(boot, [tail, 1 - tail])
    p = min(1.0, 2 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    return PairedDiff(delta, float(lo), float(hi), p, int(d.size))


def compare(a: PointRecord, b: PointRecord, task: str, metric: str) -> PairedDiff | None:
    """A − B on `task`/`metric`, or None when either side lacks per-problem values or the
    two were not run on the same number of problems."""
    if task not in a.tasks or task not in b.tasks:
        return None
    va, vb = per_problem(a.tasks[task], metric), per_problem(b.tasks[task], metric)
    if va is None or vb is None or va.shape != vb.shape:
        return None
    return paired_bootstrap(va, vb)


def fmt_diff(d: PairedDiff, digits: int = 3) -> str:
    """ "+0.012 (95% CI −0.004 to +0.028)"."""

    def s(x: float) -> str:
        return f"{x:+.{digits}f}".replace("-", "−") if math.isfinite(x) else "–"

    return f"{s(d.delta)} (95% CI {s(d.ci_low)} to {s(d.ci_high)})"


def beats_late(
    point: PointRecord, late: PointRecord, task: str, k_max: int
) -> tuple[PairedDiff, PairedDiff] | None:
    """(Pass@k_max diff, Pass@1 diff) against the late checkpoint when `point` is
    significantly ahead on Pass@k_max and not significantly behind on Pass@1, else None."""
    if point.id == late.id:
        return None
    at_k = compare(point, late, task, f"pass@{k_max}")
    at_1 = compare(point, late, task, "pass@1")
    if at_k is None or at_1 is None:
        return None
    if at_k.significant and at_k.delta > 0 and not (at_1.significant and at_1.delta < 0):
        return at_k, at_1
    return None


@dataclass(frozen=True)
class PairedRow:
    """One point against one reference on one task and metric (A = point, B = reference)."""

    task: str
    metric: str
    point: str
    reference: str
    reference_role: str
    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_holm: float
    n_problems: int


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment, returned in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    out = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        out[i] = running
    return out


def late_paired_rows(records: Sequence[PointRecord]) -> list[PairedRow]:
    """Every point against the late checkpoint on Pass@1 and Pass@k_max, Holm-adjusted over
    the whole table; empty without a late checkpoint or per-problem values."""
    from passk_plugin.report import points

    late = points.late_point(records)
    if late is None:
        return []
    found: list[tuple[str, str, PointRecord, PairedDiff]] = []
    for task in sorted({t for r in records for t in r.tasks}):
        k = points.kmax(records, task)
        for metric in ["pass@1"] + ([f"pass@{k}"] if k and k > 1 else []):
            for r in points.reading_order(records):
                if r.id != late.id and (d := compare(r, late, task, metric)) is not None:
                    found.append((task, metric, r, d))
    adjusted = holm([d.p_value for *_, d in found])
    return [
        PairedRow(
            task,
            metric,
            r.id,
            late.id,
            "late",
            r.tasks[task].metrics.get(metric, math.nan),
            late.tasks[task].metrics.get(metric, math.nan),
            d.delta,
            d.ci_low,
            d.ci_high,
            d.p_value,
            p_adj,
            d.n_problems,
        )
        for (task, metric, r, d), p_adj in zip(found, adjusted, strict=True)
    ]

"""Paired comparisons of every point against reference points, from stored results alone.

For each task, each point is compared on the same problems with each reference point:

- `late`: the late checkpoint, α = 1 at the sweep's own temperature (report.points.late_point,
  the point the headline and the tables call the late checkpoint);
- `early`: the early checkpoint, α = 0 (report.points.early_point);
- `best_temperature`: per metric, the late checkpoint's best temperature point (the highest
  stored value among the temperature points, when that is not the late point itself). Chosen
  on the same problems it is compared on, so it flatters the reference slightly: a point
  that beats it has beaten temperature tuning's best showing;
- `reference`: for plain lm_eval directories (no α), the first directory's first result.

Metrics: Pass@1, Pass@k_max (the largest k every point of the task reports) and, where the
logged samples keep answer classes, the expected maj@k_max. Δ = point − reference with a 95%
paired-bootstrap interval and a two-sided sign-flip p-value (passk_plugin.stats), then Holm's
correction over the whole table (every task, metric, point and reference). `a` and `b` are
the stored means, so Δ is exactly the difference of the numbers in the leaderboard; the
bootstrap runs on the per-problem values recomputed from the stored counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from passk_plugin import metrics, stats
from passk_plugin.report.collect import PointRecord, TaskResult
from passk_plugin.report.plots import png_bytes
from passk_plugin.report.points import early_point, late_point

SIGNIFICANCE = 0.05
# Points that sample a checkpoint under other settings ("temperature" in older runs).
DECODING = ("decoding", "temperature")
ROLES = ("late", "early", "best_temperature", "reference")
# A stored mean is reported only when the per-problem values reproduce it (older runs stored
# maj@k of the first k samples, which the expectation replaces).
_STORED_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PairedRow:
    """One comparison: `point` against `reference` on one task and metric (Δ = a − b)."""

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

    @property
    def significant(self) -> bool:
        """Holm-corrected p below 0.05."""
        return self.p_holm < SIGNIFICANCE


def k_max(records: Sequence[PointRecord], task: str) -> int | None:
    """The largest k that every point with per-problem counts on `task` reports."""
    common: set[int] | None = None
    for r in records:
        tr = r.tasks.get(task)
        if tr is None or tr.n is None:
            continue
        ks = set(tr.ks)
        common = ks if common is None else common & ks
    return max(common) if common else None


def _metric_names(task_results: Sequence[TaskResult], kmax: int) -> list[str]:
    names = ["pass@1"]
    if kmax > 1:
        names.append(f"pass@{kmax}")
        if all(tr.answer_classes is not None for tr in task_results):
            names.append(f"maj@{kmax}")
    return names


def _values(tr: TaskResult, names: Sequence[str], kmax: int) -> dict[str, np.ndarray]:
    assert tr.n is not None and tr.c is not None
    ks = sorted({1, kmax})
    per = metrics.per_problem_metrics(tr.n, tr.c, ks, taus=(), classes=tr.answer_classes)
    return {name: per[name] for name in names}


def stored_or_mean(stored: Mapping[str, float], name: str, values: np.ndarray) -> float:
    """The stored mean of metric `name` where the per-problem `values` reproduce it, else
    their mean (`passk compare` reports its means the same way)."""
    value = stored.get(name)
    mean = float(np.mean(values))
    if value is not None and abs(value - mean) <= _STORED_TOLERANCE:
        return float(value)
    return mean


def _aligned(a: TaskResult, b: TaskResult) -> tuple[np.ndarray, np.ndarray] | None:
    """Index arrays putting b's problems in a's order; None when the problem sets differ."""
    if a.n is None or b.n is None:
        return None
    if a.problem_ids is None or b.problem_ids is None:
        if a.n.size != b.n.size:
            return None
        idx = np.arange(a.n.size)
        return idx, idx
    if set(a.problem_ids) != set(b.problem_ids):
        return None
    where = {pid: i for i, pid in enumerate(b.problem_ids)}
    return np.arange(len(a.problem_ids)), np.array([where[p] for p in a.problem_ids])


def _references(
    records: Sequence[PointRecord], task: str, name: str, fixed: Mapping[str, str] | None
) -> list[tuple[str, PointRecord]]:
    by_id = {r.id: r for r in records}
    if fixed is not None:
        return [(role, by_id[pid]) for role, pid in fixed.items() if pid in by_id]
    out: list[tuple[str, PointRecord]] = []
    late, early = late_point(records), early_point(records)
    if late is not None:
        out.append(("late", late))
    if early is not None:
        out.append(("early", early))
    temps = [
        r
        for r in records
        if r.method in DECODING and task in r.tasks and name in r.tasks[task].metrics
    ]
    if temps:
        best = max(temps, key=lambda r: r.tasks[task].metrics[name])
        if late is None or best.tasks[task].metrics[name] > late.tasks[task].metrics.get(
            name, -math.inf
        ):
            out.append(("best_temperature", best))
    return out


def paired_rows(
    records: Sequence[PointRecord],
    *,
    references: Mapping[str, str] | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> list[PairedRow]:
    """Every point against every reference point, per task and metric, Holm-corrected.

    references: role -> point id to use instead of the sweep roles (late, early,
    best_temperature); plain lm_eval directories pass {"reference": first_id}. Points without
    per-problem counts, and pairs whose problem sets differ, are left out.
    """
    raw: list[tuple[str, str, str, str, str, stats.PairedResult]] = []
    tasks = sorted({t for r in records for t in r.tasks})
    for task in tasks:
        kmax = k_max(records, task)
        if kmax is None:
            continue
        usable = [r for r in records if task in r.tasks and r.tasks[task].n is not None]
        names = _metric_names([r.tasks[task] for r in usable], kmax)
        values = {r.id: _values(r.tasks[task], names, kmax) for r in usable}
        for name in names:
            for role, ref in _references(usable, task, name, references):
                for point in usable:
                    if point.id == ref.id:
                        continue
                    ta, tb = point.tasks[task], ref.tasks[task]
                    aligned = _aligned(ta, tb)
                    if aligned is None:
                        continue
                    ia, ib = aligned
                    va, vb = values[point.id][name], values[ref.id][name]
                    (res,) = stats.paired_compare_many(
                        va[ia][None],
                        vb[ib][None],
                        n_resamples=n_resamples,
                        seed=seed,
                        a_means=[stored_or_mean(ta.metrics, name, va)],
                        b_means=[stored_or_mean(tb.metrics, name, vb)],
                    )
                    raw.append((task, name, point.id, ref.id, role, res))
    adjusted = stats.holm([res.p_value for *_, res in raw])
    return [
        PairedRow(
            task=task,
            metric=name,
            point=point,
            reference=ref,
            reference_role=role,
            a=res.a,
            b=res.b,
            delta=res.delta,
            ci_low=res.ci_low,
            ci_high=res.ci_high,
            p_value=res.p_value,
            p_holm=p_holm,
            n_problems=res.n_problems,
        )
        for (task, name, point, ref, role, res), p_holm in zip(raw, adjusted, strict=True)
    ]


def compare_points(
    point: PointRecord,
    reference: PointRecord,
    task: str,
    names: Sequence[str],
    *,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> dict[str, stats.PairedResult] | None:
    """Any two points on one task (e.g. the best and the runner-up of a column): metric ->
    paired result (Δ = point − reference), uncorrected p; None when either lacks per-problem
    counts or their problem sets differ. Metrics: "pass@k", "maj@k" (needs answer classes)."""
    tp, tr = point.tasks.get(task), reference.tasks.get(task)
    if tp is None or tr is None:
        return None
    aligned = _aligned(tp, tr)
    if aligned is None:
        return None
    ks = sorted({int(name.split("@")[1]) for name in names})
    ia, ib = aligned
    values = []
    for tres in (tp, tr):
        assert tres.n is not None and tres.c is not None
        per = metrics.per_problem_metrics(tres.n, tres.c, ks, taus=(), classes=tres.answer_classes)
        if any(name not in per for name in names):
            return None
        values.append(per)
    results = stats.paired_compare_many(
        np.stack([values[0][m][ia] for m in names]),
        np.stack([values[1][m][ib] for m in names]),
        n_resamples=n_resamples,
        seed=seed,
        a_means=[stored_or_mean(tp.metrics, m, values[0][m]) for m in names],
        b_means=[stored_or_mean(tr.metrics, m, values[1][m]) for m in names],
    )
    return dict(zip(names, results, strict=True))


def beats_late(rows: Sequence[PairedRow], point: str, task: str) -> bool:
    """True when `point` beats the late checkpoint on `task` significantly (Holm) on
    Pass@k_max without a significant loss on Pass@1."""
    late = [r for r in rows if r.task == task and r.point == point and r.reference_role == "late"]
    passk = [r for r in late if r.metric.startswith("pass@") and r.metric != "pass@1"]
    pass1 = [r for r in late if r.metric == "pass@1"]
    if not passk:
        return False
    gain = all(r.significant and r.delta > 0 for r in passk)
    loss = any(r.significant and r.delta < 0 for r in pass1)
    return gain and not loss


# ---------------------------------------------------------------- tables


COLUMNS = [f.name for f in fields(PairedRow)]


def _fmt(x: float, digits: int = 4) -> str:
    return "nan" if x != x else f"{x:.{digits}f}"


def _p(x: float) -> str:
    return "nan" if x != x else (f"{x:.2g}" if x < 0.001 else f"{x:.3f}")


def to_markdown(rows: Sequence[PairedRow], title: str = "Paired comparisons") -> str:
    head = (
        f"# {title}\n\n"
        "Δ = point − reference on the same problems; 95% interval from a paired bootstrap over "
        "problems (expanded percentile, 10,000 resamples); p from a two-sided paired sign-flip "
        "test, Holm-corrected over the whole table (p_holm). * marks p_holm < 0.05.\n\n"
    )
    if not rows:
        return head + "No pairs to compare (points need logged per-problem samples).\n"
    lines = [
        "| task | metric | point | reference | point value | reference value | Δ | 95% CI "
        "| p | p_holm | problems |",
        "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        star = " *" if r.significant else ""
        lines.append(
            f"| {r.task} | {r.metric} | {r.point} | {r.reference} ({r.reference_role}) "
            f"| {_fmt(r.a)} | {_fmt(r.b)} | {r.delta:+.4f}{star} "
            f"| [{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {_p(r.p_value)} | {_p(r.p_holm)} "
            f"| {r.n_problems} |"
        )
    return head + "\n".join(lines) + "\n"


def to_csv(rows: Sequence[PairedRow]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(
            [repr(v) if isinstance(v, float) else v for v in (getattr(r, c) for c in COLUMNS)]
        )
    return buf.getvalue()


def to_json(rows: Sequence[PairedRow]) -> str:
    def clean(v: object) -> object:
        return None if isinstance(v, float) and v != v else v

    return (
        json.dumps(
            [{k: clean(v) for k, v in asdict(r).items()} for r in rows], indent=2, allow_nan=False
        )
        + "\n"
    )


# ---------------------------------------------------------------- forest plot


def forest_plot(rows: Sequence[PairedRow], task: str, role: str | None = None) -> bytes | None:
    """Δ with its 95% interval per point, one panel per metric, against one reference role
    (the late checkpoint where there is one). Filled markers: significant after Holm."""
    mine = [r for r in rows if r.task == task]
    if not mine:
        return None
    roles = [x for x in ROLES if any(r.reference_role == x for r in mine)]
    role = role or roles[0]
    mine = [r for r in mine if r.reference_role == role]
    names = list(dict.fromkeys(r.metric for r in mine))
    points = list(dict.fromkeys(r.point for r in mine))
    if not names or not points:
        return None
    from matplotlib.figure import Figure

    height = 1.2 + 0.32 * len(points)
    fig = Figure(figsize=(3.6 * len(names) + 1.6, height))
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)[0]
    ypos = {p: i for i, p in enumerate(reversed(points))}
    for ax, name in zip(axes, names, strict=True):
        for r in (r for r in mine if r.metric == name):
            y = ypos[r.point]
            color = "tab:blue" if r.delta >= 0 else "tab:red"
            ax.plot([r.ci_low, r.ci_high], [y, y], color=color, lw=1.6)
            ax.plot(
                [r.delta],
                [y],
                "o",
                color=color,
                markerfacecolor=color if r.significant else "white",
                markersize=6,
            )
        ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
        ax.set_title(f"Δ {name}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(list(ypos.values()), list(ypos.keys()), fontsize=8)
    ref = mine[0].reference
    fig.suptitle(
        f"{task}: each point − {ref} ({role}), 95% paired-bootstrap CI; filled = Holm p < 0.05",
        fontsize=9,
    )
    fig.tight_layout()
    return png_bytes(fig)

"""What a sweep found, in a few sentences built from paired comparisons.

`headline(records)` gives one short paragraph per task: the best α for Pass@1 and for
Pass@k_max with its paired difference to the late checkpoint and the 95% interval, and whether
a temperature point of the late checkpoint matches it; or, plainly, that no difference is
distinguishable from noise. `passk sweep`, `passk demo` and the report all print the same text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import passk_plugin.report.points as points
from passk_plugin.report.collect import PointRecord
from passk_plugin.report.significance import PairedDiff, compare, fmt_diff


def _verdict(d: PairedDiff | None) -> str:
    if d is None:
        return "not tested (no per-problem results stored)"
    if not d.significant:
        return "within noise"
    return "significantly higher" if d.delta > 0 else "significantly lower"


def _value(r: PointRecord, task: str, metric: str) -> float:
    return r.tasks[task].metrics.get(metric, float("-inf"))


def _diff_text(d: PairedDiff | None) -> str:
    return fmt_diff(d) if d is not None else "difference not tested"


def task_headline(records: Sequence[PointRecord], task: str) -> str | None:
    """Three or four sentences on one task, or None when it has nothing to compare."""
    have = [r for r in records if task in r.tasks and "pass@1" in r.tasks[task].metrics]
    k = points.kmax(have, task)
    if len(have) < 2 or k is None:
        return None
    at_k = f"pass@{k}"
    name = {r.id: points.short_label(r, records) for r in have}
    late = points.late_point(have)
    merges = [r for g in points.alpha_groups(have, task).values() for r in g]
    temps = points.decoding_points(have, task)
    n = next((int(r.tasks[task].rho.size) for r in have if r.tasks[task].rho is not None), None)
    lead = f"On {task}" + (f" ({n} problems)" if n else "")
    diffs: list[PairedDiff | None] = []
    sentences: list[str] = []

    candidates = merges or have

    def top(pts: list[PointRecord], metric: str) -> PointRecord:
        # On a tie in value the late checkpoint wins: a "gain" of exactly 0 says nothing.
        return max(pts, key=lambda r: (_value(r, task, metric), late is not None and r is late))

    for metric, label in (("pass@1", "Pass@1"), (at_k, f"Pass@{k}")):
        best = top(candidates, metric)
        v = _value(best, task, metric)
        if late is None:
            sentences.append(f"{label} is highest at {name[best.id]} with {v:.3f}")
        elif best.id != late.id:
            d = compare(best, late, task, metric)
            diffs.append(d)
            sentences.append(
                f"{label} is highest at {name[best.id]} with {v:.3f}, {_diff_text(d)} against "
                f"the late checkpoint: {_verdict(d)}"
            )
        elif others := [r for r in candidates if r.id != late.id]:
            runner = top(others, metric)
            d = compare(runner, late, task, metric)
            diffs.append(d)
            sentences.append(
                f"{label} is highest at the late checkpoint with {v:.3f}; the next, "
                f"{name[runner.id]}, is {_diff_text(d)}: {_verdict(d)}"
            )
        else:
            sentences.append(f"the late checkpoint has {label} {v:.3f}")
    text = f"{lead}: " + ". ".join(s[0].upper() + s[1:] for s in sentences) + "."

    if temps and merges:
        target = top(merges, at_k)
        closest = top(temps, at_k)
        d = compare(closest, target, task, at_k)
        diffs.append(d)
        if d is None:
            how = "is not tested against it (no per-problem results stored)"
        elif not d.significant:
            how = "matches it within noise"
        elif d.delta > 0:
            how = "is significantly higher"
        else:
            how = "falls significantly short"
        against = (
            "the late checkpoint"
            if late is not None and target.id == late.id
            else (name[target.id])
        )
        t_name = name[closest.id].removesuffix(" (late)")
        alone = "Temperature" if points.is_temperature_point(closest) else "Decoding"
        text += (
            f" {alone} alone: the late checkpoint at {t_name} has Pass@{k} "
            f"{_value(closest, task, at_k):.3f}, {_diff_text(d)} against {against}: it {how}."
        )
    if diffs and all(d is not None and not d.significant for d in diffs):
        text = "No difference here is distinguishable from noise. " + text
    return text


def headline(records: Sequence[PointRecord]) -> list[str]:
    """One paragraph per task (sorted by task name); differences are A − B, paired over
    problems, with 95% paired-bootstrap intervals."""
    tasks = sorted({t for r in records for t in r.tasks})
    return [p for t in tasks if (p := task_headline(records, t))]


def headline_text(records: Sequence[PointRecord], width: int = 100) -> str:
    """The headline wrapped for a terminal: what `passk sweep` and `passk demo` print last."""
    return "\n".join(textwrap.fill(p, width) for p in headline(records))

"""What the demo showed, in words: the lines `passk demo` prints last.

Built from the report's paired comparisons (`report/paired.json`: Δ = point − reference over
the same held-out problems, 95% paired-bootstrap interval, Holm-corrected p), never from
numbers typed in. The demo-specific sentence is the collapse (late against early); which α
beats the late checkpoint and whether a decoding setting matches it come from the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

Row = Mapping[str, Any]


def load_rows(report_dir: str | Path) -> list[dict[str, Any]]:
    """The paired rows a report wrote (paired.json)."""
    return json.loads((Path(report_dir) / "paired.json").read_text(encoding="utf-8"))


def fmt(row: Row) -> str:
    """ "+0.081 (95% CI +0.042 to +0.120)" """
    return f"{row['delta']:+.3f} (95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f})"


def _verdict(row: Row, up: str, down: str) -> str:
    """Significant when the interval shown excludes 0 and the Holm-corrected p < 0.05.

    An interval that excludes 0 without the corrected p is said as such: "within noise"
    next to an interval that excludes 0 would read as a contradiction.
    """
    excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    if not excludes_zero:
        return "within noise"
    direction = up if row["delta"] > 0 else down
    if row["p_holm"] < 0.05:
        return direction
    return (
        f"{direction.removeprefix('significantly ')} by its own interval, but not significant "
        "after Holm correction over all of the report's paired comparisons"
    )


def _find(rows: Sequence[Row], point: str, reference: str, metric: str) -> Row | None:
    return next(
        (
            r
            for r in rows
            if r["point"] == point and r["reference"] == reference and r["metric"] == metric
        ),
        None,
    )


def kmax_metric(rows: Sequence[Row]) -> str | None:
    """The Pass@k_max metric name of the table ("pass@16")."""
    ks = [int(r["metric"].split("@")[1]) for r in rows if r["metric"].startswith("pass@")]
    return f"pass@{max(ks)}" if ks else None


def collapse_sentence(
    rows: Sequence[Row], *, early: str, late: str, early_step: int, late_step: int
) -> str:
    """Late against early on Pass@1 and Pass@k_max: the diversity collapse, or its absence."""
    at_k = kmax_metric(rows)
    parts = []
    for metric in ("pass@1", at_k):
        row = _find(rows, late, early, metric) if metric else None
        if row is None:
            return (
                f"The report holds no paired comparison of the late checkpoint (step "
                f"{late_step}) with the early one (step {early_step})."
            )
        name = "Pass@" + metric.split("@")[1]
        parts.append(
            f"{name} {row['b']:.3f} -> {row['a']:.3f}, {fmt(row)}: "
            + _verdict(row, "significantly higher", "significantly lower")
        )
    return (
        f"Fine-tuning from step {early_step} to step {late_step} (late - early, paired over "
        f"{rows[0]['n_problems']} held-out problems): " + "; ".join(parts) + "."
    )


def wise_ft_sentence(
    rows: Sequence[Row], *, late: str, alphas: Mapping[str, float], decoding: Sequence[str]
) -> str:
    """The best α against the late checkpoint on Pass@k_max, and the decoding points' best."""
    at_k = kmax_metric(rows)
    if at_k is None:
        return ""
    name = "Pass@" + at_k.split("@")[1]
    tried = [
        (pid, row, _find(rows, pid, late, "pass@1"))
        for pid in alphas
        if (row := _find(rows, pid, late, at_k)) is not None
    ]
    if not tried:
        return ""
    pid, row, row1 = max(tried, key=lambda t: t[1]["delta"])
    text = (
        f"WiSE-FT alpha = {alphas[pid]:g} has the highest {name}, {row['a']:.3f}: "
        f"{fmt(row)} against the late checkpoint, "
        + _verdict(row, "significantly higher", "significantly lower")
    )
    if row1 is not None:
        text += f"; its Pass@1 is {row1['a']:.3f}, {fmt(row1)}: " + _verdict(
            row1, "significantly higher", "significantly lower"
        )
    text += "."
    best_dec = [r for pid in decoding if (r := _find(rows, pid, late, at_k)) is not None]
    if best_dec:
        top = max(best_dec, key=lambda r: r["delta"])
        gap = row["a"] - top["a"]
        text += (
            f" The best decoding setting of the late checkpoint, {top['point']}, has {name} "
            f"{top['a']:.3f} ({abs(gap):.3f} {'below' if gap >= 0 else 'above'} alpha = "
            f"{alphas[pid]:g})."
        )
    return text

"""Diversity diagnostics per point and task, and their plot against α and temperature.

The paper's mechanism made visible: as training goes on, each problem's samples agree more
(fewer distinct answer classes, lower answer entropy) and problems drift to ρ = 0 or ρ = 1.
Everything is recomputed from the stored per-problem counts and answer classes, so older runs
whose results lack the diversity metrics get them too.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

from passk_plugin import metrics
from passk_plugin.report.collect import PointRecord
from passk_plugin.report.paired import DECODING

# (key, axis label); the answer figures need logged answer classes.
FIGURES = (
    ("distinct_answers", "distinct answers / problem"),
    ("answer_entropy", "answer entropy (bits)"),
    ("rho0_share", "share of problems with ρ = 0"),
    ("rho1_share", "share of problems with ρ = 1"),
)


def diversity(record: PointRecord, task: str) -> dict[str, float]:
    """Mean distinct answer classes, mean answer entropy, ρ = 0 and ρ = 1 shares (those that
    the stored samples allow)."""
    tr = record.tasks.get(task)
    if tr is None or tr.n is None or tr.c is None:
        return {}
    share0, share1 = metrics.rho_extremes(tr.n, tr.c)
    out = {"rho0_share": share0, "rho1_share": share1}
    if tr.answer_classes is not None:
        out["distinct_answers"] = float(np.mean([cl.distinct for cl in tr.answer_classes]))
        out["answer_entropy"] = float(np.mean([cl.entropy_bits for cl in tr.answer_classes]))
    return out


def diversity_plot(records: Sequence[PointRecord], task: str) -> bytes | None:
    """One panel per figure: merge points against α (a line per method), and the
    temperature points against temperature on a second x axis beside it."""
    merges = [r for r in records if r.method not in DECODING and r.alpha is not None]
    temps = [r for r in records if r.method in DECODING and r.temperature is not None]
    values = {r.id: diversity(r, task) for r in merges + temps}
    keys = [k for k, _ in FIGURES if any(k in v for v in values.values())]
    if not keys or not (merges or temps):
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = 2 if temps and merges else 1
    fig = Figure(figsize=(4.2 * cols, 2.4 * len(keys)))
    axes = fig.subplots(len(keys), cols, squeeze=False)
    labels = dict(FIGURES)
    for row, key in enumerate(keys):
        col = 0
        if merges:
            ax = axes[row][col]
            for method in sorted({r.method or "" for r in merges}):
                pts = sorted(
                    (r.alpha, values[r.id][key])
                    for r in merges
                    if r.method == method and key in values[r.id]
                )
                if pts:
                    ax.plot(*zip(*pts, strict=True), "o-", label=method)
            ax.set_xlabel("α")
            ax.set_ylabel(labels[key], fontsize=8)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7)
            col += 1
        if temps:
            ax = axes[row][col]
            pts = sorted((r.temperature, values[r.id][key]) for r in temps if key in values[r.id])
            if pts:
                ax.plot(*zip(*pts, strict=True), "s--", color="tab:gray")
            ax.set_xlabel("temperature (late checkpoint)")
            ax.set_ylabel(labels[key], fontsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle(f"{task}: answer diversity and ρ extremes", fontsize=10)
    fig.tight_layout()
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()

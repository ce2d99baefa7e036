"""PNG charts of stored results (matplotlib's Agg canvas; no pyplot, no global state).

Every function returns PNG bytes, or None when the records hold nothing to draw.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from passk_plugin.report.biasvar import BiasVarianceRow
from passk_plugin.report.collect import PointRecord, TaskResult

BASELINE = "decoding"  # grid points sampled under other settings (temperature)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _alpha_points(records: Sequence[PointRecord], task: str) -> dict[str, list[PointRecord]]:
    """Merge points with an alpha, grouped by method and sorted by alpha."""
    groups: dict[str, list[PointRecord]] = {}
    for r in records:
        if r.method not in (None, BASELINE) and r.alpha is not None and task in r.tasks:
            groups.setdefault(r.method, []).append(r)
    return {m: sorted(v, key=lambda r: r.alpha) for m, v in groups.items()}


def _temperature_points(records: Sequence[PointRecord], task: str) -> list[PointRecord]:
    pts = [
        r for r in records if r.method == BASELINE and r.temperature is not None and task in r.tasks
    ]
    return sorted(pts, key=lambda r: r.temperature)


def _others(records: Sequence[PointRecord], task: str) -> list[PointRecord]:
    return [
        r
        for r in records
        if task in r.tasks
        and not (r.method == BASELINE and r.temperature is not None)
        and not (r.method not in (None, BASELINE) and r.alpha is not None)
    ]


def _style(records: Sequence[PointRecord], task: str) -> Callable[[PointRecord], dict]:
    """Colour merge points by alpha (viridis), baselines by temperature (dashed, plasma)."""
    from matplotlib import colormaps

    alphas = [r.alpha for g in _alpha_points(records, task).values() for r in g]
    temps = [r.temperature for r in _temperature_points(records, task)]
    others = _others(records, task)

    def norm(x: float, xs: list[float]) -> float:
        lo, hi = min(xs), max(xs)
        return 0.5 if hi == lo else (x - lo) / (hi - lo)

    def style(r: PointRecord) -> dict:
        if r.method == BASELINE and r.temperature is not None:
            return {
                "color": colormaps["plasma"](0.1 + 0.75 * norm(r.temperature, temps)),
                "linestyle": "--",
                "marker": "s",
            }
        if r.alpha is not None and r.method is not None:
            return {"color": colormaps["viridis"](0.9 * norm(r.alpha, alphas)), "marker": "o"}
        i = others.index(r) if r in others else 0
        return {"color": colormaps["tab10"](i % 10), "marker": "^"}

    return style


def _label(r: PointRecord) -> str:
    if r.method == BASELINE and r.temperature is not None:
        return f"T={r.temperature:g} (late)"
    if r.alpha is not None and r.method:
        return f"{r.method} α={r.alpha:g}"
    return r.label


def passk_vs_k(records: Sequence[PointRecord], task: str, forecast_factor: int = 4) -> bytes | None:
    """Pass@k against k (log scale), one line per point; where a point's per-problem counts
    are known, dashed beyond its n: the forecast (passk_plugin.forecast) up to
    forecast_factor * n (0: none)."""
    pts = [r for r in records if task in r.tasks and r.tasks[task].ks]
    if not pts:
        return None
    style = _style(records, task)
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    forecast_ks: set[int] = set()
    for r in pts:
        tr = r.tasks[task]
        ks = tr.ks
        ys = [tr.metrics[f"pass@{k}"] for k in ks]
        (line,) = ax.plot(ks, ys, label=_label(r), **style(r))
        beyond = _forecast_line(tr, forecast_factor)
        if beyond is not None:
            fks, fys = beyond
            ax.plot([ks[-1], *fks], [ys[-1], *fys], linestyle="--", color=line.get_color())
            forecast_ks.update(fks)
    all_ks = sorted({k for r in pts for k in r.tasks[task].ks} | forecast_ks)
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("Pass@k")
    ax.set_title(f"{task}: Pass@k against k" + (" (dashed: forecast)" if forecast_ks else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2 if len(pts) > 8 else 1)
    return _png(fig)


def _forecast_line(tr: TaskResult, factor: int) -> tuple[list[int], list[float]] | None:
    """Forecast Pass@k at 2n, 4n, ... factor * n from the counts, if the task has them."""
    if factor < 2 or tr.n is None or tr.c is None or len(tr.n) == 0:
        return None
    from passk_plugin import forecast

    n_min = int(min(tr.n))
    ks = [n_min * 2**i for i in range(1, factor.bit_length()) if 2**i <= factor]
    result = forecast.forecast_pass_at_k(tr.n, tr.c, ks, bootstrap=0)
    return ks, list(result.estimate)


def _kmax(records: Sequence[PointRecord], task: str) -> int | None:
    common: set[int] | None = None
    for r in records:
        if task in r.tasks and r.tasks[task].ks:
            ks = set(r.tasks[task].ks)
            common = ks if common is None else common & ks
    return max(common) if common else None


def pass1_vs_passk(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Pass@1 against Pass@k_max: the alpha sweep and the temperature sweep as two curves."""
    kmax = _kmax(records, task)
    if kmax is None or kmax == 1:
        return None
    key = f"pass@{kmax}"

    def xy(r: PointRecord) -> tuple[float, float]:
        m = r.tasks[task].metrics
        return m["pass@1"], m[key]

    fig = Figure(figsize=(6.5, 5))
    ax = fig.add_subplot()
    drawn = False
    for method, group in _alpha_points(records, task).items():
        xs, ys = zip(*(xy(r) for r in group), strict=True)
        ax.plot(xs, ys, "-o", label=f"{method} (α sweep)")
        for r, x, y in zip(group, xs, ys, strict=True):
            ax.annotate(
                f"α={r.alpha:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
        drawn = True
    temps = _temperature_points(records, task)
    if temps:
        xs, ys = zip(*(xy(r) for r in temps), strict=True)
        ax.plot(xs, ys, "--s", color="tab:red", label="late checkpoint (temperature sweep)")
        for r, x, y in zip(temps, xs, ys, strict=True):
            ax.annotate(
                f"T={r.temperature:g}",
                (x, y),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7,
                color="tab:red",
            )
        drawn = True
    for r in _others(records, task):
        if "pass@1" in r.tasks[task].metrics and key in r.tasks[task].metrics:
            x, y = xy(r)
            ax.plot([x], [y], "^", label=r.label)
            drawn = True
    if not drawn:
        return None
    ax.set_xlabel("Pass@1")
    ax.set_ylabel(f"Pass@{kmax}")
    ax.set_title(f"{task}: Pass@1 against Pass@{kmax}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def metric_vs_alpha(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Each Pass@k (solid) and maj@k (dotted) against alpha, per merge method."""
    groups = {m: g for m, g in _alpha_points(records, task).items() if len(g) >= 2}
    if not groups:
        return None
    from matplotlib import colormaps

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for gi, (method, group) in enumerate(groups.items()):
        names = sorted(
            {m for r in group for m in r.tasks[task].metrics},
            key=lambda m: (
                not m.startswith("pass@"),
                int(m.split("@")[1]) if "@" in m and m.split("@")[1].isdigit() else 0,
                m,
            ),
        )
        names = [m for m in names if m.startswith(("pass@", "maj@"))]
        for i, name in enumerate(names):
            pts = [
                (r.alpha, r.tasks[task].metrics[name])
                for r in group
                if name in r.tasks[task].metrics
            ]
            xs, ys = zip(*pts, strict=True)
            ax.plot(
                xs,
                ys,
                linestyle=":" if name.startswith("maj@") else ["-", "-."][gi % 2],
                marker="o",
                color=colormaps["viridis"](0.9 * i / max(1, len(names) - 1)),
                label=name if len(groups) == 1 else f"{method} {name}",
            )
    ax.set_xlabel("α (0 = early, 1 = late)")
    ax.set_ylabel("score")
    ax.set_title(f"{task}: metrics against α")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def rho_histograms(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Histogram of per-problem success rate rho, one panel per point."""
    pts = [r for r in records if task in r.tasks and r.tasks[task].rho is not None]
    if not pts:
        return None
    cols = min(4, len(pts))
    rows = math.ceil(len(pts) / cols)
    fig = Figure(figsize=(3.0 * cols, 2.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, r in zip(axes.flat, pts, strict=False):
        tr = r.tasks[task]
        n = int(tr.n.max()) if tr.n is not None and tr.n.size else 10
        # One bin per attainable value c/n, so bars sit on 0, 1/n, ..., 1.
        edges = (np.arange(n + 2) - 0.5) / n
        ax.hist(tr.rho, bins=edges, color="tab:blue", edgecolor="white")
        ax.set_title(f"{_label(r)}\nmean ρ={float(np.mean(tr.rho)):.3f}", fontsize=8)
        ax.set_xlim(edges[0], edges[-1])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pts) :]:
        ax.set_visible(False)
    fig.suptitle(f"{task}: per-problem success rate ρ = c/n", fontsize=10)
    fig.supxlabel("ρ", fontsize=9)
    fig.supylabel("problems", fontsize=9)
    return _png(fig)


def biasvar_chart(rows: Sequence[BiasVarianceRow], task: str) -> bytes | None:
    """1 − Pass@k split into the Jensen term and the excess, at the largest k, per point."""
    rows = [r for r in rows if r.task == task]
    if not rows:
        return None
    kmax = max(r.k for r in rows)
    rows = [r for r in rows if r.k == kmax]
    labels = []
    for r in rows:
        if r.method == BASELINE and r.temperature is not None:
            labels.append(f"T={r.temperature:g}")
        elif r.alpha is not None:
            labels.append(f"α={r.alpha:g}")
        else:
            labels.append(r.point)
    x = np.arange(len(rows))
    jensen = np.array([r.jensen_term for r in rows])
    excess = np.array([r.excess for r in rows])
    fig = Figure(figsize=(max(6, 0.7 * len(rows) + 2), 4.5))
    ax = fig.add_subplot()
    ax.bar(x, jensen, color="tab:blue", label="(1 − mean ρ)^k  (Jensen term)")
    ax.bar(x, excess, bottom=jensen, color="tab:orange", label="excess from spread of ρ")
    ax2 = ax.twinx()
    ax2.plot(x, [r.var_rho for r in rows], "k.-", label="var ρ")
    ax2.set_ylabel("var ρ over problems")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"1 − Pass@{kmax} (plug-in)")
    ax.set_title(f"{task}: where Pass@{kmax} is lost")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(
        h1 + h2,
        l1 + l2,
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.22),
        ncol=3,
        frameon=False,
    )
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)

"""PNG charts of stored results (matplotlib's Agg canvas; no pyplot, no global state).

Every function returns PNG bytes, or None when the records hold nothing to draw. Each point has
one colour and one short name in every chart (passk_plugin.report.points). Error bars are 95%
normal intervals over problems: the stored mean ± 1.96 standard errors over problems, cut at
0 and 1.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import passk_plugin.report.points as points
from passk_plugin.report.biasvar import BiasVarianceRow
from passk_plugin.report.collect import PointRecord, TaskResult
from passk_plugin.report.labels import place_labels

BASELINE = points.BASELINE
Z95 = 1.96  # error bars: ± Z95 standard errors over problems
ERRORBAR_NOTE = "error bars: 95% interval, ± 1.96 standard errors over problems"


DPI = 110


def _figure(size: tuple[float, float], **kwargs) -> Figure:
    # Created at the saving resolution, so text measured for label placement is the text drawn.
    fig = Figure(figsize=size, dpi=DPI, **kwargs)
    FigureCanvasAgg(fig)  # attached up front: label placement measures text on it
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes at the report's resolution (on an Agg canvas, attached here if
    the figure has none yet)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _err(r: PointRecord, task: str, metric: str) -> float:
    se = r.tasks[task].stderrs.get(metric, math.nan)
    return Z95 * se if se is not None and math.isfinite(se) else 0.0


def _bar(pts: Sequence[PointRecord], task: str, metric: str) -> np.ndarray:
    """Error bar lengths (2 × len) for matplotlib: ± 1.96 SE, cut at 0 and 1, which no
    success rate can pass."""
    ys = np.array([r.tasks[task].metrics[metric] for r in pts], dtype=np.float64)
    es = np.array([_err(r, task, metric) for r in pts], dtype=np.float64)
    return np.vstack(
        [np.minimum(es, np.maximum(ys, 0.0)), np.minimum(es, np.maximum(1.0 - ys, 0.0))]
    )


def _label(r: PointRecord, records: Sequence[PointRecord] = ()) -> str:
    return points.short_label(r, records)


def passk_vs_k(records: Sequence[PointRecord], task: str, forecast_factor: int = 4) -> bytes | None:
    """Pass@k against k (log scale), one line per point, with 95% error bars; where a point's
    per-problem counts are known, dotted beyond its n: the forecast (passk_plugin.forecast) up
    to forecast_factor * n (0: none)."""
    pts = [r for r in points.reading_order(records) if task in r.tasks and r.tasks[task].ks]
    if not pts:
        return None
    colours = points.point_colours(records)
    markers = points.point_markers(records)
    fig = _figure((7, 4.5))
    ax = fig.add_subplot()
    forecast_ks: set[int] = set()
    for r in pts:
        tr = r.tasks[task]
        ks = tr.ks
        ys = [tr.metrics[f"pass@{k}"] for k in ks]
        errs = np.hstack([_bar([r], task, f"pass@{k}") for k in ks])
        ax.errorbar(
            ks,
            ys,
            yerr=errs,
            label=_label(r, records),
            color=colours[r.id],
            linestyle="--" if points.is_temperature_point(r) else "-",
            marker=markers[r.id],
            markersize=4,
            capsize=2,
            elinewidth=0.8,
        )
        beyond = _forecast_line(tr, forecast_factor)
        if beyond is not None:
            fks, fys = beyond
            ax.plot([ks[-1], *fks], [ys[-1], *fys], linestyle=":", color=colours[r.id])
            forecast_ks.update(fks)
    all_ks = sorted({k for r in pts for k in r.tasks[task].ks} | forecast_ks)
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("Pass@k")
    forecast_note = " (dotted beyond n: forecast)" if forecast_ks else ""
    ax.set_title(f"{task}: Pass@k against k{forecast_note}\n({ERRORBAR_NOTE})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    return png_bytes(fig)


def _forecast_line(tr: TaskResult, factor: int) -> tuple[list[int], list[float]] | None:
    """Forecast Pass@k at 2n, 4n, ... factor * n from the counts, if the task has them."""
    if factor < 2 or tr.n is None or tr.c is None or len(tr.n) == 0:
        return None
    from passk_plugin import forecast

    n_min = int(min(tr.n))
    ks = [n_min * 2**i for i in range(1, factor.bit_length()) if 2**i <= factor]
    result = forecast.forecast_pass_at_k(tr.n, tr.c, ks, bootstrap=0)
    return ks, list(result.estimate)


def pass1_vs_passk(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Pass@1 against Pass@k_max with 95% error bars on both axes: the α path of each merge
    method, and the late checkpoint's temperature curve, which passes through the late
    checkpoint's own point (α = 1 at the sweep temperature)."""
    kmax = points.kmax(records, task)
    if kmax is None or kmax == 1:
        return None
    key = f"pass@{kmax}"
    have = [r for r in records if task in r.tasks and {"pass@1", key} <= set(r.tasks[task].metrics)]
    if not have:
        return None
    colours = points.point_colours(records)
    markers = points.point_markers(records)

    def xy(r: PointRecord) -> tuple[float, float]:
        m = r.tasks[task].metrics
        return m["pass@1"], m[key]

    fig = _figure((7, 5.2))
    ax = fig.add_subplot()
    styles = ("-", "-.", ":", (0, (5, 1)))
    for i, (method, group) in enumerate(points.alpha_groups(have, task).items()):
        xs, ys = zip(*(xy(r) for r in group), strict=True)
        ax.plot(
            xs,
            ys,
            linestyle=styles[i % 4],
            color="0.55",
            lw=1.2,
            zorder=1,
            label=f"{method}: {points.coordinate_symbol(group[0])} from {group[0].alpha:g} "
            f"to {group[-1].alpha:g}",
        )
    late = points.late_point(have)
    if curve := points.temperature_curve(have, task):
        xs, ys = zip(*(xy(r) for r in curve), strict=True)
        ax.plot(
            xs,
            ys,
            "--",
            color="tab:red",
            lw=1.2,
            zorder=1,
            label="late checkpoint across temperature",
        )
    for r in have:
        x, y = xy(r)
        ax.errorbar(
            [x],
            [y],
            xerr=_bar([r], task, "pass@1"),
            yerr=_bar([r], task, key),
            fmt=markers[r.id],
            color=colours[r.id],
            markeredgecolor="black",
            markeredgewidth=0.5,
            markersize=6,
            ecolor=colours[r.id],
            elinewidth=0.9,
            capsize=2,
            zorder=3,
        )
    ax.margins(x=0.18, y=0.1)
    ax.autoscale_view()

    def text(r: PointRecord) -> str:
        if late is not None and r.id == late.id and r.temperature is not None:
            return _label(r, records).replace("(late)", f"(late, T={r.temperature:g})")
        return _label(r, records).replace(" (late)", "").replace(" (early)", "")

    place_labels(
        ax,
        [xy(r) for r in have],
        [text(r) for r in have],
        [_darker(colours[r.id]) for r in have],
        xerr=[_err(r, task, "pass@1") for r in have],
        yerr=[_err(r, task, key) for r in have],
    )
    ax.set_xlabel("Pass@1")
    ax.set_ylabel(f"Pass@{kmax}")
    ax.set_title(f"{task}: Pass@1 against Pass@{kmax}\n({ERRORBAR_NOTE})", fontsize=10)
    ax.grid(alpha=0.3)
    # Below the axes, where it can cover no point or label.
    if ax.get_legend_handles_labels()[0]:
        ax.legend(
            fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False
        )
    return png_bytes(fig)


def _darker(colour: str) -> str:
    """Label text in the point's colour, darkened so pale shades stay legible on white."""
    from matplotlib.colors import to_hex, to_rgb

    return to_hex(tuple(0.7 * c for c in to_rgb(colour)))


def metric_vs_alpha(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Each Pass@k (solid) and maj@k (dotted) against alpha, per merge method, with 95% error
    bars."""
    groups = {m: g for m, g in points.alpha_groups(records, task).items() if len(g) >= 2}
    if not groups:
        return None
    from matplotlib import colormaps

    fig = _figure((7, 4.5))
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
            pts = [r for r in group if name in r.tasks[task].metrics]
            ax.errorbar(
                [r.alpha for r in pts],
                [r.tasks[task].metrics[name] for r in pts],
                yerr=_bar(pts, task, name),
                linestyle=":" if name.startswith("maj@") else ["-", "-."][gi % 2],
                marker="o",
                markersize=4,
                capsize=2,
                elinewidth=0.8,
                color=colormaps["viridis"](0.9 * i / max(1, len(names) - 1)),
                label=name if len(groups) == 1 else f"{method} {name}",
            )
    ax.set_xlabel("α (0 = early, 1 = late)")
    ax.set_ylabel("score")
    ax.set_title(f"{task}: metrics against α\n({ERRORBAR_NOTE})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    return png_bytes(fig)


def rho_histograms(records: Sequence[PointRecord], task: str) -> bytes | None:
    """Histogram of per-problem success rate rho, one panel per point."""
    pts = [
        r
        for r in points.reading_order(records)
        if task in r.tasks and r.tasks[task].rho is not None
    ]
    if not pts:
        return None
    colours = points.point_colours(records)
    cols = min(4, len(pts))
    rows = math.ceil(len(pts) / cols)
    fig = _figure((3.0 * cols, 2.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, r in zip(axes.flat, pts, strict=False):
        tr = r.tasks[task]
        n = int(tr.n.max()) if tr.n is not None and tr.n.size else 10
        # One bin per attainable value c/n, so bars sit on 0, 1/n, ..., 1.
        edges = (np.arange(n + 2) - 0.5) / n
        ax.hist(tr.rho, bins=edges, color=colours[r.id], edgecolor="black", linewidth=0.4)
        rho = np.asarray(tr.rho, dtype=np.float64)
        se = float(rho.std(ddof=1) / math.sqrt(rho.size)) if rho.size > 1 else math.nan
        ax.set_title(
            f"{_label(r, records)}\nmean ρ = {rho.mean():.3f} ± {Z95 * se:.3f}", fontsize=8
        )
        ax.set_xlim(edges[0], edges[-1])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pts) :]:
        ax.set_visible(False)
    fig.suptitle(
        f"{task}: per-problem success rate ρ = c/n (mean ρ ± 1.96 standard errors)", fontsize=10
    )
    fig.supxlabel("ρ", fontsize=9)
    fig.supylabel("problems", fontsize=9)
    return png_bytes(fig)


def biasvar_chart(
    rows: Sequence[BiasVarianceRow], task: str, records: Sequence[PointRecord] = ()
) -> bytes | None:
    """1 − Pass@k split into the Jensen term and the excess, at the largest k, per point; the
    error bar on each stack is the 95% interval of its total over problems (needs `records`)."""
    rows = [r for r in rows if r.task == task]
    if not rows:
        return None
    kmax = max(r.k for r in rows)
    rows = [r for r in rows if r.k == kmax]
    by_id = {r.id: r for r in records}
    colours = points.point_colours(records) if records else {}
    labels = [_label(by_id[r.point], records) if r.point in by_id else r.point for r in rows]
    x = np.arange(len(rows))
    jensen = np.array([r.jensen_term for r in rows])
    excess = np.array([r.excess for r in rows])
    errs = []
    for r in rows:
        rec = by_id.get(r.point)
        rho = rec.tasks[task].rho if rec is not None and task in rec.tasks else None
        if rho is None or rho.size < 2:
            errs.append(0.0)
            continue
        loss = (1.0 - np.asarray(rho, dtype=np.float64)) ** kmax
        errs.append(Z95 * float(loss.std(ddof=1) / math.sqrt(loss.size)))
    fig = _figure((max(6, 0.7 * len(rows) + 2), 4.5))
    ax = fig.add_subplot()
    ax.bar(x, jensen, color="tab:blue", label="(1 − mean ρ)^k  (Jensen term)")
    ax.bar(x, excess, bottom=jensen, color="tab:orange", label="excess from spread of ρ")
    if records:
        ax.errorbar(
            x,
            jensen + excess,
            yerr=errs,
            fmt="none",
            ecolor="black",
            capsize=3,
            elinewidth=0.8,
            label="95% interval of the total",
        )
    ax2 = ax.twinx()
    ax2.plot(x, [r.var_rho for r in rows], "k.-", label="var ρ")
    ax2.set_ylabel("var ρ over problems")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    for tick, r in zip(ax.get_xticklabels(), rows, strict=True):
        if r.point in colours:
            tick.set_color(_darker(colours[r.point]))
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
        ncol=2,
        frameon=False,
    )
    ax.grid(alpha=0.3, axis="y")
    return png_bytes(fig)

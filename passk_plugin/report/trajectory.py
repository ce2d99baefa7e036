"""Training trajectories and early × late grids: metrics against the training step.

A trajectory is the checkpoints of one run evaluated as they are (`checkpoint` points with a
step); an early × late grid is the interpolation of one early checkpoint with several later
ones (merge points whose step is the late checkpoint's). Everything here is computed from the
stored per-problem counts (n, c), so each value comes with its standard error over problems;
where a point kept no counts, the stored metric and lm_eval's stderr (also over problems) are
used. Diversity diagnostics are shown where the stored results allow them: the shares of
problems with ρ = 0 and ρ = 1 (from the counts), and the distinct answer classes and answer
entropy per problem (`report.diversity`) when the samples logged answer classes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from matplotlib.figure import Figure

from passk_plugin.metrics import mean_and_stderr, pass_at_k
from passk_plugin.report.collect import PointRecord, TaskResult
from passk_plugin.report.diversity import diversity
from passk_plugin.report.plots import png_bytes

CAPTION = "error bars: ± 1 standard error over problems"
# Per-problem diagnostics that need logged answer classes (means over problems).
LOGGED_DIAGNOSTICS = ("distinct_answers", "answer_entropy")


@dataclass(frozen=True)
class StepRow:
    """One point with a training step, on one task."""

    task: str
    id: str
    method: str
    step: int
    alpha: float | None  # the interpolation coordinate (None: the checkpoint as it is)
    k: int
    pass1: float
    pass1_se: float
    passk: float
    passk_se: float
    rho0_share: float | None = None
    rho1_share: float | None = None
    distinct_answers: float | None = None
    answer_entropy: float | None = None


def _mean_se(tr: TaskResult, k: int) -> tuple[float, float]:
    """Pass@k and its standard error over problems, from the counts where stored."""
    if tr.n is not None and tr.c is not None and len(tr.c) and int(tr.n.min()) >= k:
        return mean_and_stderr(pass_at_k(tr.n, tr.c, k))
    name = f"pass@{k}"
    return tr.metrics.get(name, math.nan), tr.stderrs.get(name, math.nan)


def _shares(tr: TaskResult) -> tuple[float | None, float | None]:
    if tr.rho is None or not len(tr.rho):
        return tr.metrics.get("rho0_share"), tr.metrics.get("rho1_share")
    return float(np.mean(tr.rho == 0)), float(np.mean(tr.rho == 1))


def common_kmax(records: Sequence[PointRecord], task: str) -> int | None:
    """The largest k every stepped point of `task` reports."""
    common: set[int] | None = None
    for r in records:
        if task in r.tasks and _step(r) is not None and r.tasks[task].ks:
            ks = set(r.tasks[task].ks)
            common = ks if common is None else common & ks
    return max(common) if common else None


def _step(r: PointRecord) -> int | None:
    return r.point.step if r.point is not None else None


def step_rows(records: Sequence[PointRecord], task: str) -> list[StepRow]:
    """Checkpoint points and two-checkpoint interpolations that know their step."""
    kmax = common_kmax(records, task)
    if kmax is None:
        return []
    rows = []
    for r in records:
        step, p = _step(r), r.point
        if step is None or p is None or task not in r.tasks:
            continue
        if not (p.method == "checkpoint" or (p.needs_merge and len(p.checkpoints) == 2)):
            continue
        tr = r.tasks[task]
        p1, p1_se = _mean_se(tr, 1)
        pk, pk_se = _mean_se(tr, kmax)
        rho0, rho1 = _shares(tr)
        logged = diversity(r, task)  # distinct answers and entropy where answers were logged
        rows.append(
            StepRow(
                task=task,
                id=r.id,
                method=p.method,
                step=step,
                alpha=p.coordinate[1] if p.coordinate else None,
                k=kmax,
                pass1=p1,
                pass1_se=p1_se,
                passk=pk,
                passk_se=pk_se,
                rho0_share=rho0,
                rho1_share=rho1,
                distinct_answers=logged.get("distinct_answers"),
                answer_entropy=logged.get("answer_entropy"),
            )
        )
    return sorted(rows, key=lambda row: (row.alpha is not None, row.alpha or 0.0, row.step))


def trajectory(rows: Sequence[StepRow]) -> list[StepRow]:
    """The checkpoints as they are, in step order."""
    return [r for r in rows if r.method == "checkpoint"]


def early_late_curves(
    rows: Sequence[StepRow], records: Sequence[PointRecord]
) -> dict[str, list[StepRow]]:
    """Per interpolation (method, α): its points against late step; "α=1" the plain
    checkpoints at the late steps and, where evaluated, the early checkpoint itself."""
    merges = [r for r in rows if r.alpha is not None]
    if not merges:
        return {}
    by_id = {r.id: r for r in records}
    early = {by_id[m.id].point.checkpoints[0] for m in merges}  # type: ignore[union-attr]
    late_steps = {m.step for m in merges}
    curves: dict[str, list[StepRow]] = {}
    for m in merges:
        curves.setdefault(f"{m.method} α={m.alpha:g}", []).append(m)
    plain = [
        r
        for r in trajectory(rows)
        if r.step in late_steps or by_id[r.id].point.checkpoints[0] in early  # type: ignore[union-attr]
    ]
    if plain:
        curves["α=1 (checkpoints)"] = plain
    return {name: sorted(c, key=lambda r: r.step) for name, c in sorted(curves.items())}


def peak_lines(rows: Sequence[StepRow]) -> list[str]:
    """Where Pass@k_max and Pass@1 peak along the trajectory (ties: the earliest step)."""
    traj = trajectory(rows)
    if not traj:
        return []
    k = traj[0].k
    out = []
    for name, value, se in ((f"Pass@{k}", "passk", "passk_se"), ("Pass@1", "pass1", "pass1_se")):
        best = max(traj, key=lambda r: (getattr(r, value), -r.step))
        out.append(
            f"{name} peaks at step {best.step} ({getattr(best, value):.3f} ± "
            f"{getattr(best, se):.3f}) over {len(traj)} checkpoints "
            f"(steps {traj[0].step}–{traj[-1].step})."
        )
    return out


# -- plots -----------------------------------------------------------------------------------


def _errorbar(ax, rows: Sequence[StepRow], value: str, **style) -> None:
    xs = [r.step for r in rows]
    ys = [getattr(r, value) for r in rows]
    errs = [0.0 if math.isnan(e) else e for e in (getattr(r, value + "_se") for r in rows)]
    ax.errorbar(xs, ys, yerr=errs, capsize=3, marker="o", **style)


def trajectory_plot(rows: Sequence[StepRow], task: str) -> bytes | None:
    """Pass@1 and Pass@k_max against step (± SE), and the diversity diagnostics held."""
    traj = trajectory(rows)
    if len(traj) < 2:
        return None
    k = traj[0].k
    diag = [
        name
        for name in ("rho0_share", "rho1_share", *LOGGED_DIAGNOSTICS)
        if all(getattr(r, name) is not None for r in traj)
    ]
    fig = Figure(figsize=(7, 7 if diag else 4.5))
    ax = fig.add_subplot(2 if diag else 1, 1, 1)
    _errorbar(ax, traj, "pass1", label="Pass@1", color="tab:blue")
    if k > 1:
        _errorbar(ax, traj, "passk", label=f"Pass@{k}", color="tab:red")
    ax.set_ylabel("score")
    ax.set_title(f"{task}: trajectory ({CAPTION})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if diag:
        ax2 = fig.add_subplot(2, 1, 2, sharex=ax)
        labels = {"rho0_share": "share ρ = 0", "rho1_share": "share ρ = 1"}
        for name in diag:
            if name in labels:
                ax2.plot([r.step for r in traj], [getattr(r, name) for r in traj], "-o",
                         label=labels[name])  # fmt: skip
        ax2.set_ylabel("share of problems")
        logged = [n for n in diag if n in LOGGED_DIAGNOSTICS]
        if logged:
            ax3 = ax2.twinx()
            for name, marker in zip(logged, "sd", strict=False):
                ax3.plot([r.step for r in traj], [getattr(r, name) for r in traj], ":" + marker,
                         color="gray", label=name.replace("_", " "))  # fmt: skip
            ax3.set_ylabel("per problem (mean)")
            ax3.legend(fontsize=7, loc="upper right")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7, loc="upper left")
        ax2.set_xlabel("training step")
    else:
        ax.set_xlabel("training step")
    return png_bytes(fig)


def early_late_plot(
    rows: Sequence[StepRow], records: Sequence[PointRecord], task: str
) -> bytes | None:
    """Pass@k_max and Pass@1 against late step, one line per α (α = 1: the checkpoints)."""
    curves = early_late_curves(rows, records)
    if not curves:
        return None
    from matplotlib import colormaps

    k = next(iter(curves.values()))[0].k
    fig = Figure(figsize=(11, 4.5))
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    for i, (name, curve) in enumerate(curves.items()):
        plain = name.startswith("α=1")
        style = {
            "label": name,
            "color": "black" if plain else colormaps["viridis"](0.85 * i / max(1, len(curves))),
            "linestyle": "--" if plain else "-",
        }
        for ax, value in zip(axes, ("passk", "pass1"), strict=True):
            _errorbar(ax, curve, value, **style)
    for ax, name in zip(axes, (f"Pass@{k}", "Pass@1"), strict=True):
        ax.set_xlabel("late checkpoint's step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{task}: WiSE-FT of the early checkpoint with each later one", fontsize=9)
    axes[1].set_title(CAPTION, fontsize=9)
    axes[0].legend(fontsize=7)
    return png_bytes(fig)


# -- tables ----------------------------------------------------------------------------------


def _fmt(v: float | None, se: float | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if se is None or math.isnan(se):
        return f"{v:.3f}"
    return f"{v:.3f} ± {se:.3f}"


def to_csv(rows: Sequence[StepRow]) -> str:
    buf = io.StringIO()
    names = list(StepRow.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(r).items()})
    return buf.getvalue()


def to_markdown(rows_by_task: dict[str, list[StepRow]], images: dict[str, list[str]]) -> str:
    """Per task: the peak lines, the plots, and one row per stepped point."""
    out = ["# Trajectory", "", f"Pass@1 and Pass@k_max against training step; {CAPTION}.", ""]
    for task, rows in rows_by_task.items():
        out += [f"## {task}", ""]
        out += [f"- {line}" for line in peak_lines(rows)]
        out += [""] + [f"![{name}]({name})" for name in images.get(task, [])] + [""]
        k = rows[0].k
        out.append(f"| step | point | α | Pass@1 | Pass@{k} | ρ=0 share | ρ=1 share |")
        out.append("|---:|---|---:|---:|---:|---:|---:|")
        for r in rows:
            out.append(
                f"| {r.step} | {r.id} | {'' if r.alpha is None else f'{r.alpha:g}'} | "
                f"{_fmt(r.pass1, r.pass1_se)} | {_fmt(r.passk, r.passk_se)} | "
                f"{_fmt(r.rho0_share)} | {_fmt(r.rho1_share)} |"
            )
        out.append("")
    return "\n".join(out)


def to_html(rows_by_task: dict[str, list[StepRow]], pngs: dict[str, bytes]) -> str:
    """The trajectory section of leaderboard.html: peak lines and the plots, inline."""
    import base64
    from html import escape

    parts = ["<h2>Training trajectory</h2>", f"<p>{escape(CAPTION)}.</p>"]
    for task, rows in rows_by_task.items():
        parts.append(f"<h3>{escape(task)}</h3>")
        parts += [f"<p>{escape(line)}</p>" for line in peak_lines(rows)]
        for name, png in pngs.items():
            if name.endswith(f"_{_safe(task)}.png"):
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f'<figure><img alt="{escape(name)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{escape(name)}: {escape(CAPTION)}</figcaption></figure>"
                )
    return "\n".join(parts) + "\n"


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@dataclass(frozen=True)
class TrajectorySection:
    """What the report adds for stepped points: files to write and an HTML section."""

    files: dict[str, str | bytes]
    html: str
    markdown: str  # a short block for leaderboard.md: peak lines, plots, where the table is


def build_section(records: Sequence[PointRecord], with_plots: bool = True) -> TrajectorySection:
    """trajectory.md/.csv, trajectory_<task>.png and early_late_<task>.png, when any
    point knows its step (else nothing)."""
    tasks = sorted({t for r in records for t in r.tasks})
    rows_by_task = {t: rows for t in tasks if (rows := step_rows(records, t))}
    if not rows_by_task:
        return TrajectorySection({}, "", "")
    pngs: dict[str, bytes] = {}
    if with_plots:
        for task, rows in rows_by_task.items():
            for prefix, png in (
                ("trajectory", trajectory_plot(rows, task)),
                ("early_late", early_late_plot(rows, records, task)),
            ):
                if png is not None:
                    pngs[f"{prefix}_{_safe(task)}.png"] = png
    names = {t: [n for n in pngs if n.endswith(f"_{_safe(t)}.png")] for t in rows_by_task}
    files: dict[str, str | bytes] = {
        "trajectory.md": to_markdown(rows_by_task, names),
        "trajectory.csv": to_csv([r for rows in rows_by_task.values() for r in rows]),
        **pngs,
    }
    summary = ["", "## Training trajectory", "", f"{CAPTION}; every value in trajectory.md.", ""]
    for task, rows in rows_by_task.items():
        summary += [f"- {task}: {line}" for line in peak_lines(rows)]
        summary += [f"![{n}]({n})" for n in names[task]]
    return TrajectorySection(files, to_html(rows_by_task, pngs), "\n".join(summary) + "\n")

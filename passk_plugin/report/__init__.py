"""Leaderboard tables, plots and the bias-variance view, built from stored results alone.

`build_report(run_dir)` reads a sweep's finished points; `build_report(results_dirs=[...],
out=...)` reads plain `lm_eval --output_path` directories. Nothing is re-evaluated and every
file is written atomically, so a report can be rebuilt at any time, even mid-sweep.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from passk_plugin.atomic import atomic_write_bytes, atomic_write_text
from passk_plugin.errors import DataError
from passk_plugin.outputs import claim_output_dir, write_marker
from passk_plugin.report import biasvar, diversity, page, paired, plots, tables, trajectory
from passk_plugin.report import headline as headlines
from passk_plugin.report.collect import PointRecord, collect_lm_eval_dirs, collect_run
from passk_plugin.report.headline import headline_text
from passk_plugin.sweep_store import RunStore

__all__ = [
    "build_report",
    "collect_run",
    "collect_lm_eval_dirs",
    "headline_text",
    "write_report",
]

logger = logging.getLogger(__name__)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_report(
    records: Sequence[PointRecord],
    out: str | Path,
    *,
    title: str = "Leaderboard",
    with_plots: bool = True,
    references: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """Write every table and plot for `records` into `out`; returns name -> path.

    references: role -> point id for the paired comparisons (default: the sweep's late,
    early and best-temperature points; see report.paired)."""
    if not records:
        raise ValueError("no finished results to report on")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def put_text(name: str, text: str) -> None:
        written[name] = atomic_write_text(out / name, text)

    pair_rows = paired.paired_rows(records, references=references)
    board = tables.build_leaderboard(records, pair_rows)
    bv_rows = biasvar.bias_variance_rows(records)
    summary = headlines.headline(records)
    put_text("paired.md", paired.to_markdown(pair_rows))
    put_text("paired.csv", paired.to_csv(pair_rows))
    put_text("paired.json", paired.to_json(pair_rows))
    task_names = sorted({t for r in records for t in r.tasks})

    images: dict[str, bytes] = {}
    if with_plots:
        makers = [
            ("pass1_vs_passk", lambda t: plots.pass1_vs_passk(records, t)),
            ("passk_vs_k", lambda t: plots.passk_vs_k(records, t)),
            ("metric_vs_alpha", lambda t: plots.metric_vs_alpha(records, t)),
            ("rho_hist", lambda t: plots.rho_histograms(records, t)),
            ("biasvar", lambda t: plots.biasvar_chart(bv_rows, t, records)),
            ("forest", lambda t: paired.forest_plot(pair_rows, t)),
            ("diversity", lambda t: diversity.diversity_plot(records, t)),
        ]
        for prefix, make in makers:
            for task in task_names:
                png = make(task)
                if png is not None:
                    name = f"{prefix}_{_safe(task)}.png"
                    images[name] = png
                    written[name] = atomic_write_bytes(out / name, png)

    key_plots = [n for n in images if n.startswith(page.KEY_PLOT)]
    intro = [*summary, *(f"![{n}]({n})" for n in key_plots)]
    intro.append(
        "Tables: leaderboard below; every paired comparison in paired.md; the bias–variance view "
        "in biasvar.md."
    )
    section = trajectory.build_section(records, with_plots)
    for name, data in section.files.items():
        write = atomic_write_bytes if isinstance(data, bytes) else atomic_write_text
        written[name] = write(out / name, data)  # type: ignore[arg-type]
    put_text("leaderboard.md", tables.to_markdown(board, title, intro) + section.markdown)
    put_text("leaderboard.csv", tables.to_csv(board))
    put_text("leaderboard.json", tables.to_json(board))
    put_text("biasvar.md", biasvar.to_markdown(bv_rows))
    put_text("biasvar.csv", biasvar.to_csv(bv_rows))
    put_text("biasvar.json", biasvar.to_json(bv_rows))

    labels = {r.id: r.label for r in board.rows}
    colours = {r.id: r.colour for r in board.rows}
    fields = list(biasvar.HEADERS)
    bv_html = tables.html_table(
        ["point", *biasvar.HEADERS.values()],
        [[labels.get(r.point, r.point), *(getattr(r, f) for f in fields)] for r in bv_rows],
        titles=["", *(biasvar.TIPS.get(f, "") for f in fields)],
    )
    put_text(
        "leaderboard.html",
        page.render_page(
            title,
            summary,
            images,
            page.paired_html(pair_rows, labels, colours),
            tables.leaderboard_html(board),
            tables.legend_text(board),
            bv_html if bv_rows else "",
            len(bv_rows),
            section.html,
        ),
    )
    return written


def build_report(
    run_dir: str | Path | None = None,
    *,
    results_dirs: Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    title: str | None = None,
    with_plots: bool = True,
    overwrite: bool = False,
    skipped: list[str] | None = None,
) -> dict[str, Path]:
    """Report on a sweep's run directory, or on lm_eval output directories.

    The report directory follows :func:`passk_plugin.outputs.claim_output_dir` (new, or a
    report passk wrote, else --overwrite; never a directory holding the results). Stored
    points that cannot be read are left out and listed in `skipped` (logged when None).
    """
    if (run_dir is None) == (not results_dirs):
        raise ValueError("give a sweep RUN_DIR or --results DIR..., not both or neither")
    lost: list[str] = [] if skipped is None else skipped
    references = None
    if run_dir is not None:
        store = RunStore(run_dir)
        records = collect_run(store.root, skipped=lost)
        inputs: list[str | Path] = [store.root]
        dest = Path(out) if out is not None else store.report_dir
        name = title or f"Leaderboard: {store.root.name}"
        empty = f"{store.root} has no finished points yet: run `passk sweep` first"
    else:
        if out is None:
            raise ValueError("--results needs --out DIR for the report")
        inputs = list(results_dirs or [])
        records = collect_lm_eval_dirs(inputs, skipped=lost)
        dest = Path(out)
        name = title or "Leaderboard"
        empty = "no readable results to report on"
    if skipped is None:
        for message in lost:
            logger.warning(message)
    if not records:
        raise DataError(f"{empty}; {len(lost)} unreadable: {lost[0]}" if lost else empty)
    if run_dir is None:
        # Without α the paired tables compare every result with the first directory's.
        first = Path(inputs[0]).resolve()
        ref = next((r for r in records if _under(Path(r.source), first)), records[0])
        references = {"reference": ref.id}
    claim_output_dir(
        dest,
        "report",
        overwrite=overwrite,
        inputs=inputs,
        recognise=_is_report,
        flag="--out" if out is not None else "report directory",
        create=False,
    )
    written = write_report(records, dest, title=name, with_plots=with_plots, references=references)
    write_marker(dest, "report")
    return written


def _is_report(path: Path) -> bool:
    """A report written before reports carried a marker."""
    return (path / "leaderboard.json").is_file() and (path / "leaderboard.md").is_file()


def _under(path: Path, root: Path) -> bool:
    path = path.resolve()
    return path == root or root in path.parents

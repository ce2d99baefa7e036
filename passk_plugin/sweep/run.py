"""A whole sweep: check everything, record it, run the points, build the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from passk_plugin.errors import UsageError
from passk_plugin.executors.base import Executor, PointFailures
from passk_plugin.grid import GridPoint
from passk_plugin.outputs import claim_output_dir, write_marker
from passk_plugin.sweep.grids import GridRequest, build_points
from passk_plugin.sweep.preflight import preflight
from passk_plugin.sweep.reconcile import reconcile_settings
from passk_plugin.sweep.settings import EvalSettings, PointResult, RunOptions, SweepContext
from passk_plugin.sweep_store import SETTINGS_FILE, RunStore

EXECUTORS = ("local", "ray")


def make_executor(name: str, **kwargs: Any) -> Executor:
    """The executor called `name`; Ray is imported only when it is asked for."""
    if name == "local":
        from passk_plugin.executors.local import LocalExecutor

        return LocalExecutor(**kwargs)
    if name == "ray":
        from passk_plugin.executors.ray import RayExecutor

        return RayExecutor(**kwargs)
    raise UsageError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")


def write_point_recipes(store: RunStore, points: Sequence[GridPoint]) -> None:
    """The run's mergekit recipes under RUN_DIR/recipes (what the disk merges read:
    `passk_plugin.sweep.point.recipe_path`)."""
    from passk_plugin.recipes import write_recipes

    merges = [p for p in points if p.needs_merge]
    if merges:
        write_recipes(merges, store.recipes_dir)


def run_sweep(
    run_dir: str | Path,
    points: Sequence[GridPoint],
    settings: EvalSettings,
    options: RunOptions | None = None,
    *,
    executor: str | Executor = "local",
    force: bool = False,
    overwrite: bool = False,
    report: bool = True,
    progress: bool = True,
) -> list[PointResult]:
    """Run (or resume) a sweep over `points` in run_dir, then build its report.

    Everything is checked first: the run directory follows passk's output rule
    (:func:`passk_plugin.outputs.claim_output_dir`: new, empty or a run directory, else
    ``overwrite``; never one holding a checkpoint), then `preflight` (tasks, k ≤ n, data,
    checkpoints, writability); sweep.json is written only once all of that passed.
    """
    options = options or RunOptions()
    claim_output_dir(
        run_dir,
        "sweep",
        overwrite=overwrite,
        inputs=sorted({ref for p in points for ref in p.checkpoints}),
        recognise=lambda path: (path / SETTINGS_FILE).is_file(),
        create=False,
    )
    preflight(run_dir, points, settings, options)
    ex = make_executor(executor, progress=progress) if isinstance(executor, str) else executor
    store = RunStore(run_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    write_marker(store.root, "sweep")
    all_points = reconcile_settings(store, settings, points, force)
    store.clean_partial()
    if not options.keep_merged:
        for pid in store.done_ids():  # killed between storing a point and deleting its merge
            store.remove_merged(pid)
    write_point_recipes(store, all_points)
    ctx = SweepContext(run_dir=str(store.root), settings=settings, options=options)
    try:
        results = ex.run(list(points), ctx)
    except PointFailures:
        # The executor went on past failed points: report what finished, then fail.
        if report and store.done_ids():
            _report(store)
        raise
    if report:
        _report(store)
    return results


def _report(store: RunStore) -> None:
    from passk_plugin.report import build_report

    build_report(store.root)


def sweep(
    run_dir: str | Path,
    request: GridRequest,
    settings: EvalSettings,
    options: RunOptions | None = None,
    *,
    executor: str = "local",
    executor_options: dict[str, Any] | None = None,
    force: bool = False,
    overwrite: bool = False,
    report: bool = True,
    progress: bool = True,
) -> list[PointResult]:
    """`passk sweep`: choose the executor, build the requested grid, run it (see run_sweep).

    The executor comes first, so a missing optional dependency (Ray) is reported before
    any other work.
    """
    ex = make_executor(executor, progress=progress, **(executor_options or {}))
    points = build_points(request)
    return run_sweep(
        run_dir,
        points,
        settings,
        options,
        executor=ex,
        force=force,
        overwrite=overwrite,
        report=report,
        progress=progress,
    )

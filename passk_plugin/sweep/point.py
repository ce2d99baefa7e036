"""One grid point: merge (if it is a merge), evaluate, store. Idempotent; safe to retry.

A point is a self-contained unit of work: a `GridPoint` plus the run's `SweepContext`, both
plain picklable pydantic models, so any executor may call `run_point`, retry it, or run
points in any order.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from passk_plugin.grid import GridPoint
from passk_plugin.sweep import evaluation
from passk_plugin.sweep.resident import InMemoryModels, in_memory_models
from passk_plugin.sweep.settings import PointResult, SweepContext
from passk_plugin.sweep_store import (
    POINT_SPEC_FILE,
    RESULTS_FILE,
    RunStore,
    dumps_json,
    samples_file_name,
    samples_jsonl,
)


def recipe_path(store: RunStore, point: GridPoint) -> Path:
    """Where the run keeps a merge point's mergekit recipe (written by run_sweep)."""
    return store.recipes_dir / f"{point.id}.yaml"


def merge_point(ctx: SweepContext, point: GridPoint) -> Path:
    """Merge a point's recipe into RUN_DIR/merged/<id> with mergekit; return that directory."""
    from passk_plugin.merge import merge_recipe

    store = RunStore(ctx.run_dir)
    return Path(merge_recipe(recipe_path(store, point), store.merged_dir(point.id)))


def run_point(
    point: GridPoint, ctx: SweepContext, memory: InMemoryModels | None = None
) -> PointResult:
    """Merge (if needed), evaluate and store one point. Idempotent; safe to retry.

    `memory` is the worker's resident state for --in-memory runs (made on demand if None).
    """
    store = RunStore(ctx.run_dir)
    if store.is_done(point.id):
        return PointResult(id=point.id, status="skipped")
    t0 = time.perf_counter()
    if ctx.options.in_memory:
        model_ref: Any = (memory or in_memory_models(ctx)).model_ref(point)
    elif point.needs_merge:
        model_ref = merge_point(ctx, point)
    else:
        model_ref = point.checkpoint
    merge_s = time.perf_counter() - t0 if point.needs_merge else 0.0
    t0 = time.perf_counter()
    results = evaluation.evaluate(ctx, point, model_ref)
    eval_s = time.perf_counter() - t0
    samples = results.pop("samples", None) or {}
    files: dict[str, str] = {
        POINT_SPEC_FILE: dumps_json(point.to_stored(store.root)),
        RESULTS_FILE: dumps_json(results),
    }
    for task, task_samples in samples.items():
        files[samples_file_name(task)] = samples_jsonl(task_samples)
    marker = {
        "id": point.id,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "merge_s": round(merge_s, 3),
        "eval_s": round(eval_s, 3),
        "files": sorted(files),
    }
    store.write_point(point.id, files, marker)
    if point.needs_merge and not ctx.options.keep_merged:
        store.remove_merged(point.id)
    return PointResult(
        id=point.id,
        status="done",
        merge_s=merge_s,
        eval_s=eval_s,
        metrics=evaluation.summarize(results),
    )

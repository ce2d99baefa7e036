"""The local executor: points one after another in this process, with a progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from passk_plugin.grid import GridPoint
from passk_plugin.sweep.point import run_point
from passk_plugin.sweep.resident import in_memory_models
from passk_plugin.sweep.settings import PointResult, SweepContext
from passk_plugin.sweep_store import RunStore


class LocalExecutor:
    """Points one after another in this process; --in-memory models stay loaded between them."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def run(
        self,
        points: Sequence[GridPoint],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult] | None = None,
    ) -> list[PointResult]:
        from tqdm.auto import tqdm

        point_fn = point_fn or run_point
        memory = in_memory_models(ctx) if ctx.options.in_memory else None
        store = RunStore(ctx.run_dir)
        done = {p.id for p in points if store.is_done(p.id)}
        todo = [p for p in points if p.id not in done]
        results = [PointResult(id=pid, status="skipped") for pid in done]
        desc = f"sweep ({len(done)} of {len(points)} already done)" if done else "sweep"
        bar = tqdm(
            total=len(todo), desc=desc, unit="point", disable=not self.progress, file=sys.stderr
        )
        try:
            for point in todo:
                bar.set_postfix_str(point.id)
                results.append(point_fn(point, ctx, memory))
                bar.update(1)
        finally:
            bar.close()
        order = {p.id: i for i, p in enumerate(points)}
        return sorted(results, key=lambda r: order[r.id])

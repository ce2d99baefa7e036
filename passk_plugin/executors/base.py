"""What an executor is (`Executor`) and how it reports points that failed (`PointFailures`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from passk_plugin.grid import GridPoint
from passk_plugin.sweep.settings import PointResult, SweepContext


class Executor(Protocol):
    """Runs points; returns one PointResult per point (in grid order).

    An executor calls `point_fn(point, ctx, memory)` (default
    `passk_plugin.sweep.point.run_point`) for each point not yet done, wherever it likes:
    points and ctx are picklable; `memory` is the worker's own resident state when
    ctx.options.in_memory, else None. An executor that goes on past failed points raises
    `PointFailures` once every other point is stored.
    """

    def run(
        self,
        points: Sequence[GridPoint],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult] | None = None,
    ) -> list[PointResult]: ...


class PointFailures(RuntimeError):
    """Some points failed; every other point finished and is stored.

    `results`: the finished (or already done) points, in grid order. `failed`: point id ->
    its error, one line each. Rerunning the sweep redoes only the failed points.
    """

    def __init__(self, results: Sequence[PointResult], failed: Mapping[str, str]) -> None:
        self.results = list(results)
        self.failed = dict(failed)
        total = len(self.results) + len(self.failed)
        details = "; ".join(f"{pid}: {err}" for pid, err in self.failed.items())
        super().__init__(f"{len(self.failed)} of {total} points failed ({details})")

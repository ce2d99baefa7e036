"""Executors that run a sweep's grid points somewhere other than this process.

Each one is registered by name in `passk_plugin.sweep.EXECUTORS` and imported only when a
sweep asks for it, so an optional dependency (Ray) costs nothing unless it is chosen:

    ray    passk_plugin.executors.ray:RayExecutor    one Ray task per grid point

An executor that goes on past a failed point raises `PointFailures` once every other point
is stored; `run_sweep` still builds the report from the finished points, then re-raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from passk_plugin.sweep import PointResult


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

"""Grid points as Ray tasks: `passk sweep --executor ray [--ray-address ADDR]`.

Each point (merge -> evaluate -> store) is one Ray task running
`passk_plugin.sweep.point.run_point`.
A task asks for one GPU when the cluster has GPUs (else one CPU; both configurable), so a
cluster with N GPUs works on N points at once. The driver keeps at most as many tasks in
flight as the live nodes have room for, re-reading the cluster on every tick, so its
"running" count is what the cluster runs and points start in grid order.

Where results are written: on the worker, by `run_point` itself, atomically (files into a
temporary directory, DONE.json last, one rename). Returning results to the driver instead
would push every point's sample logs (megabytes to gigabytes at large n) through Ray's object
store, and give Ray runs a second write path whose resume semantics could drift from the
local executor's. So the worker writes, the task returns only the small `PointResult`, and
the driver checks the point's DONE.json marker before counting it done. That is why the run
directory must be on a filesystem every node mounts at the same path (NFS, Lustre, a FUSE
bucket mount, ...): each task checks that it sees the run's sweep.json before starting.

Resuming: the driver skips points whose marker exists before submitting, and `run_point`
re-checks on the worker. A worker that dies mid-point leaves at most a `points/.tmp-*`
directory (never a complete-looking point), which the next `run_sweep` clears. Ray retries a
task whose worker or node died up to `max_retries` times. Exceptions raised by a point are not
retried: they are almost always deterministic (a missing checkpoint, a bad recipe, an lm_eval
error) and a point can cost hours; they are reported instead. Either way the other points go
on; at the end `PointFailures` names each failed point with its error, and a rerun of the
same sweep runs only the points without a marker.

Workers must import passk: a local Ray instance started from this Python uses it for its
workers; on a cluster, install `passk[ray]` (same versions) on every node and make the
checkpoints visible at the same paths (or use hub ids). The driver forwards its PASSK_* and
Hugging Face offline variables (`FORWARDED_ENV`) to the tasks; secrets such as HF_TOKEN are
not forwarded (set them on the nodes). With --in-memory each task loads its checkpoints
itself: merged weights still never touch the disk, but nothing stays resident between points.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from passk_plugin.executors.base import PointFailures
from passk_plugin.grid import GridPoint
from passk_plugin.sweep.point import run_point
from passk_plugin.sweep.settings import PointResult, SweepContext
from passk_plugin.sweep_store import RunStore

INSTALL_HINT = "--executor ray needs Ray: pip install 'passk[ray]' (on every node of the cluster)"
DEFAULT_MAX_RETRIES = 2
CONNECT_TIMEOUT_S = 10.0
# How often the driver refreshes progress and the cluster's capacity while points run.
TICK_S = 5.0
FORWARDED_ENV_PREFIXES = ("PASSK_",)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as err:
        raise ValueError(INSTALL_HINT) from err
    return ray


@dataclass(frozen=True)
class PointResources:
    """What one point's task asks Ray for."""

    num_cpus: float
    num_gpus: float


def point_resources(
    cluster: Mapping[str, float], num_cpus: float = 1.0, num_gpus: float | None = None
) -> PointResources:
    """One GPU per point when the cluster has GPUs (unless `num_gpus` says otherwise)."""
    if num_gpus is None:
        num_gpus = 1.0 if cluster.get("GPU", 0) > 0 else 0.0
    return PointResources(num_cpus=float(num_cpus), num_gpus=float(num_gpus))


def slots(nodes: Iterable[Mapping[str, float]], need: PointResources) -> int:
    """How many points the nodes (their total resources) can run at once."""
    total = 0
    for res in nodes:
        fits = [math.floor(res.get("CPU", 0) / need.num_cpus + 1e-9)] if need.num_cpus else []
        if need.num_gpus:
            fits.append(math.floor(res.get("GPU", 0) / need.num_gpus + 1e-9))
        total += min(fits) if fits else 1
    return total


def time_left(
    durations: Sequence[float], running_elapsed: Sequence[float], queued: int, capacity: int
) -> float | None:
    """Seconds until the sweep ends, from the median point duration so far (None: unknown)."""
    if not durations:
        return None
    typical = statistics.median(durations)
    work = sum(max(typical - e, 0.0) for e in running_elapsed) + queued * typical
    return work / max(capacity, 1)


def describe_error(err: BaseException, max_retries: int) -> str:
    """One line for a point's failure: the point's own exception, or how its worker was lost."""
    ray = import_ray()
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = err.cause if err.cause is not None else err
        return f"{type(cause).__name__}: {cause}".strip()
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    tries = f"tried {max_retries + 1} time{'s' if max_retries else ''}"
    return f"{type(err).__name__} ({tries}): {first}"


def gcs_endpoint(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a plain HEAD:PORT cluster address; None for "auto", ray://, local."""
    if not address or "://" in address or address in ("auto", "local"):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bad --ray-address {address!r}: use HEAD:6379, auto or ray://HEAD:10001")
    return host.strip("[]") or "127.0.0.1", int(port)


def unreachable(address: str | None, err: BaseException) -> str:
    return (
        f"cannot reach the Ray cluster at {address}: {err}. Start it with `ray start --head` "
        "(workers: `ray start --address HEAD:6379`), or drop --ray-address for a local instance"
    )


def forwarded_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The driver's variables that tasks inherit: passk's own and the Hugging Face offline flags."""
    return {
        k: v
        for k, v in environ.items()
        if k.startswith(FORWARDED_ENV_PREFIXES) or k in FORWARDED_ENV
    }


def run_point_task(
    spec: GridPoint, ctx: SweepContext, point_fn: Callable[..., PointResult]
) -> tuple[PointResult, str]:
    """The body of one Ray task, on a worker: check the run directory is shared, run the point."""
    host = socket.gethostname()
    store = RunStore(ctx.run_dir)
    if not store.settings_path.is_file():
        raise FileNotFoundError(
            f"run directory {ctx.run_dir} is not visible on Ray node {host}: put it on a "
            "filesystem every node mounts at the same path"
        )
    return point_fn(spec, ctx, None), host


class RayExecutor:
    """Runs each grid point as a Ray task; failed points are reported, the others go on.

    `address`: a running cluster ("HOST:6379", "ray://HOST:10001" or "auto"); None joins the
    cluster named by RAY_ADDRESS if set, else starts a local Ray instance for this sweep. If
    Ray is already initialised in this process, that connection is used as it is.
    `num_cpus` / `num_gpus`: per point (`num_gpus=None`: 1 when the cluster has GPUs, else 0).
    `max_retries`: how often Ray reruns a point whose worker or node died.
    `point_fn`: what a task runs (run_point; tests wrap it to inject faults).
    """

    def __init__(
        self,
        progress: bool = True,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        point_fn: Callable[..., PointResult] = run_point,
    ) -> None:
        import_ray()
        if not num_cpus >= 0 or (num_gpus is not None and not num_gpus >= 0):
            raise ValueError(f"CPUs and GPUs per point must be >= 0, got {num_cpus}, {num_gpus}")
        if not num_cpus and not num_gpus:
            raise ValueError("a point needs CPUs or GPUs: set --ray-cpus or --ray-gpus above 0")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        gcs_endpoint(address)  # a malformed address is refused before any work
        self.progress = progress
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.point_fn = point_fn

    def run(
        self,
        specs: Sequence[GridPoint],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult] | None = None,
    ) -> list[PointResult]:
        if all(RunStore(ctx.run_dir).is_done(s.id) for s in specs):
            return [PointResult(id=s.id, status="skipped") for s in specs]  # no cluster needed
        ray = import_ray()
        started = self._connect(ray)
        try:
            return self._run(ray, specs, ctx, point_fn or self.point_fn)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray: ModuleType) -> bool:
        """Connect (or start a local instance); True when this call did, so it disconnects."""
        if ray.is_initialized():
            return False
        address = self.address or ("auto" if os.environ.get("RAY_ADDRESS") else None)
        kwargs: dict[str, Any] = {"address": address}
        if address is None:
            kwargs["include_dashboard"] = False
        endpoint = gcs_endpoint(address)
        try:
            if endpoint is not None:
                # Ray itself retries an unreachable address for minutes; fail fast instead.
                with socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S):
                    pass
        except OSError as err:  # refused, timed out, unknown host
            raise ValueError(unreachable(address, err)) from err
        try:
            ray.init(**kwargs)
        except ConnectionError as err:
            raise ValueError(unreachable(address, err)) from err
        return True

    def _capacity(self, ray: ModuleType, need: PointResources) -> int:
        alive = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive", False)]
        return slots(alive, need)

    def _run(
        self,
        ray: ModuleType,
        specs: Sequence[GridPoint],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult],
    ) -> list[PointResult]:
        from tqdm.auto import tqdm

        store = RunStore(ctx.run_dir)
        finished: dict[str, PointResult] = {
            s.id: PointResult(id=s.id, status="skipped") for s in specs if store.is_done(s.id)
        }
        queue = deque(s for s in specs if s.id not in finished)
        need = point_resources(ray.cluster_resources(), self.num_cpus, self.num_gpus)
        task = ray.remote(
            num_cpus=need.num_cpus,
            num_gpus=need.num_gpus,
            # A fresh process per GPU point frees its GPU memory; CPU workers are reused
            # to save the imports of torch and lm_eval.
            max_calls=1 if need.num_gpus else 0,
            max_retries=self.max_retries,
            retry_exceptions=False,
            runtime_env={"env_vars": forwarded_env(os.environ)},
        )(run_point_task)

        running: dict[Any, tuple[GridPoint, float]] = {}
        failed: dict[str, str] = {}
        durations: list[float] = []
        n_done = 0
        desc = "sweep on ray"
        if finished:
            desc += f" ({len(finished)} of {len(specs)} already done)"
        bar = tqdm(
            total=len(queue), desc=desc, unit="point", disable=not self.progress, file=sys.stderr
        )
        warned_full = False
        capacity = 0

        def show(capacity: int) -> None:
            now = time.monotonic()
            elapsed = [now - t for _, t in running.values()]
            eta = time_left(durations, elapsed, len(queue), capacity) if running else 0.0
            bar.set_postfix_str(
                f"done={n_done} running={len(running)} failed={len(failed)} "
                f"left={'?' if eta is None else tqdm.format_interval(eta)}"
            )

        try:
            while queue or running:
                capacity = self._capacity(ray, need)
                if capacity == 0 and not warned_full:
                    bar.write(
                        f"no live Ray node offers {need.num_cpus:g} CPU and {need.num_gpus:g} GPU "
                        "for a point: waiting for the cluster to grow (or lower --ray-cpus/"
                        "--ray-gpus)",
                        file=sys.stderr,
                    )
                    warned_full = True
                while queue and len(running) < max(capacity, 1):
                    spec = queue.popleft()
                    if store.is_done(spec.id):  # finished meanwhile by another sweep
                        finished[spec.id] = PointResult(id=spec.id, status="skipped")
                        bar.update(1)
                        continue
                    running[task.remote(spec, ctx, point_fn)] = (spec, time.monotonic())
                show(capacity)
                if not running:
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=TICK_S)
                for ref in ready:
                    spec, t0 = running.pop(ref)
                    error = self._collect(ray, ref, spec, store, finished)
                    if error is None:
                        n_done += 1
                        durations.append(time.monotonic() - t0)
                    else:
                        failed[spec.id] = error
                    bar.update(1)
            show(capacity)
        except BaseException:
            # Interrupted: stop the points in flight. A killed worker leaves its point either
            # complete (renamed into place) or absent, never half-written.
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
        order = {s.id: i for i, s in enumerate(specs)}
        results = sorted(finished.values(), key=lambda r: order[r.id])
        if failed:
            raise PointFailures(results, {s.id: failed[s.id] for s in specs if s.id in failed})
        return results

    def _collect(
        self,
        ray: ModuleType,
        ref: Any,
        spec: GridPoint,
        store: RunStore,
        finished: dict[str, PointResult],
    ) -> str | None:
        """Take a finished task's outcome; returns the point's error, or None when it is stored."""
        try:
            result, host = ray.get(ref)
        except Exception as err:  # the point failed, or its worker was lost for good
            if store.is_done(spec.id):  # another attempt stored it after all
                finished[spec.id] = PointResult(id=spec.id, status="skipped")
                return None
            from tqdm.auto import tqdm

            tqdm.write(f"point {spec.id} failed:\n{err}", file=sys.stderr)
            return describe_error(err, self.max_retries)
        if not store.is_done(spec.id):
            return (
                f"finished on Ray node {host}, but {store.point_dir(spec.id)}/DONE.json is not "
                "visible to the driver: the run directory must be on a filesystem every node "
                "shares"
            )
        finished[spec.id] = result
        return None

"""The Ray executor: grid points as Ray tasks on a local 2-CPU Ray instance."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from passk_plugin.cli import main
from passk_plugin.executors.base import PointFailures
from passk_plugin.executors.ray import (
    PointResources,
    RayExecutor,
    forwarded_env,
    gcs_endpoint,
    point_resources,
    run_point_task,
    slots,
    time_left,
)
from passk_plugin.grid import GridPoint, Sampling
from passk_plugin.sweep import evaluation, preflight
from passk_plugin.sweep import run as run_mod
from passk_plugin.sweep.point import run_point
from passk_plugin.sweep.run import make_executor, run_sweep
from passk_plugin.sweep.settings import EvalSettings, PointResult, SweepContext
from passk_plugin.sweep_store import DONE_FILE, RunStore


@pytest.fixture(autouse=True)
def fake_tasks(monkeypatch):
    """The canned task "t" passes the sweep's preflight (real tasks are looked up alike)."""
    monkeypatch.setattr(
        preflight,
        "task_infos",
        lambda s: {t: preflight.TaskInfo(name=t, default_n=None, bench=None) for t in s.tasks},
    )


# ---------------------------------------------------------------------------- unit tests


def test_point_resources():
    assert point_resources({"CPU": 8, "GPU": 4}) == PointResources(num_cpus=1, num_gpus=1)
    assert point_resources({"CPU": 8}) == PointResources(num_cpus=1, num_gpus=0)
    assert point_resources({"CPU": 8, "GPU": 4}, 4, 2) == PointResources(num_cpus=4, num_gpus=2)
    assert point_resources({"CPU": 8, "GPU": 4}, num_gpus=0) == PointResources(1, 0)


def test_slots():
    nodes = [{"CPU": 16, "GPU": 8}, {"CPU": 16, "GPU": 4}, {"CPU": 4}]  # a head without GPUs
    assert slots(nodes, PointResources(1, 1)) == 12
    assert slots(nodes, PointResources(1, 3)) == 2 + 1  # a point never spans nodes
    assert slots(nodes, PointResources(8, 1)) == 2 + 2  # CPUs bound it
    assert slots(nodes, PointResources(1, 0)) == 36
    assert slots([{"CPU": 2, "GPU": 1}], PointResources(0.5, 0.25)) == 4
    assert slots([{"CPU": 2}], PointResources(1, 1)) == 0
    assert slots([], PointResources(1, 0)) == 0


def test_time_left():
    assert time_left([], [1.0], 3, 2) is None  # nothing finished yet: unknown
    # median 10 s; one point 4 s in (6 s to go), two queued: (6 + 2 * 10) s over 2 slots
    assert time_left([9, 10, 30], [4.0], 2, 2) == pytest.approx(13.0)
    assert time_left([10], [15.0], 0, 1) == 0.0  # overdue points count as about to finish
    assert time_left([10], [], 3, 0) == pytest.approx(30.0)


def test_forwarded_env():
    env = {"PASSK_DATA_DIR": "/d", "HF_HUB_OFFLINE": "1", "HF_TOKEN": "secret", "PATH": "/bin"}
    assert forwarded_env(env) == {"PASSK_DATA_DIR": "/d", "HF_HUB_OFFLINE": "1"}


def test_gcs_endpoint():
    assert gcs_endpoint("10.0.0.1:6379") == ("10.0.0.1", 6379)
    assert gcs_endpoint("[::1]:6379") == ("::1", 6379)
    assert gcs_endpoint(None) is gcs_endpoint("auto") is gcs_endpoint("ray://h:10001") is None
    with pytest.raises(ValueError, match="bad --ray-address 'head'"):
        gcs_endpoint("head")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_fails_fast_and_a_finished_sweep_needs_none(tmp_path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    store = RunStore(tmp_path)
    store.write_settings({})
    ctx = SweepContext(run_dir=str(tmp_path), settings=EvalSettings(tasks=["t"]))
    executor = RayExecutor(progress=False, address=f"127.0.0.1:{_closed_port()}")
    with pytest.raises(ValueError, match="cannot reach the Ray cluster at 127.0.0.1:.*ray start"):
        executor.run([_spec()], ctx)
    store.write_point("late-T1", {"results.json": "{}"}, {})
    assert executor.run([_spec()], ctx) == [PointResult(id="late-T1", status="skipped")]
    assert not ray.is_initialized()


def _spec(pid: str = "late-T1") -> GridPoint:
    return GridPoint(
        id=pid, method="decoding", checkpoints=("/late",), sampling=Sampling(temperature=1.0)
    )


def test_task_refuses_a_run_dir_it_cannot_see(tmp_path):
    ctx = SweepContext(run_dir=str(tmp_path / "elsewhere"), settings=EvalSettings(tasks=["t"]))
    with pytest.raises(FileNotFoundError, match="not visible on Ray node .*every node mounts"):
        run_point_task(_spec(), ctx, run_point)


def test_without_ray_the_error_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'passk\[ray\]'"):
        make_executor("ray")
    out = tmp_path / "run"
    rc = main(["sweep", "--late", "/x", "--temperatures", "1", "--out", str(out),
               "--executor", "ray"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "--executor ray needs Ray: pip install 'passk[ray]'" in err
    assert not out.exists()  # refused before any file is written


def test_ray_flags_need_the_ray_executor(tmp_path, capsys):
    rc = main(["sweep", "--late", "/x", "--temperatures", "1", "--out", str(tmp_path),
               "--ray-address", "auto", "--ray-gpus", "2"])  # fmt: skip
    assert rc == 2
    assert "--ray-address, --ray-gpus only apply to --executor ray" in capsys.readouterr().err


def test_cli_reports_failed_points_and_exits_nonzero(monkeypatch, tmp_path, tiny_pair, capsys):
    def fake_run_sweep(run_dir, specs, *args, **kwargs):
        finished = [PointResult(id="late-T1", status="done")]
        raise PointFailures(finished, {"late-T0.5": "ValueError: bad recipe"})

    monkeypatch.setattr(run_mod, "run_sweep", fake_run_sweep)
    rc = main(["sweep", "--late", str(tiny_pair[1]), "--temperatures", "0.5,1",
               "--out", str(tmp_path / "run"), "--no-report"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    assert "point late-T0.5 failed: ValueError: bad recipe" in err
    assert "1 of 2 points failed; the finished ones (1) are kept" in err
    assert "rerun the same command to run only the failed ones" in err


def test_executor_checks_its_arguments():
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match=">= 0"):
        RayExecutor(num_cpus=-1)
    with pytest.raises(ValueError, match="needs CPUs or GPUs"):
        RayExecutor(num_cpus=0, num_gpus=0)
    with pytest.raises(ValueError, match="max_retries"):
        RayExecutor(max_retries=-1)
    assert make_executor("ray", progress=False, address="auto").address == "auto"


# ------------------------------------------------------------------ on a local Ray instance


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance with 2 CPUs; this module's helpers are shipped to its workers."""
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    ray.init(num_cpus=2, include_dashboard=False)
    # Workers cannot import this test module: send its helpers by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def fake_evaluate(ctx: SweepContext, spec: GridPoint, model_ref) -> dict:
    """Canned lm_eval results (the store and the report read them like real ones)."""
    temperature = spec.gen_kwargs().get("temperature")
    p1 = 0.5 if temperature is None else temperature / 2
    return {
        "results": {"t": {"alias": "t", "pass@1,all": p1, "pass@1_stderr,all": 0.1}},
        "configs": {"t": {"generation_kwargs": {"temperature": temperature}}},
        "config": {"model_args": {"pretrained": str(model_ref)}},
        "samples": {"t": [{"doc_id": 0, "arguments": [("q", {})], "resps": [["a"]],
                           "filtered_resps": [["v"]], "target": 1, "n": 2, "c": 1}]},
    }  # fmt: skip


_real_replace = os.replace


def _die_at_point_rename(src, dst):
    """os.replace that kills the process right before a point is renamed into place."""
    if Path(dst).parent.name == "points":
        os._exit(17)
    return _real_replace(src, dst)


@dataclass(frozen=True)
class Faults:
    """run_point on the workers with injected faults, logging every attempt to `scratch`.

    crash: the worker process dies just before the point's final rename (its files are all
    written), on every attempt; crash_once: the same on the first attempt only; fail: the
    point raises. Evaluation is canned unless real_eval.
    """

    scratch: str
    crash: tuple[str, ...] = ()
    crash_once: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    real_eval: bool = False

    def attempts(self) -> list[str]:
        log = Path(self.scratch) / "attempts.log"
        return log.read_text().split() if log.exists() else []

    def __call__(self, spec: GridPoint, ctx: SweepContext, memory=None) -> PointResult:
        first = spec.id not in self.attempts()
        with open(Path(self.scratch) / "attempts.log", "a") as fh:
            fh.write(spec.id + "\n")
        if spec.id in self.fail:
            raise ValueError(f"injected failure in {spec.id}")
        with contextlib.ExitStack() as stack:
            if not self.real_eval:
                stack.enter_context(mock.patch.object(evaluation, "evaluate", fake_evaluate))
            if spec.id in self.crash or (spec.id in self.crash_once and first):
                stack.enter_context(mock.patch("os.replace", _die_at_point_rename))
            return run_point(spec, ctx, memory)


@dataclass(frozen=True)
class NoStore:
    """Claims success without storing anything, as a worker on another filesystem would."""

    scratch: str

    def __call__(self, spec: GridPoint, ctx: SweepContext, memory=None) -> PointResult:
        (Path(self.scratch) / f"{spec.id}.env").write_text(os.environ.get("PASSK_TEST_ECHO", ""))
        return PointResult(id=spec.id, status="done")


def _temperature_specs(checkpoint: Path, temperatures) -> list[GridPoint]:
    return [
        GridPoint(
            id=f"late-T{t:g}",
            method="decoding",
            checkpoints=(str(checkpoint),),
            sampling=Sampling(temperature=t),
        )
        for t in temperatures
    ]


def _leaderboard_ids(run_dir: Path) -> list[str]:
    with open(RunStore(run_dir).report_dir / "leaderboard.csv") as fh:
        return sorted(row["id"] for row in csv.DictReader(fh))


@pytest.mark.slow
def test_failures_and_crashes_spare_the_other_points_and_a_rerun_finishes(ray_local, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run_dir = tmp_path / "run"
    specs = _temperature_specs(tmp_path, [0.25, 0.5, 0.75, 1.0])
    settings = EvalSettings(tasks=["t"], n=2)
    faults = Faults(str(scratch), crash=("late-T0.5",), crash_once=("late-T1",),
                    fail=("late-T0.75",))  # fmt: skip
    executor = RayExecutor(progress=False, max_retries=1, point_fn=faults)

    with pytest.raises(PointFailures) as info:
        run_sweep(run_dir, specs, settings, executor=executor)
    failed = info.value.failed
    assert list(failed) == ["late-T0.5", "late-T0.75"]
    assert failed["late-T0.5"].startswith("WorkerCrashedError (tried 2 times)")
    assert failed["late-T0.75"] == "ValueError: injected failure in late-T0.75"
    assert [(r.id, r.status) for r in info.value.results] == [
        ("late-T0.25", "done"),
        ("late-T1", "done"),  # its worker died once; Ray's retry stored it
    ]
    assert sorted(faults.attempts()) == sorted(
        ["late-T0.25", "late-T0.5", "late-T0.5", "late-T0.75", "late-T1", "late-T1"]
    )
    store = RunStore(run_dir)
    assert store.done_ids() == ["late-T0.25", "late-T1"]
    # The dead workers had written every file of late-T0.5, DONE.json included, but never
    # renamed it into place: not a point, and the rerun clears it.
    leftovers = list(store.points_root.glob(".tmp-late-T0.5-*"))
    assert len(leftovers) == 2 and all((d / DONE_FILE).is_file() for d in leftovers)
    assert not store.point_dir("late-T0.5").exists()
    assert _leaderboard_ids(run_dir) == ["late-T0.25", "late-T1"]  # report of finished points

    kept = (store.point_dir("late-T0.25") / "results.json").stat()
    rerun = Faults(str(scratch))
    results = run_sweep(run_dir, specs, settings, executor=RayExecutor(progress=False,
                        point_fn=rerun))  # fmt: skip
    assert [(r.id, r.status) for r in results] == [
        ("late-T0.25", "skipped"),
        ("late-T0.5", "done"),
        ("late-T0.75", "done"),
        ("late-T1", "skipped"),
    ]
    assert faults.attempts()[6:] in (["late-T0.5", "late-T0.75"], ["late-T0.75", "late-T0.5"])
    again = (store.point_dir("late-T0.25") / "results.json").stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    assert store.done_ids() == [s.id for s in specs]
    assert not list(store.points_root.glob(".tmp-*"))
    assert _leaderboard_ids(run_dir) == [s.id for s in specs]
    done = json.loads((store.point_dir("late-T0.5") / DONE_FILE).read_text())
    assert done["id"] == "late-T0.5"


@pytest.mark.slow
def test_a_point_the_driver_cannot_see_is_a_failure(ray_local, tmp_path, monkeypatch):
    # Set after Ray started, so the task sees it only because the driver forwards it.
    monkeypatch.setenv("PASSK_TEST_ECHO", "forwarded")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    specs = _temperature_specs(tmp_path, [1.0])
    executor = RayExecutor(progress=False, point_fn=NoStore(str(scratch)))
    with pytest.raises(PointFailures) as info:
        run_sweep(tmp_path / "run", specs, EvalSettings(tasks=["t"]), executor=executor)
    assert "DONE.json is not visible to the driver" in info.value.failed["late-T1"]
    assert info.value.results == []
    assert (scratch / "late-T1.env").read_text() == "forwarded"


# -------------------------------------------------------- real models: ray equals local

TASK = "gsm8k_passk"
EVAL_FLAGS = [
    "--tasks", TASK, "--num-fewshot", "1", "--n", "4", "--limit", "2", "--temperature", "1.0",
    "--max-gen-toks", "8", "--batch-size", "8", "--device", "cpu", "--seed", "1234",
    "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def offline_data(shared_data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PASSK_DATA_DIR", str(shared_data))
        yield shared_data


@pytest.mark.slow
def test_ray_sweep_equals_local_sweep(ray_local, offline_data, tiny_pair, tmp_path):
    early, late = tiny_pair
    grid = ["--early", str(early), "--late", str(late), "--alphas", "0,0.5,1"]
    runs = {}
    for executor in ("local", "ray"):
        runs[executor] = tmp_path / executor
        flags = [*grid, *EVAL_FLAGS, "--out", str(runs[executor]), "--executor", executor]
        assert main(["sweep", *flags]) == 0
    local, on_ray = RunStore(runs["local"]), RunStore(runs["ray"])
    ids = ["wise-ft_a0.000", "wise-ft_a0.500", "wise-ft_a1.000"]
    assert local.done_ids() == on_ray.done_ids() == ids
    board = "leaderboard.csv"
    assert (local.report_dir / board).read_text() == (on_ray.report_dir / board).read_text()
    for pid in ids:
        a, b = (
            json.loads((s.point_dir(pid) / "results.json").read_text()) for s in (local, on_ray)
        )
        assert a["results"] == b["results"]
        samples = [
            [json.loads(line) for line in (s.point_dir(pid) / f"samples_{TASK}.jsonl").open()]
            for s in (local, on_ray)
        ]
        # same seed, same weights: the very same generations, not only the same scores
        assert [r["resps"] for r in samples[0]] == [r["resps"] for r in samples[1]]
        assert [(r["n"], r["c"]) for r in samples[0]] == [(r["n"], r["c"]) for r in samples[1]]

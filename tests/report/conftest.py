"""Synthetic stored results: run directories written exactly as `passk sweep` stores points.

Per-problem counts c are fixed by hand; every stored metric is computed from them with
passk_plugin.metrics, the way the tasks compute them, so tests can check the report against
independent computations on the same counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from passk_plugin import metrics
from passk_plugin.grid import GridPoint, Sampling
from passk_plugin.sweep_store import RunStore, dumps_json

N = 8
KS = (1, 2, 4, 8)
TASK = "gsm8k_passk"

# point id -> (method, alpha, temperature, per-problem correct counts out of N)
POINTS: dict[str, tuple[str, float | None, float, list[int]]] = {
    "wise-ft_a0.000": ("wise-ft", 0.0, 0.6, [0, 1, 2, 3, 0, 4, 1, 0, 2, 5]),
    "wise-ft_a0.500": ("wise-ft", 0.5, 0.6, [1, 2, 3, 4, 1, 5, 2, 1, 3, 6]),
    "wise-ft_a1.000": ("wise-ft", 1.0, 0.6, [0, 8, 8, 8, 0, 8, 0, 0, 8, 8]),
    "late-T0.5": ("decoding", None, 0.5, [0, 8, 8, 8, 0, 8, 0, 0, 7, 8]),
    "late-T1": ("decoding", None, 1.0, [0, 7, 6, 8, 1, 7, 0, 1, 6, 7]),
}


def task_results(c: list[int], n: int = N, ks=KS, task: str = TASK) -> dict:
    """lm_eval's per-task results block for counts c: metric,filter keys with stderrs."""
    c_arr = np.asarray(c)
    out: dict = {"alias": task}
    for k in ks:
        mean, se = metrics.mean_and_stderr(metrics.pass_at_k(n, c_arr, k))
        out[f"pass@{k},all"] = mean
        out[f"pass@{k}_stderr,all"] = se
    out["n,all"] = float(n)
    out["n_stderr,all"] = 0.0
    out["c,all"] = float(c_arr.mean())
    out["c_stderr,all"] = metrics.mean_and_stderr(c_arr)[1]
    return out


def results_doc(tasks: dict[str, list[int]], temperature: float, model_args: str = "") -> dict:
    return {
        "results": {t: task_results(c, task=t) for t, c in tasks.items()},
        "groups": {},
        "configs": {
            t: {"task": t, "generation_kwargs": {"do_sample": True, "temperature": temperature}}
            for t in tasks
        },
        "config": {"model": "hf", "model_args": model_args},
    }


def samples_lines(c: list[int], n: int = N) -> str:
    lines = []
    for i, ci in enumerate(c):
        row = {
            "doc_id": i,
            "filter": "all",
            "metrics": ["pass@1", "n", "c"],
            "pass@1": ci / n,
            "n": n,
            "c": ci,
        }
        lines.append(json.dumps(row))
    return "\n".join(lines) + "\n"


def write_point(store: RunStore, pid: str, method: str, alpha, temperature, tasks) -> None:
    if method == "decoding":
        point = GridPoint(
            id=pid,
            method="decoding",
            checkpoints=("/late",),
            sampling=Sampling(temperature=temperature),
        )
    else:
        point = GridPoint(
            id=pid,
            method=method,
            alpha=alpha,
            checkpoints=("/early", "/late"),
            weights=(1 - alpha, alpha),
        )
    files = {
        "point.json": dumps_json(point.to_stored(store.root)),
        "results.json": dumps_json(results_doc(tasks, temperature)),
    }
    for t, c in tasks.items():
        files[f"samples_{t}.jsonl"] = samples_lines(c)
    store.write_point(pid, files, {"id": pid})


@pytest.fixture
def synthetic_run(tmp_path) -> Path:
    """A run directory with the five POINTS on one task."""
    store = RunStore(tmp_path / "run")
    for pid, (method, alpha, temp, c) in POINTS.items():
        write_point(store, pid, method, alpha, temp, {TASK: c})
    return store.root


@pytest.fixture
def two_task_run(tmp_path) -> Path:
    """Two points on two tasks (for averages across tasks)."""
    store = RunStore(tmp_path / "run2")
    write_point(store, "a", "wise-ft", 0.0, 0.6, {"t1": [0, 4, 8], "t2": [8, 8, 0]})
    write_point(store, "b", "wise-ft", 1.0, 0.6, {"t1": [8, 8, 8], "t2": [0, 0, 1]})
    return store.root

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


def grid_point(pid: str, method: str, alpha, temperature) -> GridPoint:
    """A decoding point of /late, or a merge of /early with /late at `alpha`."""
    if method == "decoding":
        return GridPoint(
            id=pid,
            method=method,
            checkpoints=("/late",),
            sampling=Sampling(temperature=temperature),
        )
    if method == "slerp":
        return GridPoint(id=pid, method=method, t=alpha, checkpoints=("/early", "/late"))
    return GridPoint(
        id=pid,
        method=method,
        alpha=alpha,
        checkpoints=("/early", "/late"),
        weights=(1 - alpha, alpha),
    )


def write_point(store: RunStore, pid: str, method: str, alpha, temperature, tasks) -> None:
    point = grid_point(pid, method, alpha, temperature)
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


WIDE_TASKS = ("gsm8k_passk_zeroshot", "math500_passk_zeroshot")
WIDE_N, WIDE_PROBLEMS = 16, 128
WIDE_KS = (1, 2, 4, 8, 16)


def _wide_counts(rng: np.random.Generator, mean: float, spread: float) -> list[int]:
    """Per-problem counts from a beta-binomial: `spread` near 0 makes rho pile up at 0 and 1."""
    a, b = mean / spread, (1 - mean) / spread
    return rng.binomial(WIDE_N, rng.beta(a, b, WIDE_PROBLEMS)).tolist()


def write_wide_point(store: RunStore, pid, method, alpha, temperature, tasks) -> None:
    """Like write_point, with n = 16 and maj@k per problem (a vote counted correct when most
    samples are, a stand-in for the real vote that keeps maj@k tied to the counts)."""
    point = grid_point(pid, method, alpha, temperature)
    doc = {"results": {}, "groups": {}, "configs": {}, "config": {}}
    files: dict[str, str] = {"point.json": dumps_json(point.to_stored(store.root))}
    for t, c in tasks.items():
        c_arr = np.asarray(c)
        res = task_results(c, n=WIDE_N, ks=WIDE_KS, task=t)
        maj = {k: (c_arr / WIDE_N > 0.5 - 0.2 / k).astype(float) for k in WIDE_KS[1:]}
        for k, v in maj.items():
            res[f"maj@{k},all"], res[f"maj@{k}_stderr,all"] = metrics.mean_and_stderr(v)
        # Diversity figures under the tasks' names (stand-ins tied to the counts), shown by
        # default beside Pass@1, Pass@k_max and maj@k_max: the page's widest case.
        rho = c_arr / WIDE_N
        diversity = {
            "rho0_share": (rho == 0).astype(float),
            "rho1_share": (rho == 1).astype(float),
            "distinct_answers": 1.0 + 3.0 * rho * (1 - rho),
            "answer_entropy": 2.0 * rho * (1 - rho),
        }
        for name, v in diversity.items():
            res[f"{name},all"], res[f"{name}_stderr,all"] = metrics.mean_and_stderr(v)
        doc["results"][t] = res
        doc["configs"][t] = {"generation_kwargs": {"do_sample": True, "temperature": temperature}}
        rows = []
        for i, ci in enumerate(c):
            row = {"doc_id": i, "filter": "all", "n": WIDE_N, "c": ci, "pass@1": ci / WIDE_N}
            row.update({f"maj@{k}": float(v[i]) for k, v in maj.items()})
            rows.append(json.dumps(row))
        files[f"samples_{t}.jsonl"] = "\n".join(rows) + "\n"
    files["results.json"] = dumps_json(doc)
    store.write_point(pid, files, {"id": pid})


def write_wide_run(root: Path) -> Path:
    """Ten points (WiSE-FT α = 0 … 1, three SLERP points, the late checkpoint at two
    temperatures) on two tasks, 128 problems each: the page-width case of the report."""
    rng = np.random.default_rng(7)
    store = RunStore(root)
    grid = [("wise-ft", a, 0.6) for a in (0.0, 0.25, 0.5, 0.75, 1.0)]
    grid += [("slerp", a, 0.6) for a in (0.25, 0.5, 0.75)]
    grid += [("decoding", None, t) for t in (0.3, 1.0)]
    for method, alpha, temp in grid:
        letter = "t" if method == "slerp" else "a"
        pid = f"late-T{temp:g}" if alpha is None else f"{method}_{letter}{alpha:.3f}"
        # The paper's picture: along α the mean success rate rises and its spread over
        # problems grows (rho piles up at 0 and 1), so Pass@16 peaks in between; a hotter
        # late checkpoint spreads less and solves less per sample.
        x = 1.0 if alpha is None else alpha
        mean = 0.3 + 0.35 * x - (0.04 if method == "slerp" else 0.0) - 0.1 * (temp - 0.6)
        spread = 0.15 + 1.2 * x**2 - (0.8 * (temp - 0.6) if alpha is None else 0.0)
        tasks = {t: _wide_counts(rng, mean - 0.1 * j, spread) for j, t in enumerate(WIDE_TASKS)}
        write_wide_point(store, pid, method, alpha, temp, tasks)
    return store.root


@pytest.fixture
def wide_run(tmp_path) -> Path:
    return write_wide_run(tmp_path / "wide")

"""Everything a sweep needs, checked before the first merge or model load.

Each check raises `UsageError` with one line naming the problem and the fix. Nothing here
loads a model, merges, or writes into the run directory (the writability probe is a
temporary file, removed at once).
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passk_plugin.errors import UsageError
from passk_plugin.grid import GridPoint
from passk_plugin.sweep.settings import (
    IN_MEMORY_MODELS,
    VLLM_MODELS,
    EvalSettings,
    RunOptions,
)

# How a task YAML names passk's loader: custom_dataset: !function passk_plugin.data.<x>
_LOADER = re.compile(r"passk_plugin\.data\.(\w+)$")


@dataclass(frozen=True)
class TaskInfo:
    """What the sweep needs to know of a task before running it."""

    name: str
    default_n: int | None  # the YAML's `repeats` (None for groups and foreign tasks)
    bench: str | None  # passk's benchmark whose loader the task uses, if any


def task_infos(settings: EvalSettings) -> dict[str, TaskInfo]:
    """Look up every task of the run in the task index (no dataset or model is loaded).

    Unknown names are refused with the close matches among the known ones.
    """
    from passk_plugin.sweep.evaluation import task_manager

    index = task_manager(settings).task_index
    infos: dict[str, TaskInfo] = {}
    for name in settings.tasks:
        entry = index.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, list(index), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else "see `passk tasks`"
            raise UsageError(f"unknown task {name!r}: {hint}")
        infos[name] = _info(name, entry.cfg or {})
    return infos


def _info(name: str, cfg: Mapping[str, Any]) -> TaskInfo:
    loader = str(cfg.get("custom_dataset") or "")
    match = _LOADER.search(loader)
    bench = None
    if match:
        from passk_plugin.data import LOADER_BENCH

        bench = LOADER_BENCH.get(match.group(1))
    from passk_plugin.harness import DEFAULT_N

    repeats = cfg.get("repeats")
    passk_task = "PasskTask" in str(cfg.get("class") or "")
    default_n = int(repeats) if repeats else (DEFAULT_N if passk_task else None)
    return TaskInfo(name=name, default_n=default_n, bench=bench)


def check_ks(settings: EvalSettings, infos: Mapping[str, TaskInfo]) -> None:
    """k ≤ n for every task's effective n (--n, else the YAML's default)."""
    from passk_plugin.metrics import parse_ks

    if settings.k is None:
        return
    for info in infos.values():
        n = settings.n if settings.n is not None else info.default_n
        if n is None:
            continue
        try:
            parse_ks(settings.k, n)
        except ValueError as err:
            raise UsageError(f"--k {settings.k} for task {info.name} (n={n}): {err}") from None


def check_data(settings: EvalSettings, infos: Mapping[str, TaskInfo]) -> None:
    """The local data files the tasks will read exist (when a local data directory is used)."""
    from passk_plugin.data import check_local_data

    for info in infos.values():
        if info.bench is None:
            continue
        try:
            check_local_data(info.bench, settings.data_dir)
        except FileNotFoundError as err:
            raise UsageError(f"task {info.name}: {err}") from None


def check_points(points: Sequence[GridPoint]) -> None:
    """Every checkpoint exists; those merged together are compatible (shapes, config)."""
    from passk_plugin.checkpoints import check_checkpoints, resolve_checkpoint

    checked: set[tuple[str, ...]] = set()
    for p in points:
        refs = tuple(sorted(set(p.checkpoints)))
        if refs in checked:
            continue
        try:
            if p.needs_merge:
                check_checkpoints(list(refs))
            else:
                resolve_checkpoint(refs[0])
        except (FileNotFoundError, ValueError) as err:
            raise UsageError(f"point {p.id}: {err}") from None
        checked.add(refs)


def check_options(settings: EvalSettings, options: RunOptions) -> None:
    for key in ("batch_size", "device"):
        if key in settings.model_args and getattr(options, key) is not None:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{key} is given twice: use {flag} or {key}= in --model-args")
    if options.in_memory and settings.model not in IN_MEMORY_MODELS:
        raise UsageError(
            f"--in-memory evaluates a resident model: use --model "
            f"{' or '.join(IN_MEMORY_MODELS)}, or drop --in-memory for {settings.model!r}"
        )


# Sampling settings vLLM's SamplingParams lacks (passing one there raises TypeError mid-run).
VLLM_UNSUPPORTED_SAMPLING = ("typical_p",)


def check_sampling(points: Sequence[GridPoint], settings: EvalSettings) -> None:
    """The backend can apply every point's sampling settings (vLLM has no typical_p)."""
    if settings.model not in VLLM_MODELS:
        return
    for key in VLLM_UNSUPPORTED_SAMPLING:
        if key in settings.gen_kwargs:
            raise UsageError(
                f"--model {settings.model} cannot apply {key} (vLLM's sampler has none): "
                f"drop it from --gen-kwargs or use --model hf-passk"
            )
        for p in points:
            if key in p.gen_kwargs():
                raise UsageError(
                    f"point {p.id}: --model {settings.model} cannot apply {key} (vLLM's "
                    "sampler has none): drop it from --decoding or use --model hf-passk"
                )


def check_writable(run_dir: str | Path) -> None:
    """The run directory can be created and written (probed with a temporary file)."""
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--out {root} is a file: choose a directory")
    probe_dir = root if root.is_dir() else _existing_parent(root)
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to {probe_dir}: choose another --out") from None
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as err:
        raise UsageError(
            f"cannot write to {probe_dir} ({err.strerror}): choose another --out"
        ) from None


def _existing_parent(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--out {path}: {parent} is a file, not a directory")
            return parent
    return Path.cwd()


def check_grid(points: Sequence[GridPoint]) -> None:
    if not points:
        raise UsageError("the grid is empty: give --alphas, --temperatures or --recipes")
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise UsageError(f"point ids repeat in the grid: {', '.join(repeated)}")


def preflight(
    run_dir: str | Path,
    points: Sequence[GridPoint],
    settings: EvalSettings,
    options: RunOptions,
) -> dict[str, TaskInfo]:
    """Every check, cheapest first; returns what was learnt of the tasks."""
    check_grid(points)
    check_options(settings, options)
    check_sampling(points, settings)
    check_writable(run_dir)
    infos = task_infos(settings)
    check_ks(settings, infos)
    check_data(settings, infos)
    check_points(points)
    return infos

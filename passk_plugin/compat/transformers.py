"""transformers internals used by ``hf-passk``: generation-settings resolution and cache surgery.

``hf-passk`` samples the way ``generate()`` does, so it resolves settings and builds logits
processors with ``generate()``'s own private steps (``_prepare_generation_config``,
``_prepare_special_tokens``, ``_get_logits_processor``), and it shares one prompt's key/value
cache between that prompt's samples by editing ``DynamicCache`` layers' tensors directly.
Those layers (``DynamicCache.layers``, ``DynamicLayer``) exist since transformers 4.54, and
``DynamicCache(config=...)`` builds sliding-window layers for sliding-window models since 4.56.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import transformers
from transformers import GenerationMixin
from transformers.cache_utils import DynamicCache, DynamicLayer

from passk_plugin.compat import SUPPORTED as SUPPORTED_VERSIONS
from passk_plugin.compat import installed_version, require

SUPPORTED = SUPPORTED_VERSIONS["transformers"]


def _has_params(func: Any, *names: str) -> bool:
    params = inspect.signature(func).parameters
    return all(name in params for name in names)


def check_supported() -> None:
    """Raise UnsupportedVersion unless the installed transformers has what passk uses."""
    mixin = GenerationMixin
    require(
        "transformers",
        installed_version("transformers"),
        SUPPORTED,
        [
            (
                "GenerationMixin._prepare_generation_config",
                lambda: _has_params(mixin._prepare_generation_config, "generation_config"),
            ),
            (
                "GenerationMixin._prepare_special_tokens",
                lambda: _has_params(
                    mixin._prepare_special_tokens, "kwargs_has_attention_mask", "device"
                ),
            ),
            (
                "GenerationConfig._eos_token_tensor (set by _prepare_special_tokens)",
                lambda: "_eos_token_tensor" in inspect.getsource(mixin._prepare_special_tokens),
            ),
            (
                "GenerationMixin._get_logits_processor",
                lambda: _has_params(
                    mixin._get_logits_processor,
                    "generation_config",
                    "input_ids_seq_length",
                    "encoder_input_ids",
                    "device",
                    "model_kwargs",
                ),
            ),
            ("GenerationMixin._supports_logits_to_keep", lambda: mixin._supports_logits_to_keep),
            ("DynamicCache(config=...)", lambda: _has_params(DynamicCache.__init__, "config")),
            ("DynamicCache.layers", lambda: isinstance(DynamicCache().layers, list)),
            ("DynamicCache.batch_select_indices", lambda: DynamicCache.batch_select_indices),
            ("DynamicLayer.keys/values", lambda: _has_kv(DynamicLayer())),
        ],
    )


def _has_kv(layer: Any) -> bool:
    return hasattr(layer, "keys") and hasattr(layer, "values")


check_supported()


# ---------------------------------------------------------------------------- generation


def prepare_generation_config(
    model: Any, **kwargs: Any
) -> tuple[transformers.GenerationConfig, dict[str, Any]]:
    """``kwargs`` merged with the model's generation_config as ``generate()`` merges them.

    Returns the config and the arguments that are not generation settings.
    """
    return model._prepare_generation_config(None, **kwargs)


def prepare_special_tokens(
    model: Any, config: transformers.GenerationConfig, device: torch.device
) -> None:
    """Resolve ``config``'s special tokens (EOS, pad, ...) to tensors, as ``generate()`` does."""
    model._prepare_special_tokens(config, kwargs_has_attention_mask=True, device=device)


def eos_token_ids(config: transformers.GenerationConfig) -> set[int]:
    """The EOS token ids of a config that went through :func:`prepare_special_tokens`."""
    eos = config._eos_token_tensor
    return set() if eos is None else {int(t) for t in eos.flatten().tolist()}


def logits_processors(
    model: Any,
    config: transformers.GenerationConfig,
    ids: torch.Tensor,
    device: torch.device,
) -> Any:
    """The logits processors ``generate()`` builds for ``config`` on prompts ``ids``."""
    return model._get_logits_processor(
        generation_config=config,
        input_ids_seq_length=int(ids.shape[1]),
        encoder_input_ids=ids,
        device=device,
        model_kwargs={},
    )


def supports_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (compute only the last logits)."""
    return bool(model._supports_logits_to_keep())


# ---------------------------------------------------------------------------- cache surgery


def new_cache(model_config: Any) -> DynamicCache:
    """An empty cache with one layer per model layer, of the kind the model's attention needs."""
    return DynamicCache(config=model_config)


def unshareable_layer_kinds(model_config: Any) -> list[str]:
    """Names of the model's cache layer kinds other than full attention (sorted; [] if none).

    Only full-attention layers hold every past position, so only those can be copied
    between samples and padded or trimmed by the functions below.
    """
    kinds = {type(layer) for layer in new_cache(model_config).layers}
    return sorted(k.__name__ for k in kinds if k is not DynamicLayer)


def select_rows(cache: DynamicCache, index: torch.Tensor) -> None:
    """Keep (and repeat) the batch rows ``index`` of every layer, in place."""
    cache.batch_select_indices(index)


def trim_left(cache: DynamicCache, lead: int) -> None:
    """Drop the first ``lead`` positions of every layer, in place."""
    for layer in cache.layers:
        layer.keys = layer.keys[:, :, lead:, :]
        layer.values = layer.values[:, :, lead:, :]


def pad_left(cache: DynamicCache, extra: int) -> None:
    """Add ``extra`` zero positions before every layer's first position, in place."""
    for layer in cache.layers:
        layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, extra, 0))
        layer.values = torch.nn.functional.pad(layer.values, (0, 0, extra, 0))


def concat_rows(caches: Sequence[DynamicCache]) -> DynamicCache:
    """The first cache with the others' rows appended below its own (all of one width)."""
    first = caches[0]
    if len(caches) > 1:
        for i, layer in enumerate(first.layers):
            layer.keys = torch.cat([c.layers[i].keys for c in caches], dim=0)
            layer.values = torch.cat([c.layers[i].values for c in caches], dim=0)
    return first

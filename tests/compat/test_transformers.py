from __future__ import annotations

import pytest
import torch
import transformers
from transformers import GenerationMixin, LlamaConfig, MistralConfig

from passk_plugin.compat import SUPPORTED
from passk_plugin.compat import transformers as compat

from .conftest import assert_guard_fires

TINY = {"hidden_size": 16, "intermediate_size": 32, "num_attention_heads": 2,
        "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 64}  # fmt: skip


def test_imports_against_the_installed_version():
    compat.check_supported()
    assert compat.SUPPORTED == SUPPORTED["transformers"]


@pytest.mark.parametrize(
    "name",
    ["_prepare_generation_config", "_prepare_special_tokens", "_get_logits_processor",
     "_supports_logits_to_keep"],
)  # fmt: skip
def test_guard_fires_when_a_generation_internal_is_missing(monkeypatch, name):
    monkeypatch.delattr(GenerationMixin, name)
    assert_guard_fires(
        compat.check_supported, "transformers", ("transformers",), compat.SUPPORTED, name
    )


def test_guard_fires_for_a_cache_without_row_selection(monkeypatch):
    cls = transformers.cache_utils.DynamicCache
    owner = next(c for c in cls.__mro__ if "batch_select_indices" in vars(c))
    monkeypatch.delattr(owner, "batch_select_indices")
    assert_guard_fires(
        compat.check_supported, "transformers", ("transformers",), compat.SUPPORTED,
        "DynamicCache.batch_select_indices",
    )  # fmt: skip


def test_guard_fires_for_a_cache_that_ignores_the_model_config(monkeypatch):
    """transformers 4.54-4.55: DynamicCache takes no config, so sliding layers go unseen."""
    cls = transformers.cache_utils.DynamicCache
    original = cls.__init__

    def old_init(self, ddp_cache_data=None):
        original(self, ddp_cache_data)

    monkeypatch.setattr(cls, "__init__", old_init)
    assert_guard_fires(
        compat.check_supported, "transformers", ("transformers",), compat.SUPPORTED,
        "DynamicCache(config=...)",
    )  # fmt: skip


def test_sliding_window_layers_are_reported():
    assert compat.unshareable_layer_kinds(LlamaConfig(**TINY)) == []
    sliding = compat.unshareable_layer_kinds(MistralConfig(sliding_window=4, **TINY))
    assert sliding and all("Sliding" in name for name in sliding)


def _filled(rows: int, width: int, offset: float = 0.0) -> transformers.DynamicCache:
    cache = compat.new_cache(LlamaConfig(**TINY))
    for layer in range(TINY["num_hidden_layers"]):
        k = torch.arange(rows * 2 * width * 8, dtype=torch.float32).reshape(rows, 2, width, 8)
        cache.update(k + offset + layer, -(k + offset + layer), layer)
    return cache


def _keys(cache, layer=0):
    return cache.layers[layer].keys


def test_cache_surgery_moves_whole_rows_and_positions():
    cache = _filled(rows=2, width=3)
    before = _keys(cache).clone()
    compat.pad_left(cache, 2)
    assert _keys(cache).shape == (2, 2, 5, 8)
    assert torch.equal(_keys(cache)[:, :, 2:], before) and not _keys(cache)[:, :, :2].any()
    compat.trim_left(cache, 2)
    assert torch.equal(_keys(cache), before)
    assert torch.equal(cache.layers[1].values, -(before + 1))

    compat.select_rows(cache, torch.tensor([1, 1, 0]))
    assert torch.equal(_keys(cache), before[[1, 1, 0]])

    other = _filled(rows=1, width=3, offset=1000.0)
    merged = compat.concat_rows([cache, other])
    assert merged is cache
    assert torch.equal(_keys(merged), torch.cat([before[[1, 1, 0]], _keys(other)]))
    assert torch.equal(merged.layers[1].values[3], other.layers[1].values[0])


def test_generation_settings_resolve_like_generate():
    model = transformers.LlamaForCausalLM(LlamaConfig(eos_token_id=[3, 5], **TINY))
    config, rest = compat.prepare_generation_config(model, do_sample=True, top_k=4, bogus=1)
    assert config.do_sample and config.top_k == 4 and rest == {"bogus": 1}
    compat.prepare_special_tokens(model, config, torch.device("cpu"))
    assert compat.eos_token_ids(config) == {3, 5}
    ids = torch.zeros((2, 3), dtype=torch.long)
    processors = compat.logits_processors(model, config, ids, torch.device("cpu"))
    scores = processors(ids, torch.arange(2 * 64, dtype=torch.float32).reshape(2, 64))
    assert (scores.isfinite().sum(dim=-1) == 4).all()  # top-k kept 4 tokens per row
    assert compat.supports_logits_to_keep(model)

from __future__ import annotations

import importlib

import mergekit.plan

from passk_plugin.compat import SUPPORTED
from passk_plugin.compat import mergekit as compat

from .conftest import assert_guard_fires


def test_imports_against_the_installed_version():
    compat.check_supported()
    assert compat.SUPPORTED == SUPPORTED["mergekit"]


def test_guard_fires_when_the_out_config_helper_is_missing(monkeypatch):
    monkeypatch.delattr(importlib.import_module("mergekit.merge"), "_model_out_config")
    assert_guard_fires(
        compat.check_supported, "mergekit", ("mergekit",), compat.SUPPORTED,
        "merge._model_out_config",
    )  # fmt: skip


def test_guard_fires_when_the_disk_plan_is_missing(monkeypatch):
    monkeypatch.delattr(mergekit.plan.MergePlanner, "plan_to_disk")
    assert_guard_fires(
        compat.check_supported, "mergekit", ("mergekit",), compat.SUPPORTED,
        "MergePlanner.plan_to_disk",
    )  # fmt: skip


def test_merged_tensors_reads_every_input_through_read(tiny_pair):
    """A linear merge computed from tensors handed in by ``read`` (mergekit's loaders unused)."""
    import torch
    from mergekit.config import MergeConfiguration
    from safetensors.torch import load_file

    early, late = (str(p) for p in tiny_pair)
    config = MergeConfiguration.model_validate(
        {"merge_method": "linear", "base_model": early, "dtype": "float32",
         "models": [{"model": early, "parameters": {"weight": 0.75}},
                    {"model": late, "parameters": {"weight": 0.25}}]}
    )  # fmt: skip
    stored = {p: load_file(next(iter(sorted(tiny_pair[i].glob("*.safetensors")))))
              for i, p in enumerate((early, late))}  # fmt: skip
    reads = []

    def read(r):
        reads.append(r)
        return stored[r.checkpoint][r.names[0]]

    state = compat.merged_tensors(
        config, math_device="cpu", storage_device=torch.device("cpu"), read=read
    )
    assert {r.checkpoint for r in reads} == {early, late}
    for name, tensor in state.items():
        expected = 0.75 * stored[early][name].float() + 0.25 * stored[late][name].float()
        torch.testing.assert_close(tensor, expected)

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from passk_plugin.checkpoints import (
    check_checkpoints,
    inspect_checkpoint,
    is_local,
    resolve_checkpoint,
)


def _copy_with_tensors(src: Path, dst: Path, edit) -> Path:
    """A copy of checkpoint `src` whose tensors were changed by `edit(state_dict)`."""
    shutil.copytree(src, dst)
    state = load_file(dst / "model.safetensors")
    edit(state)
    save_file(state, dst / "model.safetensors", metadata={"format": "pt"})
    return dst


def test_hub_ids_are_not_local_and_pass_through():
    assert not is_local("Qwen/Qwen2.5-0.5B")
    assert resolve_checkpoint("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"
    assert check_checkpoints(["Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-1.5B"]) == [
        "Qwen/Qwen2.5-0.5B",
        "Qwen/Qwen2.5-1.5B",
    ]


@pytest.mark.parametrize("ref", ["./ckpt", "/no/such/ckpt", "~/no-such-ckpt", "late"])
def test_path_like_references_are_local(ref):
    assert is_local(ref)


def test_relative_paths_become_absolute(tiny_pair, monkeypatch):
    early, _ = tiny_pair
    monkeypatch.chdir(early.parent.parent)
    relative = f"{early.parent.name}/{early.name}"  # shaped like a hub id, but it exists
    assert is_local(relative)
    assert resolve_checkpoint(relative) == str(early.resolve())


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        resolve_checkpoint(tmp_path / "no-such-dir")


def test_a_file_is_not_a_checkpoint(tiny_model):
    with pytest.raises(FileNotFoundError, match="is a file"):
        resolve_checkpoint(tiny_model / "config.json")


def test_inspect_reads_shapes_from_headers(tiny_model):
    info = inspect_checkpoint(tiny_model)
    tensors = load_file(tiny_model / "model.safetensors")
    assert info.path == str(tiny_model.resolve())
    assert info.shapes == {name: tuple(t.shape) for name, t in tensors.items()}
    assert set(info.dtypes.values()) == {"F32"}
    assert info.config["model_type"] == "llama"
    assert info.weight_files == ("model.safetensors",)


def test_inspect_reads_pickled_weights(tiny_model, tmp_path):
    ckpt = tmp_path / "bin"
    ckpt.mkdir()
    shutil.copy(tiny_model / "config.json", ckpt)
    tensors = load_file(tiny_model / "model.safetensors")
    torch.save(tensors, ckpt / "pytorch_model.bin")
    info = inspect_checkpoint(ckpt)
    assert info.shapes == {name: tuple(t.shape) for name, t in tensors.items()}
    assert info.weight_files == ("pytorch_model.bin",)


def test_missing_config_or_weights(tiny_model, tmp_path):
    no_config = tmp_path / "no_config"
    shutil.copytree(tiny_model, no_config)
    (no_config / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        inspect_checkpoint(no_config)
    no_weights = tmp_path / "no_weights"
    shutil.copytree(tiny_model, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights"):
        inspect_checkpoint(no_weights)


def test_compatible_pair_resolves(tiny_pair):
    early, late = tiny_pair
    assert check_checkpoints([early, late]) == [str(early.resolve()), str(late.resolve())]


def test_config_mismatch_names_the_field(tiny_pair, wide_model):
    early, _ = tiny_pair
    with pytest.raises(ValueError, match=r"'hidden_size' is 64 in .* but 96 in"):
        check_checkpoints([early, wide_model])


def test_tensor_shape_mismatch_names_tensor_and_shapes(tiny_pair, tmp_path):
    early, late = tiny_pair
    name = "model.layers.1.mlp.up_proj.weight"

    def shrink(state):
        state[name] = state[name][:100].clone()

    odd = _copy_with_tensors(late, tmp_path / "odd", shrink)
    with pytest.raises(ValueError) as err:
        check_checkpoints([early, odd])
    message = str(err.value)
    assert name in message and "[128, 64]" in message and "[100, 64]" in message


def test_missing_tensor_is_named(tiny_pair, tmp_path):
    early, late = tiny_pair

    def drop(state):
        del state["model.layers.0.self_attn.k_proj.weight"]

    odd = _copy_with_tensors(late, tmp_path / "odd", drop)
    with pytest.raises(
        ValueError, match=r"'model.layers.0.self_attn.k_proj.weight' is in .*missing"
    ):
        check_checkpoints([early, odd])

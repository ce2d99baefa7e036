"""Checkpoint inspection before merging: paths, configs and tensor shapes.

Only metadata is read (config.json and the safetensors headers), never whole tensors, so
checking two 7B checkpoints costs milliseconds. Hub ids (e.g. ``Qwen/Qwen2.5-0.5B``) cannot
be inspected offline and are passed through unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Config fields that decide the shape of the weights or how they are wired together. Two
# checkpoints of one run agree on all of them; anything else (dropout, rope scaling, ...)
# may legitimately differ and is not compared.
SHAPE_FIELDS: tuple[str, ...] = (
    "architectures",
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "vocab_size",
    "tie_word_embeddings",
)

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+(@[A-Za-z0-9._/-]+)?")

# mergekit reads "a@rev" as a revision and "a+b" as a LoRA on top of a.
_MERGEKIT_SPECIAL = ("@", "+")


@dataclass(frozen=True)
class CheckpointInfo:
    """What a local checkpoint holds: its config and the shape and dtype of every tensor."""

    path: str
    config: dict
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    weight_files: tuple[str, ...]


def is_local(ref: str | Path) -> bool:
    """True when `ref` names a local directory rather than a hub id.

    A reference is local when it exists, when it looks like a path (starts with ``/``,
    ``.`` or ``~``), or when it is not shaped like a hub id ``org/name``: a bare ``late``
    that does not exist is a typo, not a hub model.
    """
    text = str(ref)
    if text.startswith(("/", ".", "~")) or Path(text).expanduser().exists():
        return True
    return _HUB_ID.fullmatch(text) is None


def resolve_checkpoint(ref: str | Path) -> str:
    """The absolute path of a local checkpoint, or a hub id unchanged.

    Raises FileNotFoundError for a local path that does not exist or is not a directory.
    mergekit needs absolute paths: offline, a relative path shaped like ``a/b`` is taken
    for a hub id and the merge fails.
    """
    if not is_local(ref):
        return str(ref)
    path = Path(ref).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint not found: {ref} (looked at {path}; hub ids look like org/name)"
        )
    if not path.is_dir():
        raise FileNotFoundError(
            f"checkpoint {ref} is a file; give the directory holding config.json and weights"
        )
    if any(ch in str(path) for ch in _MERGEKIT_SPECIAL):
        raise ValueError(
            f"checkpoint path {path} contains '@' or '+', which mergekit reads as a revision "
            "or a LoRA; rename or symlink the directory"
        )
    return str(path)


def _safetensors_meta(
    files: Sequence[Path],
) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for file in files:
        # safe_open memory-maps the file and parses only the header for shapes.
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                tensor_slice = handle.get_slice(name)
                shapes[name] = tuple(int(d) for d in tensor_slice.get_shape())
                dtypes[name] = str(tensor_slice.get_dtype())
    return shapes, dtypes


def _pickle_meta(files: Sequence[Path]) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    import torch

    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    for file in files:
        # mmap: storages stay on disk, so only the pickled metadata is read.
        state = torch.load(file, map_location="cpu", mmap=True, weights_only=True)
        for name, tensor in state.items():
            shapes[name] = tuple(tensor.shape)
            dtypes[name] = str(tensor.dtype).removeprefix("torch.")
        del state
    return shapes, dtypes


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """Read a local checkpoint's config.json and tensor shapes (headers only).

    Raises FileNotFoundError when the directory lacks config.json or weights
    (``*.safetensors``, or ``pytorch_model*.bin`` when there are no safetensors).
    """
    root = Path(resolve_checkpoint(path))
    config_file = root / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"checkpoint {root} has no config.json")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    safetensors_files = sorted(root.glob("*.safetensors"))
    if safetensors_files:
        shapes, dtypes = _safetensors_meta(safetensors_files)
        files = safetensors_files
    else:
        files = sorted(root.glob("pytorch_model*.bin"))
        if not files:
            raise FileNotFoundError(
                f"checkpoint {root} has no weights (*.safetensors or pytorch_model*.bin)"
            )
        shapes, dtypes = _pickle_meta(files)
    return CheckpointInfo(
        path=str(root),
        config=config,
        shapes=shapes,
        dtypes=dtypes,
        weight_files=tuple(f.name for f in files),
    )


def compare_checkpoints(a: CheckpointInfo, b: CheckpointInfo) -> str | None:
    """The first difference that makes `a` and `b` unmergeable, or None when compatible.

    Config shape fields are compared first (a clearer message than the tensors they
    cause), then the set of tensor names, then every tensor shape.
    """
    for field in SHAPE_FIELDS:
        va, vb = a.config.get(field), b.config.get(field)
        if va != vb:
            return f"config field {field!r} is {va!r} in {a.path} but {vb!r} in {b.path}"
    for name in sorted(a.shapes):
        if name not in b.shapes:
            return f"tensor {name!r} is in {a.path} but missing from {b.path}"
        if a.shapes[name] != b.shapes[name]:
            return (
                f"tensor {name!r} has shape {list(a.shapes[name])} in {a.path} "
                f"but {list(b.shapes[name])} in {b.path}"
            )
    for name in sorted(b.shapes):
        if name not in a.shapes:
            return f"tensor {name!r} is in {b.path} but missing from {a.path}"
    return None


def check_checkpoints(refs: Sequence[str | Path]) -> list[str]:
    """Resolve `refs` and check that the local ones can be merged with each other.

    Returns the references with local paths made absolute (hub ids unchanged, unchecked).
    Raises FileNotFoundError for a missing path, config.json or weights, and ValueError
    naming the first differing config field or tensor (with both shapes).
    """
    resolved = [resolve_checkpoint(ref) for ref in refs]
    infos = [inspect_checkpoint(ref) for ref in dict.fromkeys(resolved) if is_local(ref)]
    for other in infos[1:]:
        problem = compare_checkpoints(infos[0], other)
        if problem:
            raise ValueError(f"checkpoints cannot be merged: {problem}")
    return resolved

"""A GGUF file as a local Hugging Face checkpoint: converted once, then read from disk.

lm_eval, mergekit, vLLM and transformers' Trainer all read a checkpoint directory
(config.json, safetensors, tokenizer files); none reads GGUF. transformers loads a GGUF
file (`from_pretrained(dir, gguf_file=...)`, de-quantised, with the `gguf` package) and
`save_pretrained` writes it back as an ordinary checkpoint, so the conversion is those two
calls plus what they leave out: the chat template (kept on the tokenizer when the GGUF has
one, read from the GGUF metadata otherwise) and a generation config that stops at the
chat's end-of-turn token.

The converted directory carries `passk_gguf.json`, written last, naming the source file
(size and SHA-256); a second call with the same source returns at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from passk_plugin.atomic import atomic_write_text

MARKER_FILE = "passk_gguf.json"
CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
INSTALL_HINT = "pip install 'passk[real]' (the `gguf` package reads GGUF files)"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_source(gguf_file: Path) -> None:
    if not gguf_file.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_file}")
    with open(gguf_file, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ValueError(
            f"{gguf_file} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); "
            "give the .gguf file itself"
        )
    if importlib.util.find_spec("gguf") is None:
        raise ValueError(f"reading {gguf_file.name} needs the gguf package: {INSTALL_HINT}")


def read_marker(out_dir: Path) -> dict[str, Any] | None:
    """The conversion record of out_dir, or None when out_dir is no finished conversion."""
    marker = out_dir / MARKER_FILE
    if not marker.is_file():
        return None
    with open(marker, encoding="utf-8") as fh:
        return json.load(fh)


def gguf_chat_template(gguf_file: Path) -> str | None:
    """The chat template stored in a GGUF file's metadata, if any."""
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_file)).fields.get(CHAT_TEMPLATE_KEY)
    if field is None or not field.data:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _end_of_turn_ids(tokenizer: Any) -> list[int]:
    """eos plus the chat's end-of-turn marker when the vocabulary has one (ChatML's <|im_end|>).

    Chat models end a reply with the end-of-turn token; a generation config stopping only at
    a plain eos would let a sampled reply run on into an invented next turn.
    """
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    template = tokenizer.chat_template or ""
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        if marker in template:
            token_id = tokenizer.convert_tokens_to_ids(marker)
            if token_id is not None and token_id != tokenizer.unk_token_id:
                ids.append(token_id)
    return list(dict.fromkeys(ids))


def dense_model_from_gguf(gguf_file: Path, dtype: Any) -> Any:
    """The GGUF's model de-quantised into an ordinary (trainable, saveable) transformers model.

    Recent transformers load a GGUF through a quantizer that marks the model as quantized
    (not serialisable, not trainable) even when every weight was unpacked to dense tensors.
    The dense weights are therefore copied into a fresh model built from the same config.
    """
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"gguf_file": gguf_file.name, "dtype": dtype}
    try:  # transformers >= 5 keep GGUF blocks packed unless asked to unpack them
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # older releases always de-quantise
        pass
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), **kwargs)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dense = AutoModelForCausalLM.from_config(config, dtype=dtype)
    dense.load_state_dict(loaded.state_dict(), strict=True)
    dense.tie_weights()
    dense.generation_config = loaded.generation_config
    return dense.eval()


def convert_gguf(
    gguf_file: str | Path,
    out_dir: str | Path,
    *,
    dtype: str = "float32",
    force: bool = False,
) -> Path:
    """Write gguf_file as a Hugging Face checkpoint in out_dir (once) and return out_dir.

    dtype: what the de-quantised weights are stored as (float32 keeps them exact; bfloat16
    halves the size). An out_dir converted from another file is an error unless force.
    """
    import torch
    from transformers import AutoTokenizer

    gguf_file = Path(gguf_file).resolve()
    out = Path(out_dir).resolve()
    _check_source(gguf_file)
    if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")

    size = gguf_file.stat().st_size
    done = read_marker(out)
    if done is not None and not force:
        if done.get("source_size") == size and done.get("source_sha256") == sha256_of(gguf_file):
            if done.get("dtype") == dtype:
                return out
        raise ValueError(
            f"{out} already holds a conversion of {done.get('source_name')} "
            f"({done.get('dtype')}); choose another directory or pass force=True"
        )
    if out.exists() and done is None and any(out.iterdir()):
        if not force:
            raise ValueError(
                f"{out} exists and is not a finished GGUF conversion; remove it or pass force=True"
            )

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not tokenizer.chat_template:
        tokenizer.chat_template = gguf_chat_template(gguf_file)
    model = dense_model_from_gguf(gguf_file, getattr(torch, dtype))
    stop_ids = _end_of_turn_ids(tokenizer)
    if stop_ids:
        model.generation_config.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    if tokenizer.pad_token_id is None:
        # Batched generation pads; without a pad token every caller picks its own.
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id

    # Written beside the final place and renamed in, so out_dir is whole or absent.
    tmp = out.parent / f".tmp-{out.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        record = {
            "source_name": name,
            "source_size": size,
            "source_sha256": sha256_of(gguf_file),
            "dtype": dtype,
            "architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "chat_template": bool(tokenizer.chat_template),
        }
        atomic_write_text(tmp / MARKER_FILE, json.dumps(record, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out

"""Pieces the backend benchmarks share: local random models, lm_eval's requests, timing, output.

The bench scripts run as ``python bench/<script>.py``, which puts this folder on ``sys.path``;
heavy libraries are imported inside the functions so that ``--help`` stays quick.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def gsm8k_texts() -> list[str]:
    """Questions and answers of GSM8K's train split: the corpus for a benchmark vocabulary."""
    texts: list[str] = []
    with open(DATA / "gsm8k" / "train.jsonl") as f:
        for line in f:
            row = json.loads(line)
            texts += [row["question"], row["answer"]]
    return texts


def qwen_width_config(tokenizer: Any, layers: int) -> Any:
    """Qwen2-0.5B's width (hidden 896, 14 heads, 2 KV heads, MLP 4864, tied embeddings)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=layers,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def save_random_qwen(config: Any, tokenizer: Any, out: Path, seed: int) -> Path:
    """A Qwen2 checkpoint with random weights drawn from ``seed``, saved with its tokenizer."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_requests(task: str, n: int, problems: int, max_gen_toks: int) -> list[Any]:
    """lm_eval's requests for the first problems of a passk task, n per problem."""
    from lm_eval.api.instance import Instance
    from lm_eval.tasks import TaskManager, get_task_dict

    from passk_plugin.paths import tasks_dir

    os.environ.setdefault("PASSK_DATA_DIR", str(DATA))
    manager = TaskManager(
        include_path=[str(tasks_dir())], include_defaults=False, metadata={"n": n}
    )
    task_obj = get_task_dict([task], manager)[task]
    task_obj.build_all_requests(limit=problems)
    reqs: list[Instance] = []
    for inst in task_obj.instances:
        context, gen_kwargs = inst.args
        gen_kwargs = {**gen_kwargs, "max_gen_toks": max_gen_toks}
        # lm_eval sends each instance `repeats` times (evaluator: [req] * req.repeats)
        reqs += [
            Instance("generate_until", inst.doc, (context, gen_kwargs), inst.idx, inst.metadata)
            for _ in range(inst.repeats)
        ]
    return reqs


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (temp file + os.replace)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)

"""Train the demo's fine-tuning run, on CPU, offline: a broad stage, then narrow SFT.

The setting imitates the one Dang et al. study, fine-tuning a pretrained model on a narrow
reasoning set for many epochs:

1. *Broad stage* ("pretraining"): a tiny Llama-style model learns, from scratch, a few
   thousand varied problems (`problems.pretraining_records`: many problem types, several
   solution paths and styles), each seen about once, under a warm-up and cosine-decay
   schedule. Its end is saved as `checkpoint-0`, the pretrained base of the fine-tuning.
2. *Fine-tuning*: from that base, many epochs over a small narrow set (the held-out
   problems' templates, solved one way), at a constant learning rate, saving
   `checkpoint-<step>` along the way. Early checkpoints have learned the narrow format and
   still sample the base's varied paths; late ones have memorised the small set and grew
   confident on held-out problems too, right or wrong.

All checkpoints come from one run and share one architecture and tokenizer, so mergekit can
interpolate any two of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from passk_plugin.atomic import umask_dir_mode
from passk_plugin.demo.problems import (
    completion_text,
    pretraining_records,
    prompt_text,
    split_problems,
    write_jsonl_dataset,
)

# Bump when the training procedure or the problem generator changes in a way the settings do
# not capture: cached runs of an older version are then trained afresh.
TRAINING_VERSION = "3"

CHECKPOINT_PREFIX = "checkpoint-"
_CHECKPOINT_NAME = re.compile(rf"{CHECKPOINT_PREFIX}(\d+)")


@dataclass(frozen=True)
class DemoTrainConfig:
    """Every setting that shapes the demo checkpoints (all of it keys the cache).

    Steps count fine-tuning steps; the broad stage runs `pretrain_steps` before step 0.
    The defaults, from tuning the training (never the evaluation): the broad stage sees each
    of its 6000 problems about three times (1200 steps of 16), enough to solve many held-out
    problems sometimes but few always. Fine-tuning then makes 64 passes over 150 narrow
    problems (600 steps of 16). Step 25, about 2.7 passes in and still warming up, is the
    early checkpoint: it has taken the narrow format and still samples widely. By step 600
    the model has memorised its 150 problems and answers most held-out ones the same way
    every time, right or wrong.
    """

    seed: int = 0
    n_test: int = 128
    n_pretrain: int = 6000
    n_train: int = 150
    vocab_size: int = 1024
    split_digits: bool = False
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    batch_size: int = 16
    pretrain_steps: int = 1200
    pretrain_lr: float = 3e-3
    pretrain_min_lr: float = 3e-4
    warmup_steps: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    steps: int = 600
    early_step: int = 25
    checkpoint_steps: tuple[int, ...] = (25, 100, 200, 400, 600)

    def __post_init__(self) -> None:
        if not 0 < self.early_step < self.steps:
            raise ValueError(
                f"early_step must lie strictly between 0 and steps; got early_step="
                f"{self.early_step}, steps={self.steps}"
            )
        if any(not 0 < s <= self.steps for s in self.checkpoint_steps):
            raise ValueError(
                f"checkpoint_steps must lie in 1..steps ({self.steps}); got {self.checkpoint_steps}"
            )
        for name in ("n_train", "n_test", "batch_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("n_pretrain", "pretrain_steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}")
        if (self.n_pretrain == 0) != (self.pretrain_steps == 0):
            raise ValueError(
                f"the broad stage needs both problems and steps, or neither; got "
                f"n_pretrain={self.n_pretrain}, pretrain_steps={self.pretrain_steps}"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads "
                f"({self.num_heads})"
            )

    @property
    def saved_steps(self) -> tuple[int, ...]:
        """Fine-tuning steps saved as checkpoint-<step>; 0 is the pretrained base."""
        return tuple(sorted({0, self.early_step, self.steps, *self.checkpoint_steps}))

    def cache_key(self) -> str:
        payload = json.dumps(
            {"version": TRAINING_VERSION, **dataclasses.asdict(self)}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def encode_examples(tokenizer, records: Sequence[dict[str, str]]) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per problem: prompt, worked answer, end-of-text token."""
    examples = []
    for record in records:
        prompt = tokenizer(prompt_text(record["question"]), add_special_tokens=False).input_ids
        answer = tokenizer(completion_text(record["answer"]), add_special_tokens=False).input_ids
        examples.append((prompt + answer + [tokenizer.eos_token_id], len(prompt)))
    return examples


def _batch(examples, indices, pad_id: int):
    import torch

    chosen = [examples[i] for i in indices]
    width = max(len(ids) for ids, _ in chosen)
    input_ids = torch.full((len(chosen), width), pad_id, dtype=torch.long)
    labels = torch.full((len(chosen), width), -100, dtype=torch.long)
    mask = torch.zeros((len(chosen), width), dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(chosen):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
        # Loss on the answer only, as in supervised fine-tuning.
        labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
    return input_ids, mask, labels


def pretrain_lr_at(step: int, cfg: DemoTrainConfig) -> float:
    """Broad stage: linear warm-up, then cosine decay from pretrain_lr to pretrain_min_lr."""
    if step < cfg.warmup_steps:
        return cfg.pretrain_lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.pretrain_steps - cfg.warmup_steps)
    spread = cfg.pretrain_lr - cfg.pretrain_min_lr
    return cfg.pretrain_min_lr + 0.5 * spread * (1 + math.cos(math.pi * min(1.0, progress)))


def finetune_lr_at(step: int, cfg: DemoTrainConfig) -> float:
    """Fine-tuning: linear warm-up, then constant, so late epochs keep moving the weights."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def _train_stage(
    model,
    examples,
    *,
    steps: int,
    lr_at: Callable[[int], float],
    cfg: DemoTrainConfig,
    pad_id: int,
    generator,
    desc: str,
    on_step: Callable[[int, object], None] | None,
    progress: bool,
) -> None:
    """`steps` optimiser steps of shuffled epochs over `examples`, with a fresh AdamW."""
    import torch
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr_at(0), weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )
    batch = min(cfg.batch_size, len(examples))
    order = torch.randperm(len(examples), generator=generator).tolist()
    cursor = 0
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress)
    for step in bar:
        if cursor + batch > len(order):
            order = torch.randperm(len(examples), generator=generator).tolist()
            cursor = 0
        indices = order[cursor : cursor + batch]
        cursor += batch
        input_ids, mask, labels = _batch(examples, indices, pad_id)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step - 1)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if on_step is not None:
            on_step(step, model)


def run_training(
    cfg: DemoTrainConfig,
    work_dir: Path,
    *,
    on_step: Callable[[int, object], None] | None = None,
    progress: bool = True,
):
    """Broad stage, then fine-tuning; returns (model, tokenizer).

    on_step(step, model) runs at fine-tuning step 0 (the pretrained base) and after each
    fine-tuning step.
    """
    import torch
    from transformers import LlamaForCausalLM

    from passk_plugin.demo.tiny import build_tiny_llama, build_tokenizer

    train, test = split_problems(cfg.n_train, cfg.n_test, cfg.seed)
    narrow = [p.to_record() for p in train]
    broad = pretraining_records(cfg.n_pretrain, cfg.seed, exclude=frozenset(p.key for p in test))
    tokenizer = build_tokenizer(
        [prompt_text(r["question"]) + completion_text(r["answer"]) for r in broad + narrow],
        vocab_size=cfg.vocab_size,
        split_digits=cfg.split_digits,
    )
    init_dir = build_tiny_llama(
        work_dir / "init",
        tokenizer=tokenizer,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        seed=cfg.seed,
    )
    model = LlamaForCausalLM.from_pretrained(init_dir)
    shutil.rmtree(init_dir)
    model.train()

    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    common = dict(cfg=cfg, pad_id=tokenizer.pad_token_id, generator=generator, progress=progress)
    if cfg.pretrain_steps:
        _train_stage(
            model,
            encode_examples(tokenizer, broad),
            steps=cfg.pretrain_steps,
            lr_at=lambda step: pretrain_lr_at(step, cfg),
            desc="demo: broad stage",
            on_step=None,
            **common,
        )
    if on_step is not None:
        on_step(0, model)
    _train_stage(
        model,
        encode_examples(tokenizer, narrow),
        steps=cfg.steps,
        lr_at=lambda step: finetune_lr_at(step, cfg),
        desc="demo: fine-tuning",
        on_step=on_step,
        **common,
    )
    model.eval()
    return model, tokenizer


def default_threads() -> int:
    """Threads for torch: the cores this process may use, less those busy with other work.

    Oversubscribed cores make multi-threaded torch far slower than one thread (measured:
    ~10x per step on 2 cores under a load of 8), so a busy machine gets fewer threads.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / f"{CHECKPOINT_PREFIX}{step}"


def saved_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, directory) of every `checkpoint-<step>` in a demo run, by step."""
    found = []
    for path in Path(run_dir).iterdir():
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), path))
    return sorted(found)


def train_demo_checkpoints(
    out_dir: str | Path,
    *,
    config: DemoTrainConfig | None = None,
    progress: bool = True,
    threads: int | None = None,
    **overrides,
) -> tuple[Path, Path]:
    """Train (or reuse) the demo run; returns its early and late checkpoint directories.

    Settings come from `config` with keyword overrides (e.g. seed=1, steps=200). The run is
    cached under out_dir by a hash of every setting, so a second call returns at once. The
    run directory holds `checkpoint-<step>` for every saved fine-tuning step (0 is the
    pretrained base; see `saved_checkpoints`) and `data/gsm8k/{train,test}.jsonl`, the narrow
    problems it was fine-tuned on and its held-out set (see `run_data_dir`).
    """
    import torch

    cfg = dataclasses.replace(config or DemoTrainConfig(), **overrides)
    root = Path(out_dir).resolve()
    final = root / f"run-{cfg.cache_key()}"
    early_dir, late_dir = checkpoint_dir(final, cfg.early_step), checkpoint_dir(final, cfg.steps)
    if (final / "config.json").exists():
        return early_dir, late_dir

    root.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads())
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".training-"))
    tmp.chmod(umask_dir_mode())  # mkdtemp's 0700 would hide the checkpoints from others
    try:
        wanted = set(cfg.saved_steps)

        def save_checkpoint(step: int, model) -> None:
            if step in wanted:
                model.save_pretrained(checkpoint_dir(tmp, step), safe_serialization=True)

        _, tokenizer = run_training(cfg, tmp, on_step=save_checkpoint, progress=progress)
        # The tokenizer is fixed before training starts; each checkpoint gets a copy.
        for step in cfg.saved_steps:
            tokenizer.save_pretrained(checkpoint_dir(tmp, step))
        write_jsonl_dataset(tmp / "data", cfg.n_train, cfg.n_test, cfg.seed)
        (tmp / "config.json").write_text(
            json.dumps({"version": TRAINING_VERSION, **dataclasses.asdict(cfg)}, indent=2)
        )
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same run first; its result is as good as ours.
            if not (final / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        torch.set_num_threads(previous_threads)
    return early_dir, late_dir


def run_data_dir(checkpoint_dir: str | Path) -> Path:
    """The PASSK_DATA_DIR of a demo run, given any of its checkpoint directories."""
    data = Path(checkpoint_dir).resolve().parent / "data"
    if not (data / "gsm8k" / "test.jsonl").exists():
        raise FileNotFoundError(
            f"{data} holds no gsm8k/test.jsonl: {checkpoint_dir} is not a demo checkpoint "
            "written by train_demo_checkpoints"
        )
    return data

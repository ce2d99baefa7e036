"""Train the demo's early and late checkpoints of one fine-tuning run, on CPU, offline.

A tiny Llama-style model learns the generated word problems of `problems.py` from scratch.
The early checkpoint is taken once the model has learned the answer format and solves some
held-out problems, still sampling varied answers; the late one after many more epochs over
the same small training set, when it has grown confident in its (not always right)
answers. Both come from one run and share one architecture, so mergekit can interpolate
them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from passk_plugin.atomic import umask_dir_mode
from passk_plugin.demo.problems import (
    completion_text,
    prompt_text,
    split_problems,
    write_jsonl_dataset,
)

# Bump when the training procedure or the problem generator changes in a way the settings do
# not capture: cached runs of an older version are then trained afresh.
TRAINING_VERSION = "2"


@dataclass(frozen=True)
class DemoTrainConfig:
    """Every setting that shapes the demo checkpoints (all of it keys the cache).

    The defaults: 800 training problems, batches of 32, so the early checkpoint (step 300)
    has seen each problem 12 times and the late one (step 2400) 96 times. At step 300 the
    model writes the answer format and the memorised tables but samples widely on the facts
    it has not seen; by step 2400 it answers nearly all training problems and collapses to
    one or two answers per held-out problem.
    """

    seed: int = 0
    n_train: int = 800
    n_test: int = 128
    vocab_size: int = 1024
    split_digits: bool = False
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    batch_size: int = 32
    lr: float = 3e-3
    min_lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    steps: int = 2400
    early_step: int = 300

    def __post_init__(self) -> None:
        if not 0 < self.early_step < self.steps:
            raise ValueError(
                f"early_step must lie strictly between 0 and steps; got early_step="
                f"{self.early_step}, steps={self.steps}"
            )
        for name in ("n_train", "n_test", "batch_size", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads "
                f"({self.num_heads})"
            )

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


def _lr_at(step: int, cfg: DemoTrainConfig) -> float:
    import math

    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def run_training(
    cfg: DemoTrainConfig,
    work_dir: Path,
    *,
    on_step: Callable[[int, object], None] | None = None,
    progress: bool = True,
):
    """Train from scratch; returns (model, tokenizer). on_step(step, model) runs after each step."""
    import torch
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    from passk_plugin.demo.tiny import build_tiny_llama, build_tokenizer

    train, _ = split_problems(cfg.n_train, cfg.n_test, cfg.seed)
    records = [p.to_record() for p in train]
    tokenizer = build_tokenizer(
        [prompt_text(r["question"]) + completion_text(r["answer"]) for r in records],
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
    examples = encode_examples(tokenizer, records)

    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )
    order = torch.randperm(len(examples), generator=generator).tolist()
    cursor = 0
    bar = tqdm(range(1, cfg.steps + 1), desc="training demo model", disable=not progress)
    for step in bar:
        if cursor + cfg.batch_size > len(order):
            order = torch.randperm(len(examples), generator=generator).tolist()
            cursor = 0
        indices = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        input_ids, mask, labels = _batch(examples, indices, tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step - 1, cfg)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if on_step is not None:
            on_step(step, model)
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


def _save(model, tokenizer, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def train_demo_checkpoints(
    out_dir: str | Path,
    *,
    config: DemoTrainConfig | None = None,
    progress: bool = True,
    threads: int | None = None,
    **overrides,
) -> tuple[Path, Path]:
    """Train (or reuse) the demo run; returns the early and late checkpoint directories.

    Settings come from `config` with keyword overrides (e.g. seed=1, steps=200). The run is
    cached under out_dir by a hash of every setting, so a second call returns at once. Beside
    the two checkpoints the run directory holds `data/gsm8k/{train,test}.jsonl`, the problems
    it was trained on and its held-out set (see `run_data_dir`), for PASSK_DATA_DIR.
    """
    import copy

    import torch

    cfg = dataclasses.replace(config or DemoTrainConfig(), **overrides)
    root = Path(out_dir).resolve()
    final = root / f"run-{cfg.cache_key()}"
    early_dir, late_dir = final / "early", final / "late"
    if (final / "config.json").exists():
        return early_dir, late_dir

    root.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads())
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".training-"))
    tmp.chmod(umask_dir_mode())  # mkdtemp's 0700 would hide the checkpoints from others
    try:
        saved: dict[str, dict] = {}

        def keep_early(step: int, model) -> None:
            if step == cfg.early_step:
                saved["early"] = copy.deepcopy(model.state_dict())

        model, tokenizer = run_training(cfg, tmp, on_step=keep_early, progress=progress)
        _save(model, tokenizer, tmp / "late")
        model.load_state_dict(saved["early"])
        _save(model, tokenizer, tmp / "early")
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
    """The PASSK_DATA_DIR of a demo run, given either of its checkpoint directories."""
    data = Path(checkpoint_dir).resolve().parent / "data"
    if not (data / "gsm8k" / "test.jsonl").exists():
        raise FileNotFoundError(
            f"{data} holds no gsm8k/test.jsonl: {checkpoint_dir} is not a demo checkpoint "
            "written by train_demo_checkpoints"
        )
    return data

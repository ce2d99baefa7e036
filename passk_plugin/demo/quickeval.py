"""A fast in-process Pass@k check of demo checkpoints, for tuning the demo's training.

Not the evaluation path users see (that is lm_eval with the passk tasks): it samples n
completions per held-out problem with `generate`, grades them, and interpolates state
dicts directly in torch, so a whole WiSE-FT curve costs seconds on a tiny model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from passk_plugin.demo.problems import Problem, prompt_text
from passk_plugin.graders.gsm8k import extract_answer
from passk_plugin.metrics import pass_at_k

STOP_STRINGS = ("\n\n", "Q:")


def is_correct(completion: str, value: int) -> bool:
    """Graded as passk grades GSM8K: the extracted final number against the gold one."""
    return extract_answer(completion) == str(value)


def cut_at_stop(text: str) -> str:
    for stop in STOP_STRINGS:
        text = text.split(stop, 1)[0]
    return text


def sample_completions(
    model,
    tokenizer,
    questions: Sequence[str],
    *,
    n: int,
    temperature: float,
    top_p: float = 0.95,
    max_new_tokens: int = 32,
    batch_size: int = 512,
    seed: int = 0,
) -> list[list[str]]:
    """n sampled completions per question (greedy when temperature is 0).

    top_p defaults to the passk GSM8K tasks' own nucleus setting.
    """
    import torch

    tokenizer.padding_side = "left"
    prompts = [prompt_text(q) for q in questions for _ in range(n)]
    texts: list[str] = []
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
    if temperature <= 0:
        sampling = {"do_sample": False}
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            batch = tokenizer(
                prompts[start : start + batch_size], return_tensors="pt", padding=True
            )
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **sampling,
            )
            new = out[:, batch["input_ids"].shape[1] :]
            texts.extend(
                cut_at_stop(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)
            )
    return [texts[i * n : (i + 1) * n] for i in range(len(questions))]


def evaluate(
    model,
    tokenizer,
    problems: Sequence[Problem],
    *,
    n: int = 8,
    temperature: float = 1.0,
    ks: Sequence[int] = (1, 8),
    top_p: float = 0.95,
    max_new_tokens: int = 32,
    seed: int = 0,
) -> dict[str, float]:
    """Mean pass@k over problems, plus the mean number of distinct answers per problem."""
    samples = sample_completions(
        model,
        tokenizer,
        [p.question for p in problems],
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
    )
    correct = np.array(
        [
            sum(is_correct(s, p.value) for s in group)
            for p, group in zip(problems, samples, strict=True)
        ]
    )
    result = {f"pass@{k}": float(pass_at_k(n, correct, k).mean()) for k in ks}
    result["distinct"] = float(np.mean([len({extract_answer(s) for s in g}) for g in samples]))
    return result


def interpolate(
    early: Mapping[str, object], late: Mapping[str, object], alpha: float
) -> dict[str, object]:
    """θ_α = (1 − α)·θ_early + α·θ_late, tensor by tensor."""
    if early.keys() != late.keys():
        raise ValueError("checkpoints differ in their parameter names; they cannot be mixed")
    return {name: (1 - alpha) * early[name] + alpha * late[name] for name in early}

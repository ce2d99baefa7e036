"""Synthetic MATH-500 samples with a realistic answer distribution, for the grading benches.

Per problem a success rate rho is drawn from Beta(0.5, 0.5): U-shaped, as measured for
sampled reasoning models (most problems are solved almost always or almost never). Each
sample, independently:

* with probability rho it is correct: the gold answer as written (80%) or an equivalent
  spelling of it (20%: `\\dfrac` for `\\frac`, `$...$`, `x = ...`, spaces, `.0`, thousands
  commas, `\\left( ... \\right)`);
* otherwise it is wrong, drawn from the problem's own small pool of wrong answers (the golds
  of four other problems and, for integer golds, gold + 1 and 2 * gold) with Zipf weights
  1, 1/2, 1/3, ... so that a few wrong answers dominate, as in real samples;
* 3% of all samples give no boxed answer (cut off).

The text around the answer is a short stock solution, so extraction is exercised.
`all_distinct=True` instead gives every sample of a problem its own answer (the gold once,
then distinct wrong numbers): the worst case for de-duplication.
"""

from __future__ import annotations

import json
import random
from pathlib import Path


def load_math500(data_dir: Path) -> list[dict]:
    with (data_dir / "math500" / "test.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def spellings(gold: str) -> list[str]:
    out = [gold.replace("\\frac", "\\dfrac"), f"${gold}$", f"x = {gold}", f" {gold} "]
    if gold.isdigit():
        out += [f"{gold}.0"] + ([f"{int(gold):,}"] if int(gold) >= 1000 else [])
    if gold.startswith("(") and gold.endswith(")"):
        out.append("\\left" + gold[:-1] + "\\right)")
    return out


def _text(answer: str | None) -> str:
    if answer is None:
        return "We set up the equation and simplify step by step, but the"
    return (
        "We set up the equation and simplify step by step.\n"
        f"So the answer is $\\boxed{{{answer}}}$."
    )


def problem_samples(
    rows: list[dict], index: int, n: int, rng: random.Random, all_distinct: bool = False
) -> list[str]:
    gold = rows[index]["answer"]
    if all_distinct:
        return [_text(gold)] + [_text(str(1000 + 7 * j)) for j in range(1, n)]
    rho = rng.betavariate(0.5, 0.5)
    wrong = [rows[(index * 7 + j * 13 + 1) % len(rows)]["answer"] for j in range(4)]
    if gold.isdigit():
        wrong = [str(int(gold) + 1), str(2 * int(gold))] + wrong
    wrong = [w for w in wrong if w != gold]
    weights = [1 / (r + 1) for r in range(len(wrong))]
    equivalent = spellings(gold)
    texts = []
    for _ in range(n):
        if rng.random() < 0.03:
            texts.append(_text(None))
        elif rng.random() < rho:
            texts.append(_text(gold if rng.random() < 0.8 else rng.choice(equivalent)))
        else:
            texts.append(_text(rng.choices(wrong, weights)[0]))
    return texts


def samples(
    rows: list[dict], problems: int, n: int, seed: int = 0, all_distinct: bool = False
) -> list[tuple[int, list[str]]]:
    """(row index, n completions) for the first `problems` problems."""
    rng = random.Random(seed)
    return [(i, problem_samples(rows, i, n, rng, all_distinct)) for i in range(problems)]

"""Seeded multi-step arithmetic word problems in GSM8K's format.

Each problem is a short story with small numbers solved in two or three equations. The
answer field follows GSM8K: worked reasoning, then a final line `#### N`, so the passk
GSM8K task and grader read these files exactly as they read the real benchmark.

The numbers are chosen for what the demo has to show. The first steps use the small
multiplication and addition tables, which a few hundred training problems cover, while most
final steps subtract down to a small answer (1 to 9) from operands spread over a wide range,
so a good share of held-out problems needs one subtraction never seen in training. A tiny
model whose tokenizer makes each number one token cannot compute such a fact, only estimate
it: early in training it spreads its samples over nearby answers and some land on the right
one; after many epochs it commits to one answer, right or wrong. That is where Pass@k falls
while Pass@1, carried by the problems built from seen facts, keeps rising.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from passk_plugin.atomic import atomic_write_text

NAMES_HE = ["Tom", "Sam", "Ben", "Leo", "Max", "Dan", "Joe", "Ali", "Raj", "Ken"]
NAMES_SHE = ["Ann", "Mia", "Eva", "Zoe", "Amy", "Ivy", "Kim", "Lea", "Nia", "Sue"]
ITEMS = ["pencils", "apples", "stickers", "marbles", "cards", "shells", "beads", "stamps"]
FOODS = ["cookies", "muffins", "cupcakes", "pretzels", "biscuits"]
THINGS = ["books", "toys", "hats", "pens", "cups", "kites"]

# One arithmetic step: (left, operator, right, result).
Step = tuple[int, str, int, int]

_FINAL = re.compile(r"####\s*(-?\d+)\s*$")


@dataclass(frozen=True)
class Problem:
    """One word problem; `key` identifies the computation (template and numbers)."""

    question: str
    steps: tuple[Step, ...]
    key: tuple

    @property
    def value(self) -> int:
        return self.steps[-1][3]

    @property
    def reasoning(self) -> str:
        return " ".join(f"{a} {op} {b} = {r}." for a, op, b, r in self.steps)

    @property
    def answer(self) -> str:
        return f"{self.reasoning}\n#### {self.value}"

    def to_record(self) -> dict[str, str]:
        return {"question": self.question, "answer": self.answer}


def final_answer(answer: str) -> int:
    """The number after `#### ` in a GSM8K-style answer."""
    match = _FINAL.search(answer.strip())
    if match is None:
        raise ValueError(f"answer has no final '#### N' line: {answer!r}")
    return int(match.group(1))


# The zero-shot instruction of the `gsm8k_passk_zeroshot` task: the demo models are trained
# on exactly the prompt that task renders, so lm_eval evaluates them in their own format.
INSTRUCTION = (
    "Solve the following math word problem step by step. End your response with "
    '"The answer is N.", where N is the final numerical answer.'
)


def prompt_text(question: str) -> str:
    """The prompt of the `gsm8k_passk_zeroshot` task for one question."""
    return f"{INSTRUCTION}\n\nQ: {question}\nA:"


def completion_text(answer: str) -> str:
    """What follows the prompt in training: the reasoning, then 'The answer is N.'.

    A blank line closes it (then the tokenizer's end-of-text token in training).
    """
    reasoning, _, _ = answer.strip().rpartition("\n")
    return f" {reasoning.strip()} The answer is {final_answer(answer)}.\n\n"


def training_text(problem: Problem | dict[str, str]) -> str:
    record = problem.to_record() if isinstance(problem, Problem) else problem
    return prompt_text(record["question"]) + completion_text(record["answer"])


def _person(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        return rng.choice(NAMES_HE), "he"
    return rng.choice(NAMES_SHE), "she"


def _boxes_give(rng: random.Random) -> Problem:
    name, he = _person(rng)
    item = rng.choice(ITEMS)
    a, b = rng.randint(2, 9), rng.randint(2, 12)
    x = a * b
    c = x - rng.randint(1, min(9, x - 1))
    q = (
        f"{name} has {a} boxes of {b} {item}. {he.capitalize()} gives away {c}. "
        f"How many {item} does {he} have left?"
    )
    return Problem(q, ((a, "*", b, x), (x, "-", c, x - c)), ("boxes", a, b, c))


def _change(rng: random.Random) -> Problem:
    name, he = _person(rng)
    thing = rng.choice(THINGS)
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    x = a * b
    bill = (x // 10 + 1) * 10
    q = (
        f"{name} buys {a} {thing} for ${b} each and pays with a ${bill} bill. "
        f"How much change does {he} get?"
    )
    return Problem(q, ((a, "*", b, x), (bill, "-", x, bill - x)), ("change", a, b, bill))


def _bags_sell(rng: random.Random) -> Problem:
    name, he = _person(rng)
    item = rng.choice(["apples", "plums", "candies", "nuts"])
    a, b, c = rng.randint(2, 9), rng.randint(2, 5), rng.randint(2, 9)
    x = b * c
    y = a + x
    d = y - rng.randint(1, min(9, y - 1))
    q = (
        f"{name} has {a} {item}. {he.capitalize()} buys {b} bags with {c} {item} each, "
        f"then sells {d}. How many {item} does {he} have now?"
    )
    steps = ((b, "*", c, x), (a, "+", x, y), (y, "-", d, y - d))
    return Problem(q, steps, ("bags", a, b, c, d))


def _times_as_many(rng: random.Random) -> Problem:
    thing = rng.choice(THINGS)
    a, b = rng.randint(2, 20), rng.randint(2, 4)
    x = a * b
    q = (
        f"A shop sells {a} {thing} on Monday and {b} times as many on Tuesday. "
        f"How many {thing} does it sell on the two days?"
    )
    return Problem(q, ((a, "*", b, x), (a, "+", x, a + x)), ("times", a, b))


def _wages(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b, c = rng.randint(2, 9), rng.randint(2, 6), rng.randint(2, 4)
    x = a * b
    q = (
        f"{name} earns ${a} an hour. {he.capitalize()} works {b} hours a day for {c} days. "
        f"How much does {he} earn?"
    )
    return Problem(q, ((a, "*", b, x), (x, "*", c, x * c)), ("wages", a, b, c))


def _trays_share(rng: random.Random) -> Problem:
    name, he = _person(rng)
    food = rng.choice(FOODS)
    while True:
        a, b = rng.randint(2, 5), rng.randint(2, 9)
        x = a * b
        divisors = [k for k in range(2, 10) if x % k == 0 and k not in (a, b)]
        if divisors:
            break
    k = rng.choice(divisors)
    q = (
        f"{name} bakes {a} trays of {b} {food} and packs them equally into {k} bags. "
        f"How many {food} are in each bag?"
    )
    return Problem(q, ((a, "*", b, x), (x, "/", k, x // k)), ("trays", a, b, k))


def _pages_left(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    x = a * b
    c = x + rng.randint(1, 9)
    q = (
        f"{name} reads {a} pages every day for {b} days. The book has {c} pages. "
        f"How many pages are left?"
    )
    return Problem(q, ((a, "*", b, x), (c, "-", x, c - x)), ("pages", a, b, c))


def _fruit_give(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    x = a + b
    c = x - rng.randint(1, min(9, x - 1))
    q = (
        f"{name} picks {a} apples and {b} pears. {he.capitalize()} gives {c} fruits "
        f"to a friend. How many fruits does {he} have left?"
    )
    return Problem(q, ((a, "+", b, x), (x, "-", c, x - c)), ("fruit", a, b, c))


# Templates with their drawing weights: the ones with few distinct computations are drawn
# less often, so none runs out before the others when thousands of problems are asked for.
TEMPLATES: tuple[tuple[Callable[[random.Random], Problem], int], ...] = (
    (_boxes_give, 3),
    (_change, 2),
    (_bags_sell, 4),
    (_times_as_many, 1),
    (_wages, 1),
    (_trays_share, 1),
    (_pages_left, 3),
    (_fruit_give, 4),
)


_TEMPLATE_FNS = [fn for fn, _ in TEMPLATES]
_TEMPLATE_WEIGHTS = [weight for _, weight in TEMPLATES]


def generate_problems(n: int, seed: int = 0) -> list[Problem]:
    """n problems with distinct computations, the same list for the same seed."""
    if n < 0:
        raise ValueError(f"number of problems must be non-negative, got {n}")
    rng = random.Random(seed)
    seen: set[tuple] = set()
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(
                f"could not generate {n} distinct problems; ask for fewer (got {len(problems)})"
            )
        template = rng.choices(_TEMPLATE_FNS, weights=_TEMPLATE_WEIGHTS)[0]
        problem = template(rng)
        if problem.key not in seen:
            seen.add(problem.key)
            problems.append(problem)
    return problems


def split_problems(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and held-out sets: no computation (template + numbers) is in both.

    The held-out problems come first in the seeded stream, so the test set for a seed does
    not change when n_train does.
    """
    problems = generate_problems(n_train + n_test, seed)
    return problems[n_test:], problems[:n_test]


def _write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    atomic_write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def write_jsonl_dataset(
    out_dir: str | Path, n_train: int, n_test: int, seed: int = 0
) -> tuple[Path, Path]:
    """Write gsm8k/train.jsonl and gsm8k/test.jsonl under out_dir (the PASSK_DATA_DIR layout)."""
    train, test = split_problems(n_train, n_test, seed)
    root = Path(out_dir) / "gsm8k"
    train_path, test_path = root / "train.jsonl", root / "test.jsonl"
    _write_jsonl(train_path, [p.to_record() for p in train])
    _write_jsonl(test_path, [p.to_record() for p in test])
    return train_path, test_path

"""Seeded multi-step arithmetic word problems in GSM8K's format, narrow and broad.

Each problem is a short story with small numbers solved in two or three equations. The
answer field follows GSM8K: worked reasoning, then a final line `#### N`, so the passk
GSM8K task and grader read these files exactly as they read the real benchmark.

Two kinds of data, as in the setting the demo imitates (fine-tuning a pretrained model on a
narrow reasoning set):

- the *narrow* set: eight templates, each solved one way (`Problem.answer`). The held-out
  test problems and the small fine-tuning set are drawn from it, disjoint by computation.
- the *broad* set (`pretraining_records`): the same eight templates plus other problem
  types, each problem solved along one of its several valid paths (operands in either order,
  steps in another order) and phrased in one of several styles. It stands for the varied
  solutions a pretrained model has seen; it shares no computation with the held-out set.

The numbers make the demo's effect possible without deciding it. A tiny model whose
tokenizer makes each number one token cannot compute an arithmetic fact, only recall or
estimate it, so a fact seen a few times in the broad stage is known only roughly: sampling
spreads over nearby answers and over solution paths, whose facts fail independently, and
some samples land on the right answer. Many epochs on the small narrow set make the model
certain of one path and one answer per problem, right or wrong.
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

# One arithmetic step: (left, operator, right, result); a path is the steps of one solution.
Step = tuple[int, str, int, int]
Path_ = tuple[Step, ...]

_FINAL = re.compile(r"####\s*(-?\d+)\s*$")

# How a worked solution joins its equations: the narrow set uses "plain" only.
STYLES = ("plain", "first_then", "so")


def render_reasoning(steps: Path_, style: str = "plain") -> str:
    equations = [f"{a} {op} {b} = {r}" for a, op, b, r in steps]
    if style == "plain":
        return " ".join(f"{e}." for e in equations)
    if style == "first_then":
        return " ".join(f"{'First' if i == 0 else 'Then'}, {e}." for i, e in enumerate(equations))
    if style == "so":
        return ", so ".join(equations) + "."
    raise ValueError(f"unknown solution style {style!r}; expected one of {STYLES}")


@dataclass(frozen=True)
class Problem:
    """One word problem; `key` identifies the computation (template and numbers).

    `paths` are its valid solutions, the narrow set's own (`steps`) first.
    """

    question: str
    paths: tuple[Path_, ...]
    key: tuple

    def __post_init__(self) -> None:
        # Equal operands (7 * 7) make some alternative paths repeat the first one.
        object.__setattr__(self, "paths", tuple(dict.fromkeys(self.paths)))

    @property
    def steps(self) -> Path_:
        return self.paths[0]

    @property
    def value(self) -> int:
        return self.steps[-1][3]

    @property
    def reasoning(self) -> str:
        return render_reasoning(self.steps)

    @property
    def answer(self) -> str:
        return f"{self.reasoning}\n#### {self.value}"

    def to_record(self, path: int = 0, style: str = "plain") -> dict[str, str]:
        reasoning = render_reasoning(self.paths[path], style)
        return {"question": self.question, "answer": f"{reasoning}\n#### {self.value}"}


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
    paths = (((a, "*", b, x), (x, "-", c, x - c)), ((b, "*", a, x), (x, "-", c, x - c)))
    return Problem(q, paths, ("boxes", a, b, c))


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
    paths = (((a, "*", b, x), (bill, "-", x, bill - x)), ((b, "*", a, x), (bill, "-", x, bill - x)))
    return Problem(q, paths, ("change", a, b, bill))


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
    paths = [
        ((b, "*", c, x), (a, "+", x, y), (y, "-", d, y - d)),
        ((c, "*", b, x), (x, "+", a, y), (y, "-", d, y - d)),
    ]
    if x > d:
        paths.append(((b, "*", c, x), (x, "-", d, x - d), (x - d, "+", a, y - d)))
    if a > d:
        paths.append(((a, "-", d, a - d), (b, "*", c, x), (a - d, "+", x, y - d)))
    return Problem(q, tuple(paths), ("bags", a, b, c, d))


def _times_as_many(rng: random.Random) -> Problem:
    thing = rng.choice(THINGS)
    a, b = rng.randint(2, 20), rng.randint(2, 4)
    x = a * b
    q = (
        f"A shop sells {a} {thing} on Monday and {b} times as many on Tuesday. "
        f"How many {thing} does it sell on the two days?"
    )
    paths = (((a, "*", b, x), (a, "+", x, a + x)), ((b, "*", a, x), (x, "+", a, a + x)))
    return Problem(q, paths, ("times", a, b))


def _wages(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b, c = rng.randint(2, 9), rng.randint(2, 6), rng.randint(2, 4)
    x = a * b
    q = (
        f"{name} earns ${a} an hour. {he.capitalize()} works {b} hours a day for {c} days. "
        f"How much does {he} earn?"
    )
    total = x * c
    paths = (
        ((a, "*", b, x), (x, "*", c, total)),
        ((b, "*", c, b * c), (a, "*", b * c, total)),
        ((a, "*", c, a * c), (a * c, "*", b, total)),
    )
    return Problem(q, paths, ("wages", a, b, c))


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
    paths = [((a, "*", b, x), (x, "/", k, x // k)), ((b, "*", a, x), (x, "/", k, x // k))]
    if b % k == 0:
        paths.append(((b, "/", k, b // k), (a, "*", b // k, x // k)))
    if a % k == 0:
        paths.append(((a, "/", k, a // k), (a // k, "*", b, x // k)))
    return Problem(q, tuple(paths), ("trays", a, b, k))


def _pages_left(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    x = a * b
    c = x + rng.randint(1, 9)
    q = (
        f"{name} reads {a} pages every day for {b} days. The book has {c} pages. "
        f"How many pages are left?"
    )
    paths = (((a, "*", b, x), (c, "-", x, c - x)), ((b, "*", a, x), (c, "-", x, c - x)))
    return Problem(q, paths, ("pages", a, b, c))


def _fruit_give(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    x = a + b
    c = x - rng.randint(1, min(9, x - 1))
    q = (
        f"{name} picks {a} apples and {b} pears. {he.capitalize()} gives {c} fruits "
        f"to a friend. How many fruits does {he} have left?"
    )
    left = x - c
    paths = [((a, "+", b, x), (x, "-", c, left)), ((b, "+", a, x), (x, "-", c, left))]
    if a > c:
        paths.append(((a, "-", c, a - c), (a - c, "+", b, left)))
    if b > c:
        paths.append(((b, "-", c, b - c), (b - c, "+", a, left)))
    return Problem(q, tuple(paths), ("fruit", a, b, c))


# Problem types of the broad stage only: other stories over the same arithmetic.


def _marbles_three(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b, c = rng.randint(2, 20), rng.randint(2, 20), rng.randint(2, 20)
    q = f"{name} has {a} red, {b} blue and {c} green marbles. How many marbles does {he} have?"
    paths = (
        ((a, "+", b, a + b), (a + b, "+", c, a + b + c)),
        ((b, "+", c, b + c), (b + c, "+", a, a + b + c)),
        ((a, "+", c, a + c), (a + c, "+", b, a + b + c)),
    )
    return Problem(q, paths, ("marbles", a, b, c))


def _ate_gave(rng: random.Random) -> Problem:
    name, he = _person(rng)
    food = rng.choice(FOODS)
    b, c = rng.randint(1, 9), rng.randint(1, 9)
    a = b + c + rng.randint(1, 30)
    q = (
        f"{name} had {a} {food}. {he.capitalize()} ate {b} and gave away {c}. "
        f"How many {food} are left?"
    )
    left = a - b - c
    paths = (
        ((a, "-", b, a - b), (a - b, "-", c, left)),
        ((b, "+", c, b + c), (a, "-", b + c, left)),
        ((a, "-", c, a - c), (a - c, "-", b, left)),
    )
    return Problem(q, paths, ("ate", a, b, c))


def _rows_extra(rng: random.Random) -> Problem:
    a, b, c = rng.randint(2, 9), rng.randint(2, 12), rng.randint(1, 20)
    x = a * b
    q = (
        f"A garden has {a} rows of {b} plants and {c} more plants by the fence. "
        f"How many plants are in the garden?"
    )
    paths = (
        ((a, "*", b, x), (x, "+", c, x + c)),
        ((b, "*", a, x), (c, "+", x, x + c)),
    )
    return Problem(q, paths, ("rows", a, b, c))


def _two_prices(rng: random.Random) -> Problem:
    name, he = _person(rng)
    a, b, c, d = rng.randint(2, 6), rng.randint(2, 9), rng.randint(2, 6), rng.randint(2, 9)
    x, y = a * b, c * d
    q = (
        f"{name} buys {a} pens for ${b} each and {c} notebooks for ${d} each. "
        f"How much does {he} spend?"
    )
    paths = (
        ((a, "*", b, x), (c, "*", d, y), (x, "+", y, x + y)),
        ((c, "*", d, y), (a, "*", b, x), (y, "+", x, x + y)),
        ((b, "*", a, x), (d, "*", c, y), (x, "+", y, x + y)),
    )
    return Problem(q, paths, ("prices", a, b, c, d))


Template = Callable[[random.Random], Problem]

# The narrow set's templates with their drawing weights: the ones with few distinct
# computations are drawn less often, so none runs out before the others when thousands of
# problems are asked for.
TEMPLATES: tuple[tuple[Template, int], ...] = (
    (_boxes_give, 3),
    (_change, 2),
    (_bags_sell, 4),
    (_times_as_many, 1),
    (_wages, 1),
    (_trays_share, 1),
    (_pages_left, 3),
    (_fruit_give, 4),
)

# The broad stage draws the narrow templates and these other problem types.
BROAD_TEMPLATES: tuple[tuple[Template, int], ...] = TEMPLATES + (
    (_marbles_three, 3),
    (_ate_gave, 3),
    (_rows_extra, 3),
    (_two_prices, 3),
)


def _draw(
    n: int,
    rng: random.Random,
    templates: tuple[tuple[Template, int], ...],
    exclude: frozenset[tuple] = frozenset(),
) -> list[Problem]:
    if n < 0:
        raise ValueError(f"number of problems must be non-negative, got {n}")
    fns = [fn for fn, _ in templates]
    weights = [weight for _, weight in templates]
    seen: set[tuple] = set(exclude)
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(
                f"could not generate {n} distinct problems; ask for fewer (got {len(problems)})"
            )
        problem = rng.choices(fns, weights=weights)[0](rng)
        if problem.key not in seen:
            seen.add(problem.key)
            problems.append(problem)
    return problems


def generate_problems(n: int, seed: int = 0) -> list[Problem]:
    """n narrow-set problems with distinct computations, the same list for the same seed."""
    return _draw(n, random.Random(seed), TEMPLATES)


def pretraining_records(
    n: int, seed: int = 0, exclude: frozenset[tuple] = frozenset()
) -> list[dict[str, str]]:
    """n broad-stage problems, each solved along a random path in a random style.

    Computations whose key is in `exclude` (the held-out set) are never drawn.
    """
    rng = random.Random(f"broad-{seed}")
    records = []
    for problem in _draw(n, rng, BROAD_TEMPLATES, exclude):
        path = rng.randrange(len(problem.paths))
        records.append(problem.to_record(path=path, style=rng.choice(STYLES)))
    return records


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

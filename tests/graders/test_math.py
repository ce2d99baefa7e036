from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from passk_plugin.graders import math as math_grader
from passk_plugin.graders.math import extract_answer, gold_answer, grade, is_equiv, normalize

# sympy evaluates 10^(10^10) for the numeric comparison: minutes of work, so only the
# time limit ends it.
PATHOLOGICAL_GOLD = "10^{10^{10}}"


def _math500(shared_data: Path) -> list[dict]:
    with (shared_data / "math500" / "test.jsonl").open() as handle:
        rows = [json.loads(line) for line in handle]
    assert len(rows) == 500
    return rows


def _in_thread(function, *args, **kwargs):
    box: dict = {}

    def target() -> None:
        box["value"] = function(*args, **kwargs)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    return box["value"]


# --- extraction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{\\sqrt{2}}}$.", "\\frac{1}{\\sqrt{2}}"),
        ("first \\boxed{1}, then \\boxed{2}, finally \\boxed{\\{3, 4\\}}", "\\{3, 4\\}"),
        ("\\fbox{x^{2}}", "x^{2}"),
        ("\\boxed{1} and at last \\fbox{7}", "7"),
        ("The answer is $\\boxed 5$.", "5"),
        ("\\boxed{ \\text{(C)} }", "\\text{(C)}"),
        (
            "Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.",
            "\\frac{1}{2}",
        ),
        (
            "Final Answer: The final answer is 3. I hope it is correct.\n"
            "Final Answer: The final answer is $(1,2)$. I hope it is correct.",
            "(1,2)",
        ),
        ("The answer is 42.", None),
        ("\\boxed{}", None),
        # A last box cut off mid-answer: an earlier box is not the answer.
        ("\\boxed{3} no wait, \\boxed{\\frac{1}{", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_gold_answer_from_answer_field_or_solution() -> None:
    assert gold_answer({"answer": "\\frac{14}{3}", "solution": "\\boxed{0}"}) == "\\frac{14}{3}"
    solution = "Thus $x = \\boxed{2}$ or, simplified, $\\boxed{\\dfrac{4}{2}}$."
    assert gold_answer({"problem": "?", "solution": solution, "level": "Level 1"}) == (
        "\\dfrac{4}{2}"
    )
    with pytest.raises(ValueError, match="neither 'answer' nor 'solution'"):
        gold_answer({"problem": "?"})
    with pytest.raises(ValueError, match="no \\\\boxed"):
        gold_answer({"solution": "the answer is 4"})


# --- equivalence and normalisation --------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "predicted", "equal"),
    [
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{1}{2}", "\\dfrac12", True),
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac{\\sqrt{2}}{2}", "\\sqrt2/2", True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", True),
        ("90^\\circ", "90", True),
        ("\\text{(C)}", "C", True),
        ("1,234", "1234", True),
        # math-verify treats an assignment as its value, both ways; so do we.
        ("3", "x=3", True),
        ("x=5", "5", True),
        ("\\frac{1}{2}", "\\frac{1}{3}", False),
        ("6 - 5i", "6 + 5i", False),
        ("3", "4", False),
        ("p - q", "q - p", False),
    ],
)
def test_is_equiv(gold: str, predicted: str, equal: bool) -> None:
    assert is_equiv(gold, predicted) is equal


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("\\dfrac12", "\\frac{1}{2}"),
        ("\\tfrac{1}{2}.", "\\frac{1}{2}"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("5\\text{ cm}", "5"),
        ("\\text{Evelyn}", "Evelyn"),
        ("\\text{(C)}", "C"),
        ("x = 5", "5"),
        ("1,234", "1234"),
        ("1\\!,\\!234", "1234"),
        ("1,-2", "1,-2"),
        ("0.50", "0.5"),
        ("2.0", "2"),
        ("10\\%", "10"),
        ("$\\$5$", "5"),
        ("\\pi r^2", "\\pi r^2"),
        ("\\sqrt2", "\\sqrt{2}"),
    ],
)
def test_normalize(answer: str, key: str) -> None:
    assert normalize(answer) == key


def test_grade_verdicts() -> None:
    problem = {"answer": "\\frac{1}{2}"}
    passed = grade("Hence $\\boxed{\\dfrac12}$.", problem)
    assert (passed.correct, passed.answer, passed.result) == (True, "\\frac{1}{2}", "passed")
    wrong = grade("Hence $\\boxed{0.4}$.", problem)
    assert (wrong.correct, wrong.answer, wrong.result) == (False, "0.4", "wrong answer")
    missing = grade("Hence one half.", problem)
    assert (missing.correct, missing.answer, missing.result) == (False, None, "no answer")


# --- time limit ---------------------------------------------------------------------


def test_pathological_expression_times_out_in_main_thread() -> None:
    start = time.monotonic()
    verdict = grade("\\boxed{5}", {"answer": PATHOLOGICAL_GOLD}, timeout=0.5)
    elapsed = time.monotonic() - start
    assert (verdict.correct, verdict.result) == (False, "timed out")
    assert elapsed < 3
    # The alarm is cleaned up: the next check runs normally and no timer is left behind.
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert grade("\\boxed{0.5}", {"answer": "\\frac12"}).correct


@pytest.mark.parametrize("how", ["sleep", "busy"])
def test_slow_verify_times_out_in_main_thread(monkeypatch, how: str) -> None:
    def slow(gold: str, predicted: str) -> bool:
        if how == "sleep":
            time.sleep(30)
        else:
            while True:
                pass
        return True

    monkeypatch.setattr(math_grader, "_verify_unbounded", slow)
    start = time.monotonic()
    assert math_grader.compare("1", "1", timeout=0.3) == "timed out"
    assert time.monotonic() - start < 3
    assert not is_equiv("1", "1", timeout=0.3)


def test_pathological_expression_times_out_in_other_thread() -> None:
    problem = {"answer": PATHOLOGICAL_GOLD}
    start = time.monotonic()
    verdict = _in_thread(grade, "\\boxed{5}", problem, timeout=0.5)
    assert (verdict.correct, verdict.result) == (False, "timed out")
    # Worker start-up (imports) is not charged to the check but must stay modest.
    assert time.monotonic() - start < 30
    start = time.monotonic()
    assert _in_thread(grade, "\\boxed{0.5}", {"answer": "\\frac12"}).correct
    assert _in_thread(grade, "\\boxed{4}", {"answer": "3"}).result == "wrong answer"
    verdict = _in_thread(grade, "\\boxed{5}", problem, timeout=0.5)
    assert verdict.result == "timed out"


def test_worker_that_stops_answering_is_killed_and_replaced() -> None:
    workers = []

    def run() -> tuple[str, float, str]:
        math_grader.compare("1", "1", timeout=1.0)  # start this thread's worker
        worker = math_grader._thread_workers.worker
        os.kill(worker.process.pid, signal.SIGSTOP)  # stuck beyond its own alarm
        start = time.monotonic()
        outcome = math_grader.compare("1", "1", timeout=0.5)
        elapsed = time.monotonic() - start
        assert worker.process.poll() is not None  # killed
        after = math_grader.compare("2", "2", timeout=5.0)
        workers.append(math_grader._thread_workers.worker)
        return outcome, elapsed, after

    outcome, elapsed, after = _in_thread(run)
    assert outcome == "timed out"
    assert elapsed < 5
    assert after == "equal"
    # With its thread gone (and nothing else holding it) the replacement worker is killed.
    process = workers.pop().process
    for _ in range(50):
        if process.poll() is not None:
            break
        time.sleep(0.1)
    assert process.poll() is not None


def test_running_interval_timer_is_left_alone() -> None:
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        verdict = grade("\\boxed{5}", {"answer": PATHOLOGICAL_GOLD}, timeout=0.5)
        assert verdict.result == "timed out"
        assert grade("\\boxed{0.5}", {"answer": "\\frac12"}).correct
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 90 < remaining <= 100
        assert fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout must be positive"):
        is_equiv("1", "1", timeout=0)


# --- real data ----------------------------------------------------------------------


def test_math500_reference_solutions_are_correct(shared_data: Path) -> None:
    rows = _math500(shared_data)
    start = time.monotonic()
    verdicts = [grade(row["solution"], {"answer": row["answer"]}) for row in rows]
    elapsed = time.monotonic() - start
    failures = [row["answer"] for row, v in zip(rows, verdicts, strict=True) if not v.correct]
    rate = 1 - len(failures) / len(rows)
    print(f"MATH-500 references: {rate:.4f} correct, {len(failures)} failures, {elapsed:.2f}s")
    assert rate >= 0.99, failures
    # The voting key of each reference's boxed answer matches the gold answer's key.
    keys = [normalize(row["answer"]) == v.answer for row, v in zip(rows, verdicts, strict=True)]
    assert sum(keys) >= 0.95 * len(rows)


def test_full_math_gold_from_solution_matches_answer_field(shared_data: Path) -> None:
    rows = _math500(shared_data)
    from_solution = [gold_answer({"solution": row["solution"]}) for row in rows]
    agree = [is_equiv(row["answer"], g) for row, g in zip(rows, from_solution, strict=True)]
    assert sum(agree) >= 0.99 * len(rows)


def test_math500_reference_is_wrong_for_another_problem(shared_data: Path) -> None:
    """Each reference against the next problem's answer. Different answers must grade
    wrong; neighbouring problems can share an answer (e.g. 3 and 3, or 5 and x=5), and
    those must grade correct. Whether two answers differ is judged by the voting key."""
    rows = _math500(shared_data)
    pairs = [(row, rows[(i + 1) % len(rows)]) for i, row in enumerate(rows)]
    start = time.monotonic()
    verdicts = [grade(a["solution"], {"answer": b["answer"]}) for a, b in pairs]
    elapsed = time.monotonic() - start
    same_key = [normalize(a["answer"]) == normalize(b["answer"]) for a, b in pairs]
    wrong_when_different = [
        not v.correct for v, same in zip(verdicts, same_key, strict=True) if not same
    ]
    right_when_same = [v.correct for v, same in zip(verdicts, same_key, strict=True) if same]
    print(
        f"MATH-500 shifted answers: {sum(wrong_when_different)}/{len(wrong_when_different)} "
        f"different answers graded wrong, {sum(right_when_same)}/{len(right_when_same)} "
        f"equal answers graded correct, {elapsed:.2f}s"
    )
    assert len(wrong_when_different) >= 0.95 * len(rows)
    assert sum(wrong_when_different) >= 0.99 * len(wrong_when_different)
    assert all(right_when_same)
    assert sum(not v.correct for v in verdicts) >= 0.95 * len(rows)

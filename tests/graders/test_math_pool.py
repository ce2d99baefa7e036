"""Grading a problem's samples together (each distinct answer once) agrees with grading
every sample alone, and a problem's classes follow math-verify's equivalence."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from passk_plugin.graders import math as math_grader
from passk_plugin.graders import math_pool


def _rewrites(gold: str) -> list[str]:
    """Spellings of the gold answer a model might write."""
    out = [f" {gold} ", f"${gold}$", gold.replace("\\frac", "\\dfrac"), f"x = {gold}"]
    if gold.isdigit():
        out += [f"{gold}.0", f"{int(gold):,}"]
    if gold.startswith("(") and gold.endswith(")"):
        out.append("\\left" + gold[:-1] + "\\right)")
    return out


def _math500_samples(shared_data: Path, problems: int) -> list[tuple[list[str], dict]]:
    with (shared_data / "math500" / "test.jsonl").open() as handle:
        rows = [json.loads(line) for line in handle]
    rng = random.Random(0)
    groups = []
    for i, row in enumerate(rows[:problems]):
        gold = row["answer"]
        wrong = [rows[(i + j) % len(rows)]["answer"] for j in (1, 2, 3)]
        if gold.isdigit():
            wrong.append(str(int(gold) + 1))
        answers = [gold] * 3 + _rewrites(gold) + wrong * 2
        rng.shuffle(answers)
        texts = [f"So the answer is $\\boxed{{{a}}}$." for a in answers]
        texts.append("I could not finish.")  # no answer
        groups.append((texts, row))
    return groups


@pytest.fixture(scope="module")
def graded_alone(shared_data: Path):
    groups = _math500_samples(shared_data, 24)
    return groups, [[math_grader.grade(t, row) for t in texts] for texts, row in groups]


@pytest.mark.parametrize("workers", [1, 2])
def test_deduplicated_verdicts_equal_per_sample_verdicts(graded_alone, workers: int) -> None:
    groups, alone_verdicts = graded_alone
    if workers > 1:
        # Enough distinct answers that the pool really starts its worker processes.
        old = math_pool.MIN_ANSWERS_PER_WORKER
        math_pool.MIN_ANSWERS_PER_WORKER = 1
    try:
        together = math_pool.grade_problems(groups, timeout=5.0, workers=workers)
    finally:
        if workers > 1:
            math_pool.MIN_ANSWERS_PER_WORKER = old
    for (texts, row), verdicts, alones in zip(groups, together, alone_verdicts, strict=True):
        assert len(verdicts) == len(texts)
        for text, verdict, alone in zip(texts, verdicts, alones, strict=True):
            assert (verdict.correct, verdict.result, verdict.answer) == (
                alone.correct,
                alone.result,
                alone.answer,
            ), (row["answer"], text)
        gold_class = math_grader.normalize(row["answer"])
        assert any(v.correct for v in verdicts)
        for verdict in verdicts:
            if verdict.answer is None:
                assert verdict.answer_class is None
            elif verdict.correct:
                assert verdict.answer_class == gold_class
            else:
                assert verdict.answer_class != gold_class
        # Equal normalised answers always share a class.
        by_answer: dict[str, set[str | None]] = {}
        for verdict in verdicts:
            by_answer.setdefault(verdict.answer or "", set()).add(verdict.answer_class)
        assert all(len(classes) == 1 for classes in by_answer.values())


def test_wrong_answers_math_verify_judges_equal_share_a_class() -> None:
    texts = [f"\\boxed{{{a}}}" for a in ("0.5", "\\frac{1}{2}", "3", "\\frac12", "7", "3")]
    verdicts = math_grader.grade_problem(texts, {"answer": "4"})
    classes = [v.answer_class for v in verdicts]
    assert not any(v.correct for v in verdicts)
    assert classes[0] == classes[1] == classes[3]  # 0.5 = 1/2
    assert classes[2] == classes[5] != classes[0]
    assert len({classes[0], classes[2], classes[4]}) == 3


def test_pathological_answer_repeated_times_out_once() -> None:
    texts = ["\\boxed{10^{10^{10}}}"] * 100 + ["\\boxed{5}"]
    start = time.monotonic()
    verdicts = math_pool.grade_problems([(texts, {"answer": "5"})], timeout=0.5, workers=1)[0]
    elapsed = time.monotonic() - start
    assert [v.result for v in verdicts[:100]] == ["timed out"] * 100
    assert verdicts[100].correct
    # One time limit (plus the gold and the quick answer), not 100 of them.
    assert elapsed < 5


def test_worker_processes_give_the_same_outcomes(monkeypatch) -> None:
    monkeypatch.setattr(math_pool, "MIN_ANSWERS_PER_WORKER", 1)
    jobs = [("4", ["4", "5", "\\frac{8}{2}"]), ("1/2", ["0.5", "2"])]
    checked = math_pool.check_problems(jobs, timeout=5.0, workers=2)
    assert [[o for o, _ in c] for c in checked] == [
        ["equal", "different", "equal"],
        ["equal", "different"],
    ]
    assert checked[0][2][1] == -1 and checked[0][1][1] == 1  # gold's class; its own


def test_jobs_of_a_dead_worker_are_checked_here(monkeypatch) -> None:
    """A worker that dies is replaced and its job checked in this process: nothing lost."""
    monkeypatch.setattr(math_pool, "MIN_ANSWERS_PER_WORKER", 1)
    real_send = math_pool._Worker.send
    killed: list[int] = []

    def dying_send(self, job, payload, deadline):
        if not killed:
            killed.append(job)
            self.process.kill()
            self.process.wait()
        return real_send(self, job, payload, deadline)

    monkeypatch.setattr(math_pool._Worker, "send", dying_send)
    jobs = [("4", ["4", "5"]), ("1/2", ["0.5", "2"]), ("3", ["3.0"])]
    checked = math_pool.check_problems(jobs, timeout=5.0, workers=2)
    assert killed
    assert [[o for o, _ in c] for c in checked] == [
        ["equal", "different"],
        ["equal", "different"],
        ["equal"],
    ]

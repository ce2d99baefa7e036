from __future__ import annotations

import json
from pathlib import Path

import pytest

from passk_plugin.graders.gsm8k import extract_answer, gold_answer, grade


def _rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is $1,234.00.", "1234"),
        ("#### 5", "5"),
        ("#### $1,000,000", "1000000"),
        ("#### +4", "4"),
        ("She pays 3 dollars, then 4 more, so 7 in all.", "7"),
        ("The temperature drops to -5 degrees.", "-5"),
        ("It ends at \u22127.", "-7"),
        ("He owes -$3.", "-3"),
        ("It costs $-2.50 each.", "-2.5"),
        ("Half a cup is .5 cups", "0.5"),
        ("2.500", "2.5"),
        ("The answer is: **42**", "42"),
        ("The final answer is \\boxed{18}", "18"),
        ("pages 3-5", "5"),
        ("10 - 7 = 3", "3"),
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_marker_order_hashes_then_answer_is_then_last_number() -> None:
    assert extract_answer("The answer is 3. #### 4 and 9") == "4"
    assert extract_answer("So 2 + 2 = 4. The answer is 4. Question: 7 cats? 9") == "4"
    # After a model's answer, a continuation invents the next question: the first marker wins.
    assert extract_answer("#### 12\nQuestion: ...\n#### 99") == "12"


def test_no_number_gives_no_answer() -> None:
    assert extract_answer("I do not know.") is None
    verdict = grade("I do not know.", {"answer": "#### 3"})
    assert verdict.correct is False
    assert verdict.answer is None
    assert verdict.result == "no answer"


def test_grade_compares_numerically() -> None:
    assert grade("#### 18.0", {"answer": "18"}).correct
    assert grade("The answer is $18.00.", {"answer": "So 18.\n#### 18"}).correct
    wrong = grade("#### 17", {"answer": "#### 18"})
    assert (wrong.correct, wrong.answer, wrong.result) == (False, "17", "wrong answer")
    right = grade("so -3", {"answer": "-3"})
    assert (right.correct, right.answer, right.result) == (True, "-3", "passed")


def test_gold_answer_forms_and_errors() -> None:
    assert gold_answer({"answer": "It takes 2/2=<<2/2=1>>1\n#### 3"}) == "3"
    assert gold_answer({"answer": "1,234"}) == "1234"
    assert gold_answer({"answer": 7}) == "7"
    with pytest.raises(ValueError, match="no 'answer' field"):
        gold_answer({"question": "?"})
    with pytest.raises(ValueError, match="no number"):
        gold_answer({"answer": "#### none"})


@pytest.mark.parametrize("split", ["test", "train"])
def test_every_reference_solution_is_correct(shared_data: Path, split: str) -> None:
    rows = _rows(shared_data / "gsm8k" / f"{split}.jsonl")
    assert len(rows) == {"test": 1319, "train": 7473}[split]
    failures = [row["answer"] for row in rows if not grade(row["answer"], row).correct]
    assert failures == []


def test_reference_solution_is_wrong_for_another_problem(shared_data: Path) -> None:
    rows = _rows(shared_data / "gsm8k" / "test.jsonl")
    golds = [gold_answer(row) for row in rows]
    shifted = [(row, rows[(i + 1) % len(rows)]) for i, row in enumerate(rows)]
    differing = [(a, b) for a, b in shifted if gold_answer(a) != gold_answer(b)]
    assert len(differing) > 0.9 * len(rows)
    assert not any(grade(a["answer"], b).correct for a, b in differing)
    # Identical golds on neighbouring problems are graded correct, as they should be.
    same = [(a, b) for a, b in shifted if gold_answer(a) == gold_answer(b)]
    assert all(grade(a["answer"], b).correct for a, b in same)
    assert len(set(golds)) > 100


def test_answer_is_form_and_last_number_fallback_on_real_text(shared_data: Path) -> None:
    rows = _rows(shared_data / "gsm8k" / "test.jsonl")
    reasoning = [row["answer"].rsplit("####", 1)[0] for row in rows]
    with_answer_is = [
        grade(text + f"The answer is {gold_answer(row)}.", row).correct
        for text, row in zip(reasoning, rows, strict=True)
    ]
    assert all(with_answer_is)
    # Without any marker the last number of GSM8K's reasoning is nearly always the answer.
    fallback = [grade(text, row).correct for text, row in zip(reasoning, rows, strict=True)]
    rate = sum(fallback) / len(rows)
    print(f"last-number fallback on GSM8K test reasoning: {rate:.4f}")
    assert rate >= 0.95

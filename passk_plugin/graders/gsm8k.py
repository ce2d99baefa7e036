"""GSM8K grader: the final number of a completion against the gold number.

Extraction order: the first `#### N` (GSM8K's own answer marker), then the first
`The answer is N` (the chain-of-thought few-shot form), then the last number in the text.
The first marker wins over later ones because text after a model's answer is usually the
model inventing the next few-shot question, whose answer is not this problem's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from passk_plugin.graders import Verdict

# A number as written in prose: optional sign and dollar sign (either order), either
# thousands-grouped digits or plain digits, and an optional decimal part. A minus counts
# only when it does not follow a word or digit, so "3-5" and "x-5" give 5, not -5.
_NUMBER = (
    r"(?<![\w.])"
    r"(?P<sign>[-+\u2212]?)(?:\\?\$\s?)?(?P<sign2>[-+\u2212]?)"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
)
_NUMBER_RE = re.compile(_NUMBER)
_HASHES_RE = re.compile(r"####\s*(?:\*\*)?\s*" + _NUMBER)
_THE_ANSWER_RE = re.compile(
    r"the\s+(?:final\s+)?answer\s+is\s*[:=]?\s*(?:\*\*)?\s*(?:\\boxed\{)?\s*" + _NUMBER,
    re.IGNORECASE,
)


def _canonical(match: re.Match[str]) -> str | None:
    """The canonical numeric string of one number match: no commas, no trailing zeros."""
    negative = "-" in (match["sign"] + match["sign2"]).replace("\u2212", "-")
    try:
        value = Decimal(match["digits"].replace(",", ""))
    except InvalidOperation:
        return None
    if negative:
        value = -value
    return canonical_number(value)


def canonical_number(value: Decimal | str | int | float) -> str:
    """1234.00 -> "1234", -3 -> "-3", 2.50 -> "2.5", -0 -> "0"."""
    number = Decimal(str(value).replace(",", "").replace("$", "").strip())
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def extract_answer(text: str) -> str | None:
    """The canonical number a completion gives as its answer, or None if it gives none."""
    for pattern in (_HASHES_RE, _THE_ANSWER_RE):
        match = pattern.search(text)
        if match is not None:
            return _canonical(match)
    numbers = list(_NUMBER_RE.finditer(text))
    return _canonical(numbers[-1]) if numbers else None


def gold_answer(problem: dict) -> str:
    """The canonical gold number of a GSM8K problem.

    problem["answer"] is GSM8K's gold text (reasoning, then `#### N`) or already a number.
    """
    if "answer" not in problem:
        raise ValueError(
            f"GSM8K problem has no 'answer' field (keys: {sorted(problem)}); "
            "expected GSM8K's answer text ending in '#### N' or a bare number"
        )
    raw = str(problem["answer"])
    if "####" in raw:
        raw = raw.rsplit("####", 1)[1]
    match = _NUMBER_RE.search(raw)
    answer = None if match is None else _canonical(match)
    if answer is None:
        raise ValueError(f"GSM8K gold answer has no number: {problem['answer']!r}")
    return answer


def grade(completion: str, problem: dict) -> Verdict:
    """Verdict of one completion: correct when its number equals the gold number."""
    return grade_answer(extract_answer(completion), problem)


def grade_answer(answer: str | None, problem: dict) -> Verdict:
    """Verdict of an extracted canonical number (None: nothing extracted)."""
    gold = gold_answer(problem)
    if answer is None:
        return Verdict(correct=False, answer=None, result="no answer")
    correct = Decimal(answer) == Decimal(gold)
    # Canonical numbers are unique spellings, so the number itself names its class.
    return Verdict(
        correct=correct,
        answer=answer,
        result="passed" if correct else "wrong answer",
        answer_class=answer,
    )


def grade_problem(completions: Sequence[str], problem: dict) -> list[Verdict]:
    """Verdicts of all samples of one problem (a number match costs microseconds, so each
    sample is simply graded; nothing to share)."""
    return [grade(text, problem) for text in completions]

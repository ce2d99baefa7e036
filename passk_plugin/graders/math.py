"""MATH grader (full MATH and MATH-500): the last boxed answer, checked with math-verify.

Pipeline: extract the answer (last `\\boxed{}`/`\\fbox{}`, else the Minerva
"Final Answer: The final answer is X. I hope it is correct." form), then decide
equivalence with math-verify (`verify(gold, prediction)`, gold first) under a time limit.
`normalize` gives the key under which answers vote together in maj@k; correctness never
rests on it alone.

Equivalence follows math-verify's rules, including that an assignment equals its value
(`x=5` matches `5`, both ways) and that `\\text{(C)}` matches `C`.

Time limit: math-verify's own limit uses `signal.alarm`, which only works in the main
thread and has whole-second granularity. Here the main thread (with no interval timer
already running) gets a SIGALRM interval timer around parse + verify together; any other
thread sends the check to a private worker process (one per thread, started on first use)
that applies the same limit in its own main thread and is killed if it does not answer
shortly after the limit, so even a computation stuck in C code cannot hang the caller.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from passk_plugin.graders import Verdict

Outcome = Literal["equal", "different", "timed out"]

# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MINERVA_RE = re.compile(
    r"Final Answer:\s*The final answer is\s*(.*?)\.?\s*I hope it is correct", re.DOTALL
)


def _braced_group(text: str, start: int) -> tuple[str, int] | None:
    """The content of the `{...}` group opening at text[start], and the index after it.

    Escaped characters (`\\{`, `\\}`, `\\\\`) do not count as grouping braces, as in LaTeX.
    None when the group is never closed (e.g. a completion cut off mid-answer).
    """
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed`/`\\fbox` in text; None if there is none or it is
    unclosed (an unclosed last box is a cut-off answer: an earlier box is not the answer)."""
    position = max(text.rfind(command) for command in _BOX_COMMANDS)
    if position < 0:
        return None
    command = next(c for c in _BOX_COMMANDS if text.startswith(c, position))
    rest = position + len(command)
    # `\boxed 5` (no braces): the argument is the next token.
    if rest < len(text) and text[rest] == " ":
        token = re.match(r"\s*([^\s$]+)", text[rest:])
        return token.group(1) if token else None
    if rest < len(text) and text[rest] == "{":
        group = _braced_group(text, rest)
        return None if group is None else group[0]
    return None


def _strip_dollars(answer: str) -> str:
    answer = answer.strip()
    while len(answer) >= 2 and answer[0] == "$" and answer[-1] == "$":
        answer = answer[1:-1].strip()
    return answer


def extract_answer(text: str) -> str | None:
    """The answer a completion gives: its last boxed content, else the Minerva form."""
    boxed = _last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        return boxed or None
    matches = _MINERVA_RE.findall(text)
    if matches:
        answer = _strip_dollars(matches[-1])
        return answer or None
    return None


def gold_answer(problem: dict) -> str:
    """The gold answer: problem["answer"] (MATH-500), else the last boxed of the solution."""
    answer = problem.get("answer")
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    solution = problem.get("solution")
    if solution is None:
        raise ValueError(
            f"MATH problem has neither 'answer' nor 'solution' (keys: {sorted(problem)}); "
            "expected MATH-500 rows or EleutherAI/hendrycks_math rows"
        )
    boxed = _last_boxed(solution)
    if boxed is None or not boxed.strip():
        raise ValueError(f"MATH solution has no \\boxed{{}} answer: {solution[-200:]!r}")
    return boxed.strip()


# ---------------------------------------------------------------------------------------
# Normalisation (the maj@k voting key)
# ---------------------------------------------------------------------------------------

_SPACING_RE = re.compile(r"\\[,;:! ]|\\q?quad|~")
_UNIT_AFTER_NUMBER_RE = re.compile(r"^([-+]?[\d.,/{}\\a-z]*\d\}?)\\(?:text|mbox|mathrm)\{[^{}]*\}$")
_ASSIGNMENT_RE = re.compile(r"^[a-zA-Z](?:_\{?\w+\}?)?=(?!.*=)")
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL_RE = re.compile(r"^-?\d*\.\d+$|^-?\d+\.?$")


def normalize(answer: str) -> str:
    """A light canonical spelling of an answer, the key under which answers vote in maj@k.

    Conservative on purpose: it merges spellings that are plainly the same (spacing,
    `\\left`/`\\right`, `\\dfrac`, degrees, units after a number, `x=` before a value,
    thousands commas, trailing zeros) and leaves everything else to math-verify.
    """
    text = _strip_dollars(answer)
    text = _SPACING_RE.sub("", text)
    text = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])", "", text)
    text = text.replace("\\displaystyle", "")
    text = re.sub(r"\\[dt]frac", r"\\frac", text)
    text = re.sub(r"\s+", _drop_space, text)
    text = re.sub(r"\^\{?\\circ\}?", "", text)
    text = text.replace("\\%", "").replace("%", "").replace("\\$", "")
    text = text.rstrip(".")
    # \frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", text)
    unit = _UNIT_AFTER_NUMBER_RE.match(text)
    if unit:
        text = unit.group(1)
    full_text = re.fullmatch(r"\\(?:text|textbf|mbox|mathrm|textrm)\{([^{}]*)\}", text)
    if full_text:
        text = full_text.group(1)
    text = re.sub(r"^\(([A-Za-z])\)$", r"\1", text)  # multiple choice: (C) -> C
    text = _ASSIGNMENT_RE.sub("", text)
    if _THOUSANDS_RE.match(text):
        text = text.replace(",", "")
    if _DECIMAL_RE.match(text):
        text = _canonical_decimal(text)
    return text


def _drop_space(match: re.Match[str]) -> str:
    """Spaces go, except one that ends a command before a letter (`\\pi r` stays apart)."""
    before = match.string[max(0, match.start() - 32) : match.start()]
    after = match.string[match.end() : match.end() + 1]
    return " " if re.search(r"\\[a-zA-Z]+$", before) and after.isalpha() else ""


def _canonical_decimal(text: str) -> str:
    text = text.rstrip(".")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    negative = text.startswith("-")
    digits = text.lstrip("-").lstrip("0")
    if not digits or digits.startswith("."):
        digits = "0" + digits
    if digits == "0":
        return "0"
    return ("-" if negative else "") + digits


# ---------------------------------------------------------------------------------------
# Equivalence under a time limit
# ---------------------------------------------------------------------------------------


class _Deadline(BaseException):
    """Raised by the SIGALRM handler; a BaseException so that math-verify's and sympy's
    `except Exception` blocks do not swallow it."""


class _SilenceDisabledTimeoutWarning(logging.Filter):
    """math-verify warns once that its own timeout is off; here the limit is enforced
    around it, so the warning would only mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_SilenceDisabledTimeoutWarning())


def _as_latex(answer: str) -> str:
    """Wrap a bare answer so math-verify's LaTeX extraction takes all of it."""
    return f"\\boxed{{{_strip_dollars(answer)}}}"


def _verify_unbounded(gold: str, predicted: str) -> bool:
    from math_verify import parse, verify

    gold_parsed = parse(_as_latex(gold), parsing_timeout=None)
    predicted_parsed = parse(_as_latex(predicted), parsing_timeout=None)
    if not gold_parsed or not predicted_parsed:
        return False
    return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=None))


_TIMED_OUT = object()


def _call_with_alarm(function: Callable[[], Any], timeout: float) -> Any:
    """function() bounded by a SIGALRM interval timer, or _TIMED_OUT. Main thread only.

    The timer repeats every 50 ms after the deadline so that a `_Deadline` swallowed by a
    broad `except BaseException` somewhere in sympy is raised again.
    """
    armed = True

    def on_alarm(signum: int, frame: object) -> None:
        if armed:
            raise _Deadline

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout, 0.05)
        try:
            return function()
        finally:
            # A late alarm can land inside this block; retry until the timer is off.
            while True:
                try:
                    armed = False
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, previous)
                    break
                except _Deadline:
                    continue
    except _Deadline:
        return _TIMED_OUT


def _compare_with_alarm(gold: str, predicted: str, timeout: float) -> Outcome:
    """parse + verify bounded by a SIGALRM interval timer. Main thread only."""
    equal = _call_with_alarm(lambda: _verify_unbounded(gold, predicted), timeout)
    if equal is _TIMED_OUT:
        return "timed out"
    return "equal" if equal else "different"


@functools.cache
def warm_up() -> None:
    """Build math-verify's LaTeX parser (seconds on a busy machine) once per process, outside
    any sample's time limit; the inputs are fixed and small, so this cannot hang."""
    _verify_unbounded("\\frac{1}{2}", "(0.5, \\pi)")


def _alarm_usable() -> bool:
    """SIGALRM is ours to use: main thread, POSIX, and no interval timer already running
    (someone else's, e.g. a test-timeout plugin, which ours would clobber)."""
    return (
        threading.current_thread() is threading.main_thread()
        and hasattr(signal, "setitimer")
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
        # A handler installed from C cannot be restored from Python.
        and signal.getsignal(signal.SIGALRM) is not None
    )


# The worker's startup (importing sympy and math-verify) is not charged to a check.
_WORKER_START_LIMIT = 120.0
_WORKER_COMMAND = "from passk_plugin.graders.math import _serve_worker; _serve_worker()"


class _Worker:
    """A child process that answers equivalence checks one at a time over pipes."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self._finalizer = weakref.finalize(self, kill_worker, self.process)
        self._pending = b""
        deadline = time.monotonic() + _WORKER_START_LIMIT
        ready = self._read_line(deadline)
        while ready is not None and ready != b"ready":  # skip anything printed on import
            ready = self._read_line(deadline)
        if ready is None:
            self.close()
            raise RuntimeError(
                "the math-verify worker process did not start; check that "
                f"`{sys.executable} -c 'import passk_plugin.graders.math, math_verify'` works"
            )

    def compare(self, gold: str, predicted: str, timeout: float) -> Outcome | None:
        """The worker's outcome, or None when it did not answer in time (it is then dead)."""
        request = json.dumps({"gold": gold, "predicted": predicted, "timeout": timeout})
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(request.encode() + b"\n")
        except OSError:
            self.close()
            return None
        # Grace beyond the limit: the worker's own alarm normally answers "timed out".
        line = self._read_line(time.monotonic() + timeout + 1.0 + 0.5 * timeout)
        if line is None:
            self.close()
            return None
        try:
            outcome = json.loads(line)
        except ValueError:
            outcome = None
        if outcome not in ("equal", "different", "timed out"):
            self.close()
            return None
        return outcome

    def _read_line(self, deadline: float) -> bytes | None:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.strip()

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.process.poll() is None

    def close(self) -> None:
        self._finalizer()


def kill_worker(process: subprocess.Popen) -> None:
    """Kill a grading worker process (if still running) and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


# One worker per thread, so concurrent threads never wait on each other's checks. A
# thread's worker is killed when the thread ends (its thread-local slot is released).
_thread_workers = threading.local()


def _compare_in_worker(gold: str, predicted: str, timeout: float) -> Outcome:
    worker = getattr(_thread_workers, "worker", None)
    if worker is None or not worker.alive:
        worker = _thread_workers.worker = _Worker()
    outcome = worker.compare(gold, predicted, timeout)
    return "timed out" if outcome is None else outcome


def _serve_worker() -> None:
    """The worker process's loop: one JSON request per stdin line, one outcome per line."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt replies
    warm_up()  # before "ready": start-up is not a check's time

    replies.write(b"ready\n")
    for line in sys.stdin.buffer:
        request = json.loads(line)
        outcome = _compare_with_alarm(request["gold"], request["predicted"], request["timeout"])
        replies.write(json.dumps(outcome).encode() + b"\n")


def compare(gold: str, predicted: str, timeout: float = 5.0) -> Outcome:
    """ "equal", "different" or "timed out": math-verify on gold then prediction, bounded."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout}")
    if _alarm_usable():
        warm_up()
        return _compare_with_alarm(gold, predicted, timeout)
    return _compare_in_worker(gold, predicted, timeout)


def is_equiv(gold: str, predicted: str, timeout: float = 5.0) -> bool:
    """Whether math-verify finds predicted equal to gold within timeout seconds."""
    return compare(gold, predicted, timeout) == "equal"


# ---------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------


def grade(completion: str, problem: dict, timeout: float = 5.0) -> Verdict:
    """Verdict of one completion against a MATH problem's gold answer (no answer class:
    classes are relative to a problem's other samples, see :func:`grade_problem`)."""
    gold = gold_answer(problem)
    extracted = extract_answer(completion)
    if extracted is None:
        return Verdict(correct=False, answer=None, result="no answer")
    outcome = compare(gold, extracted, timeout)
    return Verdict(
        correct=outcome == "equal", answer=normalize(extracted), result=_RESULTS[outcome]
    )


_RESULTS = {"equal": "passed", "different": "wrong answer", "timed out": "timed out"}

# ---------------------------------------------------------------------------------------
# Grading a problem's samples together: each distinct answer once
# ---------------------------------------------------------------------------------------

# Clustering wrong answers into classes is bounded: each distinct wrong answer is compared
# with at most this many class representatives (the most frequent classes first), and all of
# a problem's clustering shares one time limit; answers left over keep a class of their own.
MAX_CLASS_COMPARISONS = 8


@dataclass(frozen=True)
class ProblemPlan:
    """A problem's samples reduced to their distinct normalised answers.

    keys: the distinct normalised answers, most frequent first; representatives: the first
    extracted spelling of each (what math-verify checks); sample_keys: per sample, the
    index into keys, or -1 when nothing was extracted.
    """

    gold: str
    keys: tuple[str, ...]
    representatives: tuple[str, ...]
    sample_keys: tuple[int, ...]


def plan_problem(
    answers: Sequence[str | None], problem: dict, counts: Sequence[int] | None = None
) -> ProblemPlan:
    """Group extracted answers (None: nothing extracted) by normalised spelling.

    counts: how many samples each entry of answers stands for (default one each), so a
    caller that has de-duplicated already keeps the frequency order.
    """
    gold = gold_answer(problem)
    index: dict[str, int] = {}
    representatives: list[str] = []
    weight: list[int] = []
    sample_keys: list[int] = []
    memo: dict[str, int] = {}  # extracted spelling -> key index, so normalize runs once each
    for i, answer in enumerate(answers):
        if answer is None:
            sample_keys.append(-1)
            continue
        slot = memo.get(answer)
        if slot is None:
            key = normalize(answer)
            slot = index.get(key)
            if slot is None:
                slot = index[key] = len(representatives)
                representatives.append(answer)
                weight.append(0)
            memo[answer] = slot
        weight[slot] += 1 if counts is None else int(counts[i])
        sample_keys.append(slot)
    keys = list(index)
    order = sorted(range(len(keys)), key=lambda j: -weight[j])
    rank = {old: new for new, old in enumerate(order)}
    return ProblemPlan(
        gold=gold,
        keys=tuple(keys[j] for j in order),
        representatives=tuple(representatives[j] for j in order),
        sample_keys=tuple(-1 if k < 0 else rank[k] for k in sample_keys),
    )


def check_distinct(
    gold: str, answers: Sequence[str], timeout: float, classify: bool = True
) -> list[tuple[Outcome, int]]:
    """Each distinct answer's outcome against gold, and its class.

    The class is -1 for the gold's class (the answer is correct), else the index in answers
    of its class representative (itself when alone). parse + verify of one answer share one
    time limit; a timed-out answer is graded "timed out" and keeps a class of its own.
    Each expression is parsed once, the gold first. Runs in the main thread of a process
    whose SIGALRM is free (the grading workers' main thread); elsewhere each check goes to
    a worker process (:func:`compare`), and answers are not clustered.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout}")
    if not _alarm_usable():
        outcomes = [compare(gold, answer, timeout) for answer in answers]
        return [(o, -1 if o == "equal" else i) for i, o in enumerate(outcomes)]
    from math_verify import parse, verify

    warm_up()
    parsed_gold: list = []

    def parse_gold() -> None:
        parsed_gold.extend(parse(_as_latex(gold), parsing_timeout=None))

    if _call_with_alarm(parse_gold, timeout) is _TIMED_OUT:
        return [("timed out", i) for i in range(len(answers))]
    out: list[tuple[Outcome, int]] = []
    parsed: list[list | None] = []
    for i, answer in enumerate(answers):
        holder: list = []

        def check(answer: str = answer, holder: list = holder) -> bool:
            holder.extend(parse(_as_latex(answer), parsing_timeout=None))
            if not parsed_gold or not holder:
                return False
            return bool(verify(parsed_gold, holder, timeout_seconds=None))

        equal = _call_with_alarm(check, timeout)
        if equal is _TIMED_OUT:
            out.append(("timed out", i))
            parsed.append(None)
        else:
            out.append(("equal" if equal else "different", -1 if equal else i))
            parsed.append(holder if holder and not equal else None)
    if classify:
        _cluster(out, parsed, timeout)
    return out


def _cluster(out: list[tuple[Outcome, int]], parsed: list[list | None], timeout: float) -> None:
    """Merge wrong answers math-verify judges equal (see MAX_CLASS_COMPARISONS), in place."""
    from math_verify import verify

    representatives: list[int] = []  # answers heading a class, most frequent first

    def run() -> None:
        for i, expression in enumerate(parsed):
            if expression is None:
                continue
            for head in representatives[:MAX_CLASS_COMPARISONS]:
                if verify(parsed[head], expression, timeout_seconds=None):
                    out[i] = (out[i][0], head)
                    break
            else:
                representatives.append(i)

    _call_with_alarm(run, timeout)


def finish_problem(plan: ProblemPlan, checked: Sequence[tuple[Outcome, int]]) -> list[Verdict]:
    """One verdict per sample from its distinct answer's outcome and class."""
    gold_class = normalize(plan.gold)
    per_key: list[Verdict] = []
    for j, (outcome, head) in enumerate(checked):
        if head < 0:
            name = gold_class
        else:
            name = plan.keys[head]
            if name == gold_class:  # spelled like the gold yet judged different
                name += " (not the gold)"
        per_key.append(
            Verdict(
                correct=outcome == "equal",
                answer=plan.keys[j],
                result=_RESULTS[outcome],
                answer_class=name,
            )
        )
    none = Verdict(correct=False, answer=None, result="no answer")
    return [none if k < 0 else per_key[k] for k in plan.sample_keys]


def grade_problem(
    completions: Sequence[str], problem: dict, timeout: float = 5.0, classify: bool = True
) -> list[Verdict]:
    """Verdicts of all samples of one problem, in order; each distinct normalised answer is
    checked once and its verdict shared by its duplicates."""
    plan = plan_problem([extract_answer(text) for text in completions], problem)
    return finish_problem(plan, check_distinct(plan.gold, plan.representatives, timeout, classify))

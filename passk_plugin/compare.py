"""`passk compare`: is model A really better than model B? Paired, problem by problem.

A and B are each one of
- a sweep point directory (`point.json`, `results.json`, `samples_<task>.jsonl`),
- an `lm_eval --output_path` directory written with `--log_samples` (one results_*.json in
  it, or that file itself),
- a `passk score` per-sample results file (`<samples>_results.jsonl`, with `passed` per
  sample); its task is `humaneval` when the task ids are `HumanEval/N`, else the records'
  `task` field, else `score`.

Problems are matched by id (lm_eval's doc_id, or the task_id), and for every metric the
per-problem values of A and B go to passk_plugin.stats: A's mean, B's mean, Δ = A − B, a 95%
paired-bootstrap interval over problems and a two-sided sign-flip p-value. Metrics: pass@k
for each k, and for k > 1 G-Pass@k_tau, mG-Pass@k and expected maj@k (where both sides logged
answers), mean ρ, the shares of problems with ρ = 0 and ρ = 1, and the answer diversity.
The p-values are per metric, not corrected for the many metrics shown: read the metric you
came for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from passk_plugin import metrics, stats
from passk_plugin.errors import UsageError
from passk_plugin.metrics import AnswerClasses
from passk_plugin.report.collect import (
    TaskResult,
    collect_lm_eval_dirs,
    point_dir_tasks,
    verdict_answer,
)
from passk_plugin.report.paired import stored_or_mean
from passk_plugin.sweep_store import POINT_SPEC_FILE, RESULTS_FILE, read_json


@dataclass(frozen=True)
class TaskSamples:
    """One task's per-problem data on one side, problems in a fixed order."""

    task: str
    ids: tuple[str, ...]
    n: np.ndarray
    c: np.ndarray
    classes: tuple[AnswerClasses, ...] | None = None
    hashes: tuple[str | None, ...] | None = None
    stored: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Side:
    """What one argument of `passk compare` holds."""

    label: str
    tasks: dict[str, TaskSamples]


# ---------------------------------------------------------------- reading the two sides


def _from_task_result(tr: TaskResult, where: str) -> TaskSamples:
    if tr.n is None or tr.c is None:
        raise UsageError(
            f"{where}: task {tr.task} has no per-sample verdicts (no logged samples with n "
            "and c); run lm_eval with --log_samples, or compare `passk score` results files"
        )
    ids = tr.problem_ids or tuple(str(i) for i in range(tr.n.size))
    return TaskSamples(
        task=tr.task,
        ids=ids,
        n=tr.n,
        c=tr.c,
        classes=tr.answer_classes,
        hashes=tr.problem_hashes,
        stored=dict(tr.metrics),
    )


def _point_dir(path: Path) -> Side:
    tasks = point_dir_tasks(path)
    spec = read_json(path / POINT_SPEC_FILE) if (path / POINT_SPEC_FILE).is_file() else {}
    label = str(spec.get("id") or path.name)
    return Side(label, {t: _from_task_result(tr, str(path)) for t, tr in tasks.items()})


def _lm_eval_output(path: Path) -> Side:
    records = collect_lm_eval_dirs([path])
    if len(records) != 1:
        found = ", ".join(Path(r.source).name for r in records[:4])
        raise UsageError(
            f"{path} holds {len(records)} lm_eval results files ({found}...); pass one of "
            "them (results_<timestamp>.json) or the folder of a single run"
        )
    (record,) = records
    return Side(
        record.label, {t: _from_task_result(tr, str(path)) for t, tr in record.tasks.items()}
    )


def _score_results(path: Path) -> Side:
    per_problem: dict[str, list[dict[str, Any]]] = {}
    tasks_named: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            if not isinstance(record, dict) or "task_id" not in record:
                raise UsageError(f"{path}:{lineno}: expected a record with a task_id")
            if "passed" not in record:
                raise UsageError(
                    f"{path}:{lineno}: no per-sample verdict ('passed'); give the "
                    "`<samples>_results.jsonl` that `passk score` writes, not the samples"
                )
            if record.get("task"):
                tasks_named.add(str(record["task"]))
            per_problem.setdefault(str(record["task_id"]), []).append(record)
    if not per_problem:
        raise UsageError(f"{path} holds no samples")
    ids = tuple(per_problem)
    if all(i.startswith("HumanEval/") for i in ids):
        task = "humaneval"
    elif len(tasks_named) == 1:
        task = tasks_named.pop()
    else:
        task = "score"
    n = np.array([len(v) for v in per_problem.values()], dtype=np.int64)
    c = np.array([sum(bool(r["passed"]) for r in v) for v in per_problem.values()])
    classes = None
    if all("answer" in r or "answer_class" in r for v in per_problem.values() for r in v):
        classes = tuple(
            AnswerClasses.from_samples(
                [verdict_answer(r) for r in v], [bool(r["passed"]) for r in v]
            )
            for v in per_problem.values()
        )
    return Side(path.name, {task: TaskSamples(task, ids, n, c, classes)})


def load_side(path: str | Path) -> Side:
    """Read a sweep point dir, an lm_eval output dir/results file, or a score results file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    if path.is_dir() and (path / RESULTS_FILE).is_file():
        return _point_dir(path)
    if path.is_dir() and (path / "points").is_dir():
        raise UsageError(
            f"{path} is a sweep run directory; compare two of its points, e.g. "
            f"{path}/points/<point id> (ids: `ls {path}/points`)"
        )
    if path.is_dir() or (path.name.startswith("results_") and path.suffix == ".json"):
        return _lm_eval_output(path)
    if path.suffix == ".jsonl":
        return _score_results(path)
    if path.suffix == ".json":
        doc = read_json(path)
        if isinstance(doc, dict) and "per_problem" in doc:
            raise UsageError(
                f"{path} is a `passk score` summary without per-sample verdicts; give the "
                "`<samples>_results.jsonl` beside the samples instead"
            )
    raise UsageError(
        f"{path}: expected a sweep point directory, an lm_eval --output_path directory or "
        "results_*.json, or a `passk score` <samples>_results.jsonl"
    )


# ---------------------------------------------------------------- comparing


def _align(a: TaskSamples, b: TaskSamples) -> np.ndarray:
    """Indices putting b's problems in a's order; an error naming how many problems differ."""
    only_a = set(a.ids) - set(b.ids)
    only_b = set(b.ids) - set(a.ids)
    where = {pid: i for i, pid in enumerate(b.ids)}
    changed = 0
    if not only_a and not only_b and a.hashes is not None and b.hashes is not None:
        changed = sum(
            1
            for pid, h in zip(a.ids, a.hashes, strict=True)
            if h is not None and b.hashes[where[pid]] is not None and h != b.hashes[where[pid]]
        )
    if only_a or only_b or changed:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} of A's {len(a.ids)} problems are not in B")
        if only_b:
            parts.append(f"{len(only_b)} of B's {len(b.ids)} problems are not in A")
        if changed:
            parts.append(f"{changed} problems share an id but not their text")
        example = sorted(only_a | only_b)[:3]
        raise UsageError(
            f"{a.task}: A and B were scored on different problems ({'; '.join(parts)}"
            + (f"; e.g. {', '.join(example)}" if example else "")
            + "); compare runs on the same problems (same data, same --limit)"
        )
    return np.array([where[pid] for pid in a.ids], dtype=np.int64)


def _pick_tasks(a: Side, b: Side, tasks: Sequence[str] | None) -> list[str]:
    if tasks:
        missing = [(t, s) for t in tasks for s, side in (("A", a), ("B", b)) if t not in side.tasks]
        if missing:
            t, s = missing[0]
            have = ", ".join(sorted((a if s == "A" else b).tasks)) or "none"
            raise UsageError(f"task {t} is not in {s} (it has: {have})")
        return list(tasks)
    common = sorted(set(a.tasks) & set(b.tasks))
    if not common:
        raise UsageError(
            f"A and B share no task: A has {', '.join(sorted(a.tasks)) or 'none'}, "
            f"B has {', '.join(sorted(b.tasks)) or 'none'}; compare results of the same task"
        )
    return common


def compare_sides(
    a: Side,
    b: Side,
    *,
    tasks: Sequence[str] | None = None,
    ks: str | Iterable[int] | None = None,
    taus: str | Iterable[float] | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> dict[str, dict[str, stats.PairedResult]]:
    """{task: {metric: PairedResult}} for A − B on each shared (or named) task."""
    tau_list = metrics.parse_taus(taus)
    out: dict[str, dict[str, stats.PairedResult]] = {}
    for task in _pick_tasks(a, b, tasks):
        ta, tb = a.tasks[task], b.tasks[task]
        order = _align(ta, tb)
        n_min = int(min(ta.n.min(), tb.n.min()))
        try:
            k_list = metrics.parse_ks(ks if ks is not None else None, n_min)
        except ValueError as err:
            side = "A" if int(ta.n.min()) == n_min else "B"
            raise UsageError(f"{task}: {err} (the smallest n is {side}'s)") from err
        classes_a = ta.classes
        classes_b = None if tb.classes is None else tuple(tb.classes[i] for i in order)
        with_classes = classes_a is not None and classes_b is not None
        va = metrics.per_problem_metrics(
            ta.n, ta.c, k_list, tau_list, classes_a if with_classes else None
        )
        vb = metrics.per_problem_metrics(
            tb.n[order], tb.c[order], k_list, tau_list, classes_b if with_classes else None
        )
        names = list(va)
        results = stats.paired_compare_many(
            np.stack([va[m] for m in names]),
            np.stack([vb[m] for m in names]),
            n_resamples=n_resamples,
            seed=seed,
            a_means=[stored_or_mean(ta.stored, m, va[m]) for m in names],
            b_means=[stored_or_mean(tb.stored, m, vb[m]) for m in names],
        )
        out[task] = dict(zip(names, results, strict=True))
    return out


def compare_paths(
    a: str | Path, b: str | Path, **options: Any
) -> tuple[Side, Side, dict[str, dict[str, stats.PairedResult]]]:
    """Load both sides and compare them (options as for compare_sides)."""
    side_a, side_b = load_side(a), load_side(b)
    return side_a, side_b, compare_sides(side_a, side_b, **options)


def to_json(result: dict[str, dict[str, stats.PairedResult]]) -> dict[str, Any]:
    return {
        task: {name: res.to_dict() for name, res in by_metric.items()}
        for task, by_metric in result.items()
    }


def format_table(a: Side, b: Side, result: dict[str, dict[str, stats.PairedResult]]) -> str:
    """The comparison as the terminal shows it."""
    lines = [f"A: {a.label}", f"B: {b.label}"]
    for task, by_metric in result.items():
        n_problems = next(iter(by_metric.values())).n_problems if by_metric else 0
        lines.append("")
        lines.append(
            f"{task} ({n_problems} problems; Δ = A − B, 95% paired-bootstrap CI, sign-flip p)"
        )
        lines.append(f"  {'metric':<16} {'A':>8} {'B':>8} {'Δ':>8}  {'95% CI':<19} {'p':>7}")
        for name, r in by_metric.items():
            p = f"{r.p_value:.2g}" if r.p_value < 0.001 else f"{r.p_value:.3f}"
            lines.append(
                f"  {name:<16} {r.a:>8.4f} {r.b:>8.4f} {r.delta:>+8.4f}  "
                f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] {p:>7}"
            )
    return "\n".join(lines) + "\n"

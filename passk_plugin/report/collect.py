"""Read stored results back: a sweep's run directory, or plain `lm_eval --output_path` dirs.

Nothing is evaluated here; every number comes from the stored results.json / results_*.json
and the logged samples beside them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from passk_plugin.errors import DataError, decode_utf8, describe
from passk_plugin.grid import GridPoint
from passk_plugin.metrics import AnswerClasses
from passk_plugin.results import (  # noqa: F401  (re-exported for the report's modules)
    _PASS,
    NON_METRIC_KEYS,
    PREFERRED_FILTER,
    _is_number,
    metric_sort_key,
    split_metrics,
)
from passk_plugin.sweep_store import (
    POINT_SPEC_FILE,
    RESULTS_FILE,
    RunStore,
    read_json,
    samples_file_name,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskResult:
    """One task's stored numbers for one model point."""

    task: str
    metrics: dict[str, float]
    stderrs: dict[str, float]
    filter: str | None = None
    temperature: float | None = None
    # Per-problem sample counts from the logged samples (None when samples were not kept).
    n: np.ndarray | None = None
    c: np.ndarray | None = None
    rho: np.ndarray | None = None  # per-problem Pass@1 (c / n)
    # Per problem, in the order of n and c: its id (lm_eval's doc_id) and doc hash, and its
    # samples' answer classes where the logged samples keep per-sample verdicts (else None).
    problem_ids: tuple[str, ...] | None = None
    problem_hashes: tuple[str | None, ...] | None = None
    answer_classes: tuple[AnswerClasses, ...] | None = None

    @property
    def ks(self) -> list[int]:
        return sorted(int(m.group(1)) for key in self.metrics if (m := _PASS.match(key)))


@dataclass(frozen=True)
class PointRecord:
    """A model point as the report sees it: identity plus results per task."""

    id: str
    label: str
    method: str | None = None
    alpha: float | None = None  # the interpolation coordinate: α, t or η by method
    temperature: float | None = None
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    source: str = ""
    point: GridPoint | None = None  # the sweep's grid point (None for plain lm_eval output)


def task_temperature(results: Mapping[str, Any], task: str) -> float | None:
    """The sampling temperature a task actually ran with (after gen_kwargs overrides)."""
    cfg = results.get("configs", {}).get(task, {})
    gen = cfg.get("generation_kwargs") or {}
    temp = gen.get("temperature")
    if temp is None:
        return None
    if gen.get("do_sample") is False:
        return 0.0
    try:
        return float(temp)
    except (TypeError, ValueError):
        return None


def read_samples(path: Path, filt: str | None) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = decode_utf8(raw, path, lineno, error=DataError)
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}:{lineno}: corrupt sample line ({err.msg})") from None
                if filt is None or row.get("filter", filt) == filt:
                    rows.append(row)
    return rows


def counts_from_samples(
    samples: Sequence[Mapping[str, Any]],
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Per-problem (n, c, rho) from logged samples.

    Tasks log n and c per problem; without them, the per-problem "pass@1" (which is c/n)
    still gives rho.
    """
    if not samples:
        return None, None, None
    rows = sorted(samples, key=lambda r: r.get("doc_id", 0))
    if all(_is_number(r.get("n")) and _is_number(r.get("c")) for r in rows):
        n = np.array([int(r["n"]) for r in rows], dtype=np.int64)
        c = np.array([int(r["c"]) for r in rows], dtype=np.int64)
        return n, c, c / np.maximum(n, 1)
    if all(_is_number(r.get("pass@1")) for r in rows):
        return None, None, np.array([float(r["pass@1"]) for r in rows])
    return None, None, None


def problem_keys(
    samples: Sequence[Mapping[str, Any]],
) -> tuple[tuple[str, ...] | None, tuple[str | None, ...] | None]:
    """Per-problem ids (doc_id) and doc hashes, in counts_from_samples' order."""
    if not samples or not all("doc_id" in r for r in samples):
        return None, None
    rows = sorted(samples, key=lambda r: r.get("doc_id", 0))
    return tuple(str(r["doc_id"]) for r in rows), tuple(r.get("doc_hash") for r in rows)


def verdict_answer(verdict: Mapping[str, Any]) -> Any:
    """A sample's vote: its grader's equivalence class where recorded, else its answer."""
    if "answer_class" in verdict:
        return verdict["answer_class"]
    return verdict.get("answer")


def answer_classes_from_samples(
    samples: Sequence[Mapping[str, Any]],
) -> tuple[AnswerClasses, ...] | None:
    """Per-problem answer classes from the per-sample verdicts in logged filtered_resps.

    None when any problem lacks verdicts with an answer field (code tasks, older logs).
    """
    out = []
    for row in sorted(samples, key=lambda r: r.get("doc_id", 0)):
        filtered = row.get("filtered_resps")
        if not isinstance(filtered, list) or len(filtered) != 1:
            return None
        (entries,) = filtered
        try:
            # The harness's JSON verdict strings (harness.parse_verdicts, without importing
            # lm_eval here).
            verdicts = [dict(e) if isinstance(e, Mapping) else json.loads(e) for e in entries]
        except (TypeError, ValueError):
            return None
        if not verdicts or not all("answer" in v or "answer_class" in v for v in verdicts):
            return None
        out.append(
            AnswerClasses.from_samples(
                [verdict_answer(v) for v in verdicts], [bool(v.get("correct")) for v in verdicts]
            )
        )
    return tuple(out) if out else None


def task_results_from(
    results: Mapping[str, Any], samples_for: Mapping[str, Path]
) -> dict[str, TaskResult]:
    out: dict[str, TaskResult] = {}
    groups = set(results.get("groups", {}))
    for task, task_res in results.get("results", {}).items():
        if task in groups:  # a group's mean over its tasks, not a task of its own
            continue
        vals, errs, filt = split_metrics(task_res)
        if not vals:
            continue
        n = c = rho = ids = hashes = classes = None
        if task in samples_for:
            rows = read_samples(samples_for[task], filt)
            n, c, rho = counts_from_samples(rows)
            ids, hashes = problem_keys(rows)
            classes = answer_classes_from_samples(rows)
        out[task] = TaskResult(
            task=task,
            metrics=vals,
            stderrs=errs,
            filter=filt,
            temperature=task_temperature(results, task),
            n=n,
            c=c,
            rho=rho,
            problem_ids=ids,
            problem_hashes=hashes,
            answer_classes=classes,
        )
    return out


def _common_temperature(tasks: Iterable[TaskResult]) -> float | None:
    temps = {t.temperature for t in tasks if t.temperature is not None}
    return temps.pop() if len(temps) == 1 else None


def collect_run(run_dir: str | Path, *, skipped: list[str] | None = None) -> list[PointRecord]:
    """Every finished point of a sweep's run directory.

    A point whose stored files cannot be read (corrupt JSON, not UTF-8) is left out: its
    reason is appended to `skipped` when given, else logged as a warning.
    """
    store = RunStore(run_dir)
    if not store.root.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    records = []
    for pid in store.done_ids():
        pdir = store.point_dir(pid)
        try:
            records.append(_read_point(pid, pdir, store.root))
        except UNREADABLE as err:
            _skip(f"point {pid} skipped: {describe(err)[0]}", skipped)
    return sort_records(records)


# What a damaged stored file raises when read: corrupt JSON or bytes (DataError and
# UsageError are ValueErrors), an unreadable file, or valid JSON of the wrong shape.
UNREADABLE = (ValueError, OSError, AttributeError, TypeError, KeyError)


def _skip(message: str, skipped: list[str] | None) -> None:
    if skipped is None:
        logger.warning(message)
    else:
        skipped.append(message)


def point_dir_tasks(pdir: Path) -> dict[str, TaskResult]:
    """The task results of one stored sweep point: results.json with its per-sample files."""
    results = read_json(pdir / RESULTS_FILE)
    samples = {
        task: pdir / samples_file_name(task)
        for task in results.get("results", {})
        if (pdir / samples_file_name(task)).is_file()
    }
    return task_results_from(results, samples)


def _read_point(pid: str, pdir: Path, root: Path) -> PointRecord:
    point = GridPoint.from_stored(read_json(pdir / POINT_SPEC_FILE), root)
    tasks = point_dir_tasks(pdir)
    temp = point.gen_kwargs().get("temperature")
    coordinate = point.coordinate
    return PointRecord(
        id=pid,
        label=point.id,
        method=point.method,
        alpha=coordinate[1] if coordinate else None,
        temperature=float(temp) if temp is not None else _common_temperature(tasks.values()),
        tasks=tasks,
        source=str(pdir),
        point=point,
    )


_RESULTS_NAME = re.compile(r"^results_(?P<ts>.+)\.json$")


def _label_from_config(results: Mapping[str, Any], fallback: str) -> str:
    args = results.get("config", {}).get("model_args")
    if isinstance(args, str):
        from lm_eval.utils import simple_parse_args_string

        args = simple_parse_args_string(args)
    if isinstance(args, dict) and args.get("pretrained"):
        pre = str(args["pretrained"])
        return Path(pre).name if ("/" in pre and Path(pre).exists()) else pre
    return fallback


def collect_lm_eval_dirs(
    dirs: Sequence[str | Path], *, skipped: list[str] | None = None
) -> list[PointRecord]:
    """Points from `lm_eval --output_path DIR` outputs: DIR/<model>/results_<ts>.json (+ samples).

    Each results file is one point, labelled by its model (pretrained=...) and, when one
    model has several runs, the run's timestamp. Unreadable files are left out as in
    :func:`collect_run`.
    """
    found: list[tuple[Path, str]] = []
    for d in dirs:
        root = Path(d)
        if root.is_file() and _RESULTS_NAME.match(root.name):
            found.append((root, _RESULTS_NAME.match(root.name)["ts"]))
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"results directory not found: {d}")
        hits = [
            (p, m["ts"])
            for p in sorted(root.rglob("results_*.json"))
            if (m := _RESULTS_NAME.match(p.name))
        ]
        if not hits:
            raise FileNotFoundError(
                f"no lm_eval results_*.json under {d}: run lm_eval with --output_path"
            )
        found.extend(hits)
    records = []
    labels: dict[str, int] = {}
    for path, ts in found:
        try:
            results = read_json(path)
            samples = {}
            for task in results.get("results", {}):
                cand = path.parent / f"samples_{task}_{ts}.jsonl"
                if cand.is_file():
                    samples[task] = cand
            tasks = task_results_from(results, samples)
        except UNREADABLE as err:
            _skip(f"{path} skipped: {describe(err)[0]}", skipped)
            continue
        label = _label_from_config(results, path.parent.name)
        labels[label] = labels.get(label, 0) + 1
        records.append((label, ts, path, tasks))
    out = []
    for label, ts, path, tasks in records:
        full = f"{label} ({ts})" if labels[label] > 1 else label
        out.append(
            PointRecord(
                id=re.sub(r"[^A-Za-z0-9_.=@+-]+", "_", full),
                label=full,
                temperature=_common_temperature(tasks.values()),
                tasks=tasks,
                source=str(path),
            )
        )
    return sort_records(out)


def sort_records(records: Iterable[PointRecord]) -> list[PointRecord]:
    """Merges by method then coordinate, then checkpoints and decoding points."""

    def key(r: PointRecord) -> tuple:
        baseline = r.method in ("checkpoint", "decoding")
        return (
            baseline,
            r.method or "",
            r.alpha if r.alpha is not None else math.inf,
            r.temperature if r.temperature is not None else math.inf,
            r.label,
        )

    return sorted(records, key=key)

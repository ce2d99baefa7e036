"""The demo's targets over several seeds: the demo for each seed, then one table per seed.

    python bench/demo_seeds.py [--seeds 0 1 2] [--out passk_demo_seeds] [--quick]

For each seed it runs `passk demo --seed S` in this process (training cached, the sweep
resumes), under OUT/seed-S, and prints every evaluated point's Pass@1 and Pass@k_max
(k_max = n) with its paired difference to the late checkpoint, then whether the demo's
targets 1-3 hold (`demo_targets.py` says how each is judged), and finally target 4: 1-3 hold
for at least two of three seeds.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from demo_targets import check, targets_markdown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("passk_demo_seeds"))
    parser.add_argument("--quick", action="store_true", help="the reduced demo (a smoke test)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    from passk_plugin.demo.run import DemoConfig, run_demo, with_overrides

    base = DemoConfig.quick() if args.quick else DemoConfig()
    met = {}
    for seed in args.seeds:
        config = with_overrides(base, seed=seed)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        run_demo(args.out / f"seed-{seed}", config, progress=not args.no_progress)
        wall = time.perf_counter() - wall0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        targets = check(
            args.out / f"seed-{seed}" / "run", config.train.early_step, config.train.steps
        )
        met[seed] = all(targets.met.values())
        print(
            f"\n## seed {seed} (T = {config.sampling_temperature:g}, n = {config.n}, "
            f"{config.train.n_test} held-out problems; this call: {wall:.0f} s wall, "
            f"{cpu:.0f} s CPU, cached parts not redone)\n"
        )
        print(targets.table + "\n\n" + targets_markdown(targets), flush=True)
    held = sum(met.values())
    print(
        f"\ntargets 1-3 hold for {held} of {len(met)} seeds "
        f"({', '.join(str(s) for s, ok in met.items() if ok) or 'none'}) -> target 4 "
        f"{'met' if held >= 2 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The README's demo figures and tables, regenerated: `passk demo`, then docs/demo/.

    python bench/demo_readme.py [--out passk_demo] [--seed 0] [--quick]

Runs `passk demo --out OUT --seed S` as a user would (training cached and finished points
kept, so a second call only rebuilds the report), copies the report's trajectory plot, its
Pass@1-against-Pass@k_max plot (WiSE-FT and the late checkpoint's decoding points, 95% error
bars) and its paired table into docs/demo/, and prints the markdown the README's demo section
shows: every point against the late checkpoint, each target with its measured numbers, and
the lines `passk demo` ended with.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from demo_targets import TASK, check, targets_markdown

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "demo"
FIGURES = (f"trajectory_{TASK}.png", f"pass1_vs_passk_{TASK}.png", "paired.md")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("passk_demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the reduced demo (a smoke test)")
    parser.add_argument("--docs", type=Path, default=DOCS, help=f"[{DOCS.relative_to(REPO)}]")
    args = parser.parse_args()

    from passk_plugin.demo.run import DemoConfig, with_overrides

    command = [str(Path(sys.executable).with_name("passk")), "demo", "--out", str(args.out)]
    command += ["--seed", str(args.seed), "--no-progress"] + (["--quick"] if args.quick else [])
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    printed = done.stdout.rstrip().splitlines()
    # The finding: everything after the last blank line of what `passk demo` printed.
    last_blank = max(i for i, line in enumerate(printed) if not line.strip())
    finding = printed[last_blank + 1 :]

    config = with_overrides(DemoConfig.quick() if args.quick else DemoConfig(), seed=args.seed)
    report = args.out / "run" / "report"
    args.docs.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        shutil.copyfile(report / name, args.docs / name)
    targets = check(args.out / "run", config.train.early_step, config.train.steps)

    print(
        f"`passk demo --seed {args.seed}`{' --quick' if args.quick else ''}: "
        f"T = {config.sampling_temperature:g}, n = {config.n}, {config.train.n_test} held-out "
        f"problems (this call {wall:.0f} s; finished parts are reused).\n"
    )
    print(targets.table + "\n")
    print(targets_markdown(targets) + "\n")
    print("`passk demo` ends with:\n\n```\n" + "\n".join(finding) + "\n```\n")
    for name in FIGURES:
        print(f"copied {report / name} -> {args.docs / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`passk demo`: the offline WiSE-FT demo (train, sweep, report) on CPU."""

from __future__ import annotations

import argparse
from pathlib import Path

from passk_plugin.outputs import claim_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("passk_demo"), help="[./passk_demo]")
    parser.add_argument(
        "--quick", action="store_true", help="a reduced demo (seconds of training, few problems)"
    )
    parser.add_argument("--seed", type=int, help="training seed [0]")
    parser.add_argument(
        "--temperature", type=float, help="sampling temperature of the WiSE-FT points [1.0]"
    )
    parser.add_argument("--n", type=int, help="samples per problem (Pass@k up to k = n) [16]")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an existing directory that is not a passk demo (nothing is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    from passk_plugin.demo.run import (
        DemoConfig,
        describe,
        finding_text,
        run_demo,
        with_overrides,
    )

    claim_output_dir(
        args.out,
        "demo",
        overwrite=args.overwrite,
        # a demo from before output markers: its trained checkpoints or its sweep
        recognise=lambda path: (path / "checkpoints").is_dir() or (path / "run").is_dir(),
    )
    config = DemoConfig.quick() if args.quick else DemoConfig()
    config = with_overrides(config, seed=args.seed, temperature=args.temperature, n=args.n)
    print(describe(config), flush=True)
    files = run_demo(args.out, config, progress=not args.no_progress)
    board = files.get("leaderboard.md")
    if board is not None:
        print()
        print(Path(board).read_text(encoding="utf-8"))
    print()
    print(finding_text(args.out, config))
    print(f"The full report: {Path(files['leaderboard.html']).resolve()}")
    return 0

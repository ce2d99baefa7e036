"""`passk report`: leaderboard tables, plots and the bias-variance view from stored results.

passk report runs/wiseft                       # a sweep's RUN_DIR -> RUN_DIR/report/
passk report --results out/ other/ --out rep/  # plain `lm_eval --output_path` dirs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", type=Path, help="a `passk sweep` run directory")
    parser.add_argument(
        "--results",
        nargs="+",
        type=Path,
        help="lm_eval --output_path directories (results_*.json, samples_*.jsonl) instead",
    )
    parser.add_argument("--out", type=Path, help="report directory [RUN_DIR/report]")
    parser.add_argument("--title", help="title of the leaderboard")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an existing directory that is not a passk report (files of the same "
        "name are replaced, nothing else is deleted)",
    )


def run(args: argparse.Namespace) -> int:
    from passk_plugin.report import build_report

    skipped: list[str] = []
    written = build_report(
        args.run_dir,
        results_dirs=args.results,
        out=args.out,
        title=args.title,
        with_plots=not args.no_plots,
        overwrite=args.overwrite,
        skipped=skipped,
    )
    folder = next(iter(written.values())).parent
    print(f"wrote {len(written)} files to {folder}")
    if skipped:
        print(f"left out {len(skipped)} unreadable result(s):", file=sys.stderr)
        for message in skipped:
            print(f"  {message}", file=sys.stderr)
    for name in ("leaderboard.md", "leaderboard.html"):
        if name in written:
            print(f"  {written[name]}")
    return 0

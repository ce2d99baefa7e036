"""`passk compare A B`: paired differences, problem by problem, with intervals and p-values.

passk compare runs/wiseft/points/wise-ft_a0.500 runs/wiseft/points/wise-ft_a1.000 --k 1,16
passk compare out_a/ out_b/ --tasks gsm8k_passk --out ab.json   # lm_eval --output_path dirs
passk compare a.jsonl_results.jsonl b.jsonl_results.jsonl       # `passk score` results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "a", type=Path, help="sweep point dir, lm_eval output dir, or score results file"
    )
    parser.add_argument("b", type=Path, help="the same kind of thing for B (Δ = A − B)")
    parser.add_argument("--tasks", nargs="+", help="tasks to compare [every shared task]")
    parser.add_argument("--k", default=None, help="k list, e.g. 1,4,16 [1,2,4,...,n]")
    parser.add_argument("--tau", default=None, help="G-Pass@k thresholds in (0, 1] [0.5,0.75,1.0]")
    parser.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples (>= 2000) [10000]"
    )
    parser.add_argument("--seed", type=int, default=0, help="resampling seed [0]")
    parser.add_argument("--out", type=Path, help="write the comparison as JSON")


def run(args: argparse.Namespace) -> int:
    from passk_plugin import compare
    from passk_plugin.atomic import atomic_write_text

    side_a, side_b, result = compare.compare_paths(
        args.a,
        args.b,
        tasks=args.tasks,
        ks=args.k,
        taus=args.tau,
        n_resamples=args.resamples,
        seed=args.seed,
    )
    print(compare.format_table(side_a, side_b, result), end="")
    if args.out:
        atomic_write_text(args.out, json.dumps(compare.to_json(result), indent=2) + "\n")
        print(f"\nwrote {args.out}")
    return 0

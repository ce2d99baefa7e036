"""`passk merge RECIPE OUT`: run mergekit on one recipe, in-process; skips finished outputs.

OUT must be new, empty, or a merge passk wrote; anything else needs --overwrite, and a
directory holding the recipe's checkpoints is never written into.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, help="mergekit YAML recipe (from `passk recipes`)")
    parser.add_argument("out", type=Path, help="output model directory")
    parser.add_argument(
        "--cuda",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="merge on the GPU [auto: when torch sees one]",
    )
    parser.add_argument(
        "--lazy-unpickle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read pickled (.bin) weights lazily to save memory [on]",
    )
    parser.add_argument(
        "--low-cpu-memory",
        action="store_true",
        help="keep intermediate results on the GPU (when VRAM exceeds RAM)",
    )
    parser.add_argument(
        "--copy-tokenizer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="copy the base model's tokenizer into OUT [on]",
    )
    parser.add_argument("--force", action="store_true", help="merge even if OUT is complete")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an existing directory passk did not write (files of the same name "
        "are replaced, nothing else is deleted; never a directory holding the checkpoints)",
    )
    parser.add_argument("--verbose", action="store_true", help="show mergekit's progress bars")


def run(args: argparse.Namespace) -> int:
    from passk_plugin.merge import is_complete, merge_recipe

    if not args.force and is_complete(args.out, args.recipe):
        print(f"{args.out}: already a complete merge of {args.recipe}, skipped")
        return 0
    start = time.perf_counter()
    out = merge_recipe(
        args.recipe,
        args.out,
        cuda=args.cuda,
        lazy_unpickle=args.lazy_unpickle,
        low_cpu_memory=args.low_cpu_memory,
        copy_tokenizer=args.copy_tokenizer,
        force=args.force,
        overwrite=args.overwrite,
        quiet=not args.verbose,
    )
    print(f"merged {args.recipe} into {out} in {time.perf_counter() - start:.1f} s")
    return 0

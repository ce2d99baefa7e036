"""`passk recipes`: write mergekit recipes (one YAML per grid point) and a manifest."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from passk_plugin.outputs import claim_output_dir
from passk_plugin.recipes import (
    GRID_PARAMETER,
    MANIFEST_NAME,
    METHODS,
    RecipeSpec,
    build_grid,
    parse_grid,
    parse_weights,
    write_recipes,
)

# grid flag -> the method it belongs to
_GRID_FLAGS = {"alphas": "wise-ft", "t": "slerp", "etas": "toward-base"}
_DEFAULT_GRID = "0:1:0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="wise-ft", help=f"one of {', '.join(METHODS)}")
    parser.add_argument("--early", help="early checkpoint (wise-ft, slerp)")
    parser.add_argument("--late", help="late checkpoint (wise-ft, slerp)")
    parser.add_argument("--base", help="base/initial model (toward-base)")
    parser.add_argument("--ft", help="fine-tuned model (toward-base)")
    parser.add_argument("--checkpoints", nargs="+", help="checkpoints to average (soup)")
    parser.add_argument(
        "--alphas", help=f"wise-ft α grid: list 0,0.5,1 or range start:stop:step [{_DEFAULT_GRID}]"
    )
    parser.add_argument("--t", help=f"slerp t grid, same syntax [{_DEFAULT_GRID}]")
    parser.add_argument("--etas", help=f"toward-base η grid, same syntax [{_DEFAULT_GRID}]")
    parser.add_argument(
        "--weights", help="soup weights, e.g. 1,1,2 (rescaled to sum to 1) [uniform]"
    )
    parser.add_argument(
        "--allow-extrapolation", action="store_true", help="allow grid values outside [0, 1]"
    )
    parser.add_argument("--dtype", help="mergekit dtype to compute in (default: the checkpoints')")
    parser.add_argument("--out-dtype", help="mergekit out_dtype of the merged weights")
    parser.add_argument(
        "--name", help="grid name: writes merge_configs/NAME [from method and checkpoints]"
    )
    parser.add_argument("--out", type=Path, help="output directory (overrides merge_configs/NAME)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an existing directory that holds no passk recipes (files of the same "
        "name are replaced, nothing else is deleted)",
    )


def _slug(ref: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(ref.rstrip("/")).name).strip("-") or "model"


def spec_from_args(args: argparse.Namespace) -> RecipeSpec:
    """The RecipeSpec the flags describe; ValueError for flags that do not fit the method."""
    method = args.method
    if method not in METHODS:
        raise ValueError(f"unknown merge method {method!r}; choose one of {', '.join(METHODS)}")
    for flag, owner in _GRID_FLAGS.items():
        if getattr(args, flag) is not None and owner != method:
            raise ValueError(f"--{flag} applies to {owner}, not {method}")
    roles = {
        "wise-ft": ("early", "late"),
        "slerp": ("early", "late"),
        "toward-base": ("base", "ft"),
        "soup": ("checkpoints",),
    }[method]
    for role in ("early", "late", "base", "ft", "checkpoints"):
        if getattr(args, role) is not None and role not in roles:
            raise ValueError(
                f"--{role} does not apply to {method} (it takes --{' --'.join(roles)})"
            )
    if method == "soup":
        if not args.checkpoints:
            raise ValueError("soup needs --checkpoints A B [C ...]")
        checkpoints = tuple(args.checkpoints)
        weights = tuple(parse_weights(args.weights)) if args.weights else None
        grid: tuple[float, ...] = ()
    else:
        missing = [r for r in roles if not getattr(args, r)]
        if missing:
            raise ValueError(f"{method} needs --{' and --'.join(missing)}")
        if args.weights:
            raise ValueError("--weights applies to soup only")
        checkpoints = tuple(getattr(args, r) for r in roles)
        flag = next(f for f, owner in _GRID_FLAGS.items() if owner == method)
        grid = tuple(parse_grid(getattr(args, flag) or _DEFAULT_GRID))
    return RecipeSpec(
        method=method,
        checkpoints=checkpoints,
        grid=grid,
        weights=weights if method == "soup" else None,
        allow_extrapolation=args.allow_extrapolation,
        dtype=args.dtype,
        out_dtype=args.out_dtype,
    )


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    points = build_grid(spec)  # checks checkpoints before anything is written
    if args.out is not None:
        out = args.out
    else:
        name = args.name or "_".join([spec.method, *(_slug(c) for c in spec.checkpoints[:2])])
        if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
            raise ValueError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
        out = Path("merge_configs") / name
    claim_output_dir(
        out,
        "recipes",
        overwrite=args.overwrite,
        inputs=spec.checkpoints,
        recognise=lambda path: (path / MANIFEST_NAME).is_file(),
        flag="--out" if args.out is not None else "--name",
    )
    manifest = write_recipes(points, out)
    parameter = GRID_PARAMETER.get(spec.method)
    what = f"{len(points)} {spec.method} recipe(s)"
    if parameter:
        what += f" ({parameter} = {', '.join(f'{getattr(p, parameter):g}' for p in points)})"
    print(f"wrote {what} to {manifest.parent}")
    print(manifest)
    return 0

"""mergekit recipes for interpolation grids: WiSE-FT, SLERP, toward-base and model soups.

Each grid point (a `passk_plugin.grid.GridPoint`) becomes one mergekit YAML file; a
``manifest.json`` beside them lists every point in its stored form with its file name.

Methods (checkpoints in the order given to :func:`build_grid`):

- ``wise-ft`` (early, late): θ = (1−α)·θ_early + α·θ_late, ``linear`` with
  ``normalize: false``; grid parameter ``alpha``.
- ``slerp`` (early, late): spherical interpolation from early (t=0) to late (t=1) as in
  WARP; grid parameter ``t``.
- ``toward-base`` (base, ft): θ = (1−η)·θ_base + η·θ_ft, interpolation of a fine-tuned
  model back toward its base (LITI in WARP); ``linear``, ``normalize: false``; grid
  parameter ``eta``.
- ``soup`` (c1, ..., cN): one point, the weighted average of N checkpoints of one run;
  ``linear`` with explicit weights rescaled to sum to 1 and ``normalize: false`` so the
  file states exactly what is computed.

Every recipe names ``base_model`` (the early / base / first checkpoint) so mergekit takes
config and tokenizer from it, and never sets ``tokenizer_source`` (which would resize
embeddings). Local checkpoints are checked (config, weights, tensor shapes) and written as
absolute paths before any file is written.

Python use::

    points = wise_ft_grid("ckpt/early", "ckpt/late", parse_grid("0:1:0.25"))
    manifest = write_recipes(points, "merge_configs/my-run")
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from passk_plugin.atomic import atomic_write_text
from passk_plugin.checkpoints import check_checkpoints, resolve_checkpoint
from passk_plugin.errors import UsageError, read_json_file, read_text
from passk_plugin.grid import (
    COORDINATE,
    MERGE_METHODS,
    GridPoint,
    coordinate_point_id,
    interpolation_points,
    v1_entry_fields,
)

METHODS: tuple[str, ...] = MERGE_METHODS
# The grid parameter of each method (kept for callers of the earlier name).
GRID_PARAMETER: dict[str, str] = COORDINATE
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "passk-recipes/2"
# Manifests this version still reads (older entries are migrated on read).
READABLE_FORMATS = ("passk-recipes/1", MANIFEST_FORMAT)
# A grid larger than this is almost certainly a typo (0:1:1e-9): refused before any work.
MAX_GRID_POINTS = 1000
_WEIGHT_DIGITS = 12


@dataclass(frozen=True)
class RecipeSpec:
    """A whole grid as data: method, checkpoints (in the method's order) and grid values.

    ``checkpoints``: (early, late) for wise-ft and slerp, (base, ft) for toward-base,
    (c1, ..., cN) for soup. ``grid``: α, t or η values (ignored for soup). ``weights``:
    soup weights (None: uniform).
    """

    method: str = "wise-ft"
    checkpoints: tuple[str, ...] = ()
    grid: tuple[float, ...] = ()
    weights: tuple[float, ...] | None = None
    allow_extrapolation: bool = False
    dtype: str | None = None
    out_dtype: str | None = None
    check: bool = True


@dataclass(frozen=True)
class RecipeFile:
    """A grid point read back from a manifest, with the path of its YAML file."""

    point: GridPoint
    path: Path


def _decimal(text: str, source: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"grid {source!r}: {text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"grid {source!r}: {text.strip()!r} is not a finite number")
    return value


def parse_grid(text: str) -> list[float]:
    """Parse a grid: a list ``"0,0.25,0.5"`` or a range ``"start:stop:step"`` (stop included).

    Ranges are computed in decimal arithmetic, so ``"0:1:0.1"`` gives exactly the 11 values
    0.0, 0.1, ..., 1.0 with no float drift. A single number is a one-point grid. Raises
    ValueError for malformed text, a zero or wrong-signed step, or repeated values.
    """
    source = text
    text = text.strip()
    if not text:
        raise UsageError("empty grid: give a list like 0,0.5,1 or a range like 0:1:0.25")
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"grid {source!r}: a range is start:stop:step, e.g. 0:1:0.1")
        start, stop, step = (_decimal(p, source) for p in parts)
        if step == 0 or (stop - start) * step < 0:
            raise ValueError(f"grid {source!r}: step {step} never reaches {stop} from {start}")
        count = int((stop - start) / step) + 1
        if count > MAX_GRID_POINTS:
            raise UsageError(
                f"grid {source!r} has {count} points, more than the limit of "
                f"{MAX_GRID_POINTS}: use a larger step"
            )
        values = [float(start + i * step) for i in range(count)]
    else:
        values = [float(_decimal(p, source)) for p in text.split(",") if p.strip()]
        if len(values) > MAX_GRID_POINTS:
            raise UsageError(f"grid {source!r} has more than {MAX_GRID_POINTS} points")
    values = [0.0 if v == 0 else v for v in values]  # no -0.0 in ids
    if len(set(values)) != len(values):
        raise ValueError(f"grid {source!r} repeats a value")
    return values


def parse_weights(text: str) -> list[float]:
    """Parse a comma-separated weight list such as ``"1,1,2"`` (repeats allowed)."""
    values = [float(_decimal(p, text)) for p in text.split(",") if p.strip()]
    if not values:
        raise ValueError(f"weights {text!r}: give a list like 1,1,2")
    return values


def point_id(method: str, parameter: str, value: float) -> str:
    """A stable, filesystem-safe id such as ``wise-ft_a0.250`` (see grid.coordinate_point_id)."""
    if COORDINATE.get(method) != parameter:
        raise ValueError(f"{method} has no coordinate {parameter}")
    return coordinate_point_id(method, value)


def _check_values(method: str, values: Sequence[float], allow_extrapolation: bool) -> None:
    parameter = GRID_PARAMETER[method]
    if not values:
        raise ValueError(f"{method}: the {parameter} grid is empty")
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"{method}: {parameter}={v} is not a finite number")
        if not allow_extrapolation and not 0.0 <= v <= 1.0:
            raise ValueError(
                f"{method}: {parameter}={v:g} is outside [0, 1]; "
                "pass allow_extrapolation (--allow-extrapolation) to extrapolate"
            )
    ids = [coordinate_point_id(method, v) for v in values]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{method}: {parameter} values closer than 0.001 give the same point id")


def _pair(refs: Sequence[str | os.PathLike], check: bool) -> list[str]:
    return check_checkpoints(refs) if check else [resolve_checkpoint(r) for r in refs]


def _pair_grid(
    method: str,
    first: str | os.PathLike,
    second: str | os.PathLike,
    values: Sequence[float],
    allow_extrapolation: bool,
    dtype: str | None,
    out_dtype: str | None,
    check: bool,
) -> list[GridPoint]:
    _check_values(method, values, allow_extrapolation)
    a, b = _pair([first, second], check)
    from passk_plugin.grid import checkpoint_step

    return interpolation_points(
        method, a, b, values, dtype=dtype, out_dtype=out_dtype, step=checkpoint_step(b)
    )


def wise_ft_grid(
    early: str | os.PathLike,
    late: str | os.PathLike,
    alphas: Sequence[float],
    *,
    allow_extrapolation: bool = False,
    dtype: str | None = None,
    out_dtype: str | None = None,
    check: bool = True,
) -> list[GridPoint]:
    """WiSE-FT points θ_α = (1−α)·θ_early + α·θ_late, one per α (base_model = early).

    Raises ValueError for α outside [0, 1] (unless allow_extrapolation) or incompatible
    checkpoints, FileNotFoundError for missing ones. ``check=False`` skips the checkpoint
    comparison (paths are still resolved).
    """
    return _pair_grid("wise-ft", early, late, alphas, allow_extrapolation, dtype, out_dtype, check)


def toward_base_grid(
    base: str | os.PathLike,
    ft: str | os.PathLike,
    etas: Sequence[float],
    *,
    allow_extrapolation: bool = False,
    dtype: str | None = None,
    out_dtype: str | None = None,
    check: bool = True,
) -> list[GridPoint]:
    """Points θ_η = (1−η)·θ_base + η·θ_ft, one per η (base_model = base)."""
    return _pair_grid("toward-base", base, ft, etas, allow_extrapolation, dtype, out_dtype, check)


def slerp_grid(
    early: str | os.PathLike,
    late: str | os.PathLike,
    ts: Sequence[float],
    *,
    allow_extrapolation: bool = False,
    dtype: str | None = None,
    out_dtype: str | None = None,
    check: bool = True,
) -> list[GridPoint]:
    """SLERP points from early (t=0) to late (t=1), one per t (base_model = early)."""
    return _pair_grid("slerp", early, late, ts, allow_extrapolation, dtype, out_dtype, check)


def soup_grid(
    checkpoints: Sequence[str | os.PathLike],
    weights: Sequence[float] | None = None,
    *,
    dtype: str | None = None,
    out_dtype: str | None = None,
    check: bool = True,
) -> list[GridPoint]:
    """A one-point grid: the (weighted) average of N checkpoints (base_model = the first).

    ``weights`` (default uniform) must be non-negative with a positive sum; they are
    rescaled to sum to 1. The id is ``soup_n<N>`` (uniform) or ``soup_n<N>_w<w1>_<w2>...``.
    """
    if len(checkpoints) < 2:
        raise ValueError(f"soup needs at least 2 checkpoints, got {len(checkpoints)}")
    n = len(checkpoints)
    if weights is None:
        raw = [1.0] * n
    else:
        raw = [float(w) for w in weights]
        if len(raw) != n:
            raise ValueError(f"soup: {len(raw)} weights for {n} checkpoints")
        if any(not math.isfinite(w) or w < 0 for w in raw) or sum(raw) <= 0:
            raise ValueError("soup: weights must be non-negative with a positive sum")
    total = math.fsum(raw)
    normalized = tuple(round(w / total, _WEIGHT_DIGITS) for w in raw)
    refs = _pair(checkpoints, check)
    if len(set(refs)) != len(refs):
        raise ValueError("soup: a checkpoint is listed twice; give it a larger weight instead")
    point = f"soup_n{n}"
    if weights is not None:
        point += "_w" + "_".join(f"{w:.3f}" for w in normalized)
    return [
        GridPoint(
            id=point,
            method="soup",
            checkpoints=tuple(refs),
            weights=normalized,
            dtype=dtype,
            out_dtype=out_dtype,
        )
    ]


def build_grid(spec: RecipeSpec) -> list[GridPoint]:
    """The grid points of `spec`; raises ValueError/FileNotFoundError on bad input."""
    if spec.method not in METHODS:
        raise ValueError(
            f"unknown merge method {spec.method!r}; choose one of {', '.join(METHODS)}"
        )
    kwargs: dict[str, Any] = {"dtype": spec.dtype, "out_dtype": spec.out_dtype, "check": spec.check}
    if spec.method == "soup":
        return soup_grid(spec.checkpoints, spec.weights, **kwargs)
    if len(spec.checkpoints) != 2:
        roles = "base and ft" if spec.method == "toward-base" else "early and late"
        raise ValueError(
            f"{spec.method} needs two checkpoints ({roles}), got {len(spec.checkpoints)}"
        )
    if spec.weights is not None:
        raise ValueError(f"weights apply to soup only, not {spec.method}")
    make = {"wise-ft": wise_ft_grid, "slerp": slerp_grid, "toward-base": toward_base_grid}
    return make[spec.method](
        *spec.checkpoints,
        list(spec.grid),
        allow_extrapolation=spec.allow_extrapolation,
        **kwargs,
    )


def write_recipes(points: Sequence[GridPoint], out_dir: str | os.PathLike) -> Path:
    """Write one ``<id>.yaml`` per merge point and ``manifest.json`` into out_dir.

    The manifest lists every point in its stored form (`GridPoint.to_stored`) with the name
    of its recipe file. Every file is written atomically; the manifest is written last, so
    a manifest on disk always lists recipes that exist. Raises ValueError for an empty grid,
    a point that is no merge, or duplicate ids. Returns the manifest's path.
    """
    if not points:
        raise ValueError("no grid points to write")
    ids = [p.id for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("grid points share an id")
    for point in points:
        if not point.needs_merge:
            raise ValueError(f"point {point.id} is no merge: it has no recipe")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for point in points:
        file = f"{point.id}.yaml"
        atomic_write_text(out / file, point.to_yaml())
        entries.append({**point.to_stored(), "file": file})
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": out.resolve().name,
        "methods": sorted({p.method for p in points}),
        "checkpoints": list(dict.fromkeys(m for p in points for m in p.checkpoints)),
        "points": entries,
    }
    path = out / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(path: str | os.PathLike) -> list[RecipeFile]:
    """The points of a manifest (a manifest.json or its directory), with their YAML paths.

    A recipe file edited after `passk recipes` wrote it no longer matches its manifest entry;
    that is refused (the manifest is what a sweep runs), naming the file.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise UsageError(f"no recipe manifest at {path}; write one with `passk recipes`")
    data = read_json_file(
        path, what="recipe manifest", fix="write the recipes again with `passk recipes`"
    )
    if data.get("format") not in READABLE_FORMATS:
        raise UsageError(f"{path} is not a passk recipe manifest ({MANIFEST_FORMAT})")
    out = []
    for e in data["points"]:
        fields = v1_entry_fields(e) if data["format"] == "passk-recipes/1" else dict(e)
        fields.pop("file", None)
        point = GridPoint.model_validate(fields)
        file = path.parent / e["file"]
        if file.is_file() and yaml.safe_load(read_text(file)) != (point.to_mergekit()):
            raise UsageError(
                f"{file} differs from its entry in {path}: write the grid again with "
                "`passk recipes` instead of editing a recipe"
            )
        out.append(RecipeFile(point=point, path=file))
    return out

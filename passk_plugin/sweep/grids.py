"""The grid a sweep is asked for, as data (`GridRequest`), and the points it stands for.

Building points checks the checkpoints (they exist; those merged together are compatible)
but writes nothing and loads no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from passk_plugin.errors import UsageError
from passk_plugin.grid import GridPoint, decoding_points, temperature_settings, unique_points

DEFAULT_ALPHAS = "0:1:0.25"


def merge_grid(
    early: str | Path, late: str | Path, values: Sequence[float], method: str = "wise-ft"
) -> list[GridPoint]:
    """Interpolations of two checkpoints (checked); `values` are α, t or η by method."""
    from passk_plugin import recipes

    if method == "soup":
        raise UsageError(
            "soup has no interpolation grid: write it with `passk recipes` and pass --recipes DIR"
        )
    try:
        return recipes.build_grid(
            recipes.RecipeSpec(
                method=method, checkpoints=(str(early), str(late)), grid=tuple(values)
            )
        )
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def manifest_points(manifest: str | Path) -> list[GridPoint]:
    """The points of a `passk recipes` manifest (the file or its directory)."""
    from passk_plugin.recipes import read_manifest

    return [rf.point for rf in read_manifest(manifest)]


def temperature_points(late: str | Path, temperatures: Sequence[float]) -> list[GridPoint]:
    """The baseline of the WiSE-FT paper: the late checkpoint at several temperatures."""
    from passk_plugin.checkpoints import resolve_checkpoint

    for t in temperatures:
        if not t >= 0 or t == float("inf"):
            raise UsageError(f"temperatures must be >= 0, got {t}")
    return decoding_points(resolve_checkpoint(late), temperature_settings(temperatures))


class GridRequest(BaseModel):
    """The grid options of `passk sweep`, as given (texts unparsed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    early: str | None = None
    late: str | None = None
    recipes: str | None = None
    alphas: str | None = None
    method: str = "wise-ft"
    temperatures: str | None = None


def build_points(request: GridRequest) -> list[GridPoint]:
    """The points a request stands for, one per distinct model and sampling."""
    from passk_plugin.recipes import parse_grid

    r = request
    points: list[GridPoint] = []
    late = r.late
    if r.recipes:
        if r.early or r.alphas is not None:
            raise UsageError("--recipes already holds the grid: drop --early/--alphas")
        points += manifest_points(r.recipes)
        if late is None and r.temperatures is not None:
            seconds = {p.checkpoints[-1] for p in points if len(p.checkpoints) == 2}
            if len(seconds) != 1:
                raise UsageError("--temperatures needs --late: the recipes name no single one")
            late = seconds.pop()
    elif r.early or r.alphas is not None:
        if not (r.early and late):
            raise UsageError("a merge grid needs both --early and --late")
        alphas = parse_grid(r.alphas if r.alphas is not None else DEFAULT_ALPHAS)
        points += merge_grid(r.early, late, alphas, method=r.method)
    if r.temperatures is not None:
        if late is None:
            raise UsageError("--temperatures evaluates the late checkpoint: give --late")
        points += temperature_points(late, parse_grid(r.temperatures))
    if not points:
        raise UsageError(
            "nothing to run: give --early/--late (with --alphas), --recipes DIR, "
            "or --late with --temperatures"
        )
    return unique_points(points)

"""The grid a sweep is asked for, as data (`GridRequest`), and the points it stands for.

Building points checks the checkpoints (they exist; those merged together, and those of one
trajectory, are compatible; late steps come after the early one) but writes nothing and
loads no model.

The kinds of points a request may combine (each distinct model and sampling once):

- a trajectory (`checkpoints`): each checkpoint as it is, with its training step; a run
  directory stands for its ``checkpoint-<step>`` subdirectories, in step order;
- an early × late grid (`early`, `late`, `alphas`): the interpolation of the early checkpoint
  with each late one; α = 0 and α = 1 are the checkpoints themselves;
- decoding baselines of the last late checkpoint (else the trajectory's last):
  `temperatures` and `decoding` settings (top_p, min_p, typical_p, temperature).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from passk_plugin.errors import UsageError
from passk_plugin.grid import (
    GridPoint,
    Sampling,
    checkpoint_points,
    checkpoint_step,
    decoding_points,
    early_late_points,
    parse_decoding,
    temperature_settings,
    unique_points,
)

DEFAULT_ALPHAS = "0:1:0.25"


def merge_grid(
    early: str | Path,
    late: str | Path,
    values: Sequence[float],
    method: str = "wise-ft",
    *,
    check: bool = True,
) -> list[GridPoint]:
    """Interpolations of two checkpoints; `values` are α, t or η by method. The method and the
    values are always checked, the checkpoints' compatibility unless `check` is False."""
    from passk_plugin import recipes

    if method == "soup":
        raise UsageError(
            "soup has no interpolation grid: write it with `passk recipes` and pass --recipes DIR"
        )
    try:
        return recipes.build_grid(
            recipes.RecipeSpec(
                method=method,
                checkpoints=(str(early), str(late)),
                grid=tuple(values),
                check=check,
            )
        )
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None


def run_checkpoints(run_dir: Path) -> list[str]:
    """The ``checkpoint-<step>`` subdirectories of a training run's output, in step order."""
    found = []
    for child in run_dir.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and child.is_dir():
            step = checkpoint_step(child)
            found.append((step if step is not None else int(m.group(1)), str(child)))
    if not found:
        raise UsageError(
            f"{run_dir} holds no config.json and no checkpoint-<step> directories: give "
            "checkpoint directories, or the output directory of a training run that saved some"
        )
    return [path for _, path in sorted(found)]


def expand_checkpoints(refs: Sequence[str]) -> list[str]:
    """--checkpoints: resolved checkpoints, a run directory replaced by its checkpoints."""
    from passk_plugin.checkpoints import is_local, resolve_checkpoint

    out: list[str] = []
    for ref in refs:
        try:
            path = resolve_checkpoint(ref)
        except (FileNotFoundError, ValueError) as err:
            raise UsageError(str(err)) from None
        if is_local(path) and not (Path(path) / "config.json").is_file():
            out += run_checkpoints(Path(path))
        else:
            out.append(path)
    if len(set(out)) != len(out):
        raise UsageError("--checkpoints names a checkpoint twice")
    return out


def check_compatible(refs: Sequence[str], what: str) -> list[str]:
    """Resolved `refs`, refused in one line unless they share one architecture."""
    from passk_plugin.checkpoints import check_checkpoints

    try:
        return check_checkpoints(list(refs))
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(f"{what}: {err}") from None


def early_late_grid(
    early: str, lates: Sequence[str], values: Sequence[float], method: str = "wise-ft"
) -> list[GridPoint]:
    """The interpolation of `early` with each late checkpoint (checked), ends as checkpoints.

    Each late checkpoint must come after the early one where both steps are known.
    """
    refs = check_compatible([early, *lates], "--early and --late")
    early, lates = refs[0], refs[1:]
    check_order(early, lates)
    if lates:
        # The method's own checks on values, once; the checkpoints were compared above.
        merge_grid(early, lates[0], values, method=method, check=False)
    return early_late_points(early, lates, values, method=method)


def check_order(early: str, lates: Sequence[str]) -> None:
    """Each late checkpoint comes after the early one, where both steps are known."""
    first = checkpoint_step(early)
    for late in lates:
        step = checkpoint_step(late)
        if first is not None and step is not None and step <= first:
            raise UsageError(
                f"--late {late} (step {step}) is not after --early {early} (step {first}): "
                "give checkpoints saved later in the run"
            )


def decoding_grid(checkpoint: str, text: str) -> list[GridPoint]:
    """--decoding: one point of `checkpoint` per ``;``-separated setting (``,`` joins keys)."""
    from passk_plugin.checkpoints import resolve_checkpoint

    settings: list[Sampling] = [parse_decoding(part) for part in text.split(";") if part.strip()]
    if not settings:
        raise UsageError(f"--decoding {text!r} names no setting: e.g. top_p=0.8;min_p=0.05")
    try:
        return decoding_points(resolve_checkpoint(checkpoint), settings)
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

    checkpoints: tuple[str, ...] = ()
    early: str | None = None
    late: tuple[str, ...] = ()
    recipes: str | None = None
    alphas: str | None = None
    method: str = "wise-ft"
    temperatures: str | None = None
    decoding: str | None = None

    @field_validator("late", "checkpoints", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        if value is None:
            return ()
        return (value,) if isinstance(value, (str, Path)) else value


def build_points(request: GridRequest) -> list[GridPoint]:
    """The points a request stands for, one per distinct model and sampling."""
    from passk_plugin.recipes import parse_grid

    r = request
    points: list[GridPoint] = []
    trajectory: list[str] = []
    if r.checkpoints:
        trajectory = check_compatible(expand_checkpoints(r.checkpoints), "--checkpoints")
        points += checkpoint_points(trajectory)
    lates = list(r.late)
    if r.recipes:
        if r.early or r.alphas is not None:
            raise UsageError("--recipes already holds the grid: drop --early/--alphas")
        points += manifest_points(r.recipes)
        if not lates and (r.temperatures is not None or r.decoding) and not trajectory:
            seconds = {p.checkpoints[-1] for p in points if len(p.checkpoints) == 2}
            if len(seconds) != 1:
                raise UsageError("--temperatures needs --late: the recipes name no single one")
            lates = [seconds.pop()]
    elif r.early or r.alphas is not None:
        if not (r.early and lates):
            raise UsageError("a merge grid needs both --early and --late")
        alphas = parse_grid(r.alphas if r.alphas is not None else DEFAULT_ALPHAS)
        if len(lates) == 1 and not trajectory:
            check_order(r.early, lates)
            step = checkpoint_step(lates[0])
            grid = merge_grid(r.early, lates[0], alphas, method=r.method)
            points += [p.model_copy(update={"step": step}) for p in grid]
        else:
            points += early_late_grid(r.early, lates, alphas, method=r.method)
    baseline = lates[-1] if lates else (trajectory[-1] if trajectory else None)
    if r.temperatures is not None:
        if baseline is None:
            raise UsageError("--temperatures evaluates the late checkpoint: give --late")
        points += temperature_points(baseline, parse_grid(r.temperatures))
    if r.decoding is not None:
        if baseline is None:
            raise UsageError("--decoding evaluates the late checkpoint: give --late")
        points += decoding_grid(baseline, r.decoding)
    if not points:
        raise UsageError(
            "nothing to run: give --checkpoints, --early/--late (with --alphas), --recipes DIR, "
            "or --late with --temperatures or --decoding"
        )
    return unique_points(points)

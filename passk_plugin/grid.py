"""One grid point, typed: what a sweep evaluates, used alike by recipes, sweep and report.

A `GridPoint` is one model (a merge, or a checkpoint as it is) sampled under one set of
settings. Its kinds (`method`):

- ``wise-ft`` (early, late): θ = (1−α)·θ_early + α·θ_late, coordinate ``alpha``.
- ``slerp`` (early, late): spherical interpolation, coordinate ``t``.
- ``toward-base`` (base, ft): θ = (1−η)·θ_base + η·θ_ft, coordinate ``eta``.
- ``soup`` (c1, ..., cN): a weighted average, no coordinate.
- ``checkpoint`` (c,): a checkpoint evaluated as it is, with its training step where known.
- ``decoding`` (c,): a checkpoint sampled under other settings (`sampling`: temperature,
  top_p, min_p, typical_p on top of the run's).

Each coordinate has its own field, so a point never says "alpha" for SLERP's t. A merge
point produces its mergekit `MergeConfiguration` (`merge_config()`); no YAML is read back
inside a process. Two points that evaluate the same model under the same sampling share a
`model_key()`; `unique_points` keeps one of them (the no-merge form), so nothing is
evaluated twice: α = 1 of wise-ft(E, L) IS checkpoint L, α = 0 IS E.

Stored form (point.json, sweep.json, manifest.json): `to_stored(root)` writes checkpoint
paths inside `root` as "./relative" so a moved run directory still resolves them
(`from_stored(data, root)`); paths outside it stay absolute. `from_stored` also reads the
shape older passk versions wrote (method "temperature", `parameters`, `recipe`) and says so.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

if TYPE_CHECKING:
    from mergekit.config import MergeConfiguration

Method = Literal["wise-ft", "slerp", "toward-base", "soup", "checkpoint", "decoding"]
MERGE_METHODS: tuple[str, ...] = ("wise-ft", "slerp", "toward-base", "soup")
# The coordinate of each interpolation method, by field name, and its letter in point ids.
COORDINATE: dict[str, str] = {"wise-ft": "alpha", "slerp": "t", "toward-base": "eta"}
ID_LETTER: dict[str, str] = {"alpha": "a", "t": "t", "eta": "e"}
SAMPLING_KEYS: tuple[str, ...] = ("temperature", "top_p", "min_p", "typical_p")
# A relative path inside the run directory is stored with this prefix (hub ids never have it).
RELATIVE_PREFIX = "./"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._=-]+$")
_STEP_NAME = re.compile(r"(?:checkpoint|step|ckpt)[-_]?(\d+)$", re.I)


class Sampling(BaseModel):
    """The sampling overrides of a decoding point (None: the run's own setting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = None
    top_p: float | None = None
    min_p: float | None = None
    typical_p: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Sampling:
        values = self.gen_kwargs()
        if not values:
            raise ValueError("a decoding point needs at least one of " + ", ".join(SAMPLING_KEYS))
        for key, v in values.items():
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {v}")
            if key != "temperature" and v > 1:
                raise ValueError(f"{key} must be in [0, 1], got {v}")
        return self

    def gen_kwargs(self) -> dict[str, float]:
        """The overrides as lm_eval generation kwargs (only those set)."""
        return {k: v for k in SAMPLING_KEYS if (v := getattr(self, k)) is not None}

    def label(self) -> str:
        """A short, filesystem-safe label: "T0.7" for a temperature alone, else key=value_..."""
        kw = self.gen_kwargs()
        if list(kw) == ["temperature"]:
            return f"T{kw['temperature']:g}"
        return "_".join(f"{k}={v:g}" for k, v in kw.items())


class GridPoint(BaseModel):
    """One point of a sweep's grid. See the module docstring for the kinds.

    ``checkpoints``: in the method's order — (early, late) for wise-ft and slerp, (base, ft)
    for toward-base, the members of a soup, or the single checkpoint of a checkpoint or
    decoding point (absolute local paths or hub ids). ``weights``: linear weights, one per
    checkpoint (wise-ft, toward-base, soup). ``step``: the training step of the checkpoint
    (of the late / fine-tuned one for a merge) where known.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    method: Method
    checkpoints: tuple[str, ...]
    alpha: float | None = None
    t: float | None = None
    eta: float | None = None
    weights: tuple[float, ...] | None = None
    step: int | None = None
    sampling: Sampling | None = None
    dtype: str | None = None
    out_dtype: str | None = None

    @model_validator(mode="after")
    def _check(self) -> GridPoint:
        if not self.id or not _SAFE_ID.match(self.id) or self.id.startswith("."):
            raise ValueError(f"bad point id {self.id!r}: use a plain directory name")
        coordinate = COORDINATE.get(self.method)
        for name in ID_LETTER:
            value = getattr(self, name)
            if name != coordinate and value is not None:
                raise ValueError(f"point {self.id}: {self.method} has no coordinate {name}")
            if name == coordinate and (value is None or not math.isfinite(value)):
                raise ValueError(f"point {self.id}: {self.method} needs a finite {name}")
        if self.method in MERGE_METHODS:
            if len(self.checkpoints) < 2:
                raise ValueError(f"point {self.id}: {self.method} merges at least 2 checkpoints")
            if self.method != "slerp" and (
                self.weights is None or len(self.weights) != len(self.checkpoints)
            ):
                raise ValueError(f"point {self.id}: linear merges need one weight per checkpoint")
        elif len(self.checkpoints) != 1:
            raise ValueError(f"point {self.id}: {self.method} evaluates exactly one checkpoint")
        if (self.method == "decoding") != (self.sampling is not None):
            raise ValueError(f"point {self.id}: sampling overrides belong to decoding points")
        return self

    # -- what the point is ---------------------------------------------------------------
    @property
    def needs_merge(self) -> bool:
        return self.method in MERGE_METHODS

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint evaluated as is (checkpoint and decoding points), else None."""
        return None if self.needs_merge else self.checkpoints[0]

    @property
    def base_model(self) -> str:
        """The architecture, config and tokenizer donor: the first checkpoint."""
        return self.checkpoints[0]

    @property
    def coordinate(self) -> tuple[str, float] | None:
        """(name, value) of the interpolation coordinate, e.g. ("alpha", 0.25)."""
        name = COORDINATE.get(self.method)
        return (name, float(getattr(self, name))) if name else None

    def gen_kwargs(self) -> dict[str, float]:
        """This point's sampling overrides (empty unless a decoding point)."""
        return self.sampling.gen_kwargs() if self.sampling else {}

    def model_key(self) -> tuple:
        """Identity of what is evaluated: equal keys mean the same model, sampled alike.

        A pairwise interpolation at an end (weights (1, 0) or (0, 1), slerp t = 0 or 1) is
        the checkpoint at that end.
        """
        sampling = tuple(sorted(self.gen_kwargs().items()))
        if not self.needs_merge:
            return ("model", self.checkpoints[0], sampling)
        if len(self.checkpoints) == 2:
            ends = {0.0: self.checkpoints[0], 1.0: self.checkpoints[1]}
            if self.method == "slerp" and self.t in ends:
                return ("model", ends[self.t], sampling)
            if self.weights is not None and sorted(self.weights) == [0.0, 1.0]:
                return ("model", self.checkpoints[self.weights.index(1.0)], sampling)
        pairs = tuple(zip(self.checkpoints, self.weights or (), strict=False))
        return (self.method, self.checkpoints, pairs, self.t, self.dtype, self.out_dtype, sampling)

    # -- mergekit ------------------------------------------------------------------------
    def to_mergekit(self) -> dict[str, Any]:
        """The mergekit configuration as a plain dict (what a recipe YAML file holds)."""
        if not self.needs_merge:
            raise ValueError(f"point {self.id} is not a merge")
        config: dict[str, Any] = {"merge_method": "slerp" if self.method == "slerp" else "linear"}
        config["base_model"] = self.base_model
        if self.method == "slerp":
            config["parameters"] = {"t": float(self.t)}  # type: ignore[arg-type]
            config["models"] = [{"model": m} for m in self.checkpoints]
        else:
            # normalize: false must sit under parameters; at top level mergekit ignores it.
            config["parameters"] = {"normalize": False}
            config["models"] = [
                {"model": m, "parameters": {"weight": float(w)}}
                for m, w in zip(self.checkpoints, self.weights or (), strict=True)
            ]
        if self.dtype:
            config["dtype"] = self.dtype
        if self.out_dtype:
            config["out_dtype"] = self.out_dtype
        return config

    def merge_config(self) -> MergeConfiguration:
        """The validated mergekit `MergeConfiguration` this merge point produces."""
        from passk_plugin.merge import load_recipe

        return load_recipe(self.to_mergekit())

    def describe(self) -> str:
        """One line saying what the point computes."""
        if self.method == "slerp":
            a, b = self.checkpoints
            return f"passk {self.id}: slerp from {a} (t=0) to {b} (t=1), t={self.t:g}"
        if self.needs_merge:
            terms = " + ".join(
                f"{w:g}*{m}" for m, w in zip(self.checkpoints, self.weights or (), strict=True)
            )
            return f"passk {self.id}: {terms}"
        if self.sampling is not None:
            return f"passk {self.id}: {self.checkpoints[0]} sampled with {self.sampling.label()}"
        return f"passk {self.id}: {self.checkpoints[0]} as it is"

    def to_yaml(self) -> str:
        """A recipe file's text: a comment saying what it computes, then the config."""
        import yaml

        return f"# {self.describe()}\n" + yaml.safe_dump(self.to_mergekit(), sort_keys=False)

    # -- stored form ---------------------------------------------------------------------
    def to_stored(self, root: str | Path | None = None) -> dict[str, Any]:
        """JSON-ready dict; checkpoint paths inside `root` are written "./relative"."""
        data = self.model_dump(mode="json", exclude_none=True)
        if root is not None:
            data["checkpoints"] = [_relative(c, Path(root)) for c in self.checkpoints]
        return data

    @classmethod
    def from_stored(cls, data: Mapping[str, Any], root: str | Path | None = None) -> GridPoint:
        """Read a stored point (this version's shape or an older one), paths resolved."""
        if _is_legacy(data):
            data = migrate_legacy(data)
        data = dict(data)
        if root is not None:
            data["checkpoints"] = [_absolute(c, Path(root)) for c in data["checkpoints"]]
        return cls.model_validate(data)


# -- paths ---------------------------------------------------------------------------------


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return RELATIVE_PREFIX + p.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path  # outside the run directory: stays absolute


def _absolute(path: str, root: Path) -> str:
    if path.startswith(RELATIVE_PREFIX):
        return str(root.resolve() / path[len(RELATIVE_PREFIX) :])
    return path


# -- older stored shapes -------------------------------------------------------------------


def _is_legacy(data: Mapping[str, Any]) -> bool:
    return any(k in data for k in ("parameters", "recipe", "temperature")) or (
        data.get("method") == "temperature"
    )


def migrate_legacy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A point as passk ≤ 0.1 stored it (PointSpec) -> this version's GridPoint fields.

    Old merge points carried their recipe's path and a manifest entry in `parameters`; old
    temperature points a `checkpoint` and a `temperature`.
    """
    warnings.warn(
        f"point {data.get('id')!r} is stored in an older shape; reading it as a "
        f"{'decoding' if data.get('method') == 'temperature' else str(data.get('method'))} "
        "point (the files are not changed)",
        stacklevel=3,
    )
    if data.get("method") == "temperature" or data.get("checkpoint") is not None:
        out: dict[str, Any] = {"id": data["id"], "checkpoints": [data["checkpoint"]]}
        if data.get("temperature") is not None:
            out.update(method="decoding", sampling={"temperature": data["temperature"]})
        else:
            out["method"] = "checkpoint"
        return out
    # `parameters` holds the point's passk-recipes/1 manifest entry; its own id and method win.
    entry = data.get("parameters") or {}
    method = data["method"]
    out = v1_entry_fields({**entry, "id": data["id"], "method": method})
    coordinate = COORDINATE.get(method)
    if coordinate and coordinate not in (entry.get("parameters") or {}):
        out[coordinate] = data.get("alpha")
    if not out["checkpoints"] and data.get("recipe") and Path(data["recipe"]).is_file():
        out.update(_from_recipe_file(Path(data["recipe"]), method))
    if not out["checkpoints"]:
        raise ValueError(
            f"point {data.get('id')!r} is stored in an older shape that names no checkpoints "
            f"and its recipe {data.get('recipe')} is gone: rerun the sweep into a new --out"
        )
    return {k: v for k, v in out.items() if v is not None}


def v1_entry_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A passk-recipes/1 manifest entry -> GridPoint fields (None values left out).

    That entry kept the coordinate under `parameters` ({"alpha": 0.5}) and extra keys
    (file, base_model) a GridPoint does not have.
    """
    method = entry["method"]
    out: dict[str, Any] = {
        "id": entry["id"],
        "method": method,
        "checkpoints": list(entry.get("checkpoints") or ()),
        "weights": entry.get("weights"),
        "dtype": entry.get("dtype"),
        "out_dtype": entry.get("out_dtype"),
    }
    coordinate = COORDINATE.get(method)
    if coordinate:
        out[coordinate] = (entry.get("parameters") or {}).get(coordinate)
    return {k: v for k, v in out.items() if v is not None}


def _from_recipe_file(path: Path, method: str) -> dict[str, Any]:
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    models = raw.get("models") or []
    out: dict[str, Any] = {"checkpoints": [m["model"] for m in models]}
    if method != "slerp":
        out["weights"] = [m.get("parameters", {}).get("weight") for m in models]
    return out


# -- building grids (pure: no files written, no models loaded) ------------------------------


def checkpoint_step(path: str | Path) -> int | None:
    """A checkpoint's training step: from trainer_state.json, else its name (checkpoint-500)."""
    p = Path(path)
    state = p / "trainer_state.json"
    if state.is_file():
        import json

        try:
            step = json.loads(state.read_text(encoding="utf-8")).get("global_step")
        except ValueError:
            step = None
        if isinstance(step, int):
            return step
    m = _STEP_NAME.search(p.name)
    return int(m.group(1)) if m else None


def checkpoint_point_id(path: str | Path) -> str:
    """The id of a checkpoint evaluated as is: "ckpt_<directory name>"."""
    name = re.sub(r"[^A-Za-z0-9._=-]+", "_", Path(str(path).rstrip("/")).name) or "model"
    return f"ckpt_{name}"


def coordinate_point_id(method: str, value: float) -> str:
    """A stable id such as ``wise-ft_a0.250`` (three decimals; [0, 10) sorts by value)."""
    value = 0.0 if value == 0 else value
    return f"{method}_{ID_LETTER[COORDINATE[method]]}{value:.3f}"


def checkpoint_points(checkpoints: Iterable[str | Path]) -> list[GridPoint]:
    """A trajectory: each checkpoint evaluated as it is, with its step where known."""
    return [
        GridPoint(
            id=checkpoint_point_id(c),
            method="checkpoint",
            checkpoints=(str(c),),
            step=checkpoint_step(c),
        )
        for c in checkpoints
    ]


def decoding_points(
    checkpoint: str | Path, settings: Sequence[Sampling], prefix: str = "late"
) -> list[GridPoint]:
    """One checkpoint under several sampling settings; ids "<prefix>-<label>"."""
    return [
        GridPoint(
            id=f"{prefix}-{s.label()}",
            method="decoding",
            checkpoints=(str(checkpoint),),
            step=checkpoint_step(checkpoint),
            sampling=s,
        )
        for s in settings
    ]


def temperature_settings(temperatures: Iterable[float]) -> list[Sampling]:
    return [Sampling(temperature=float(t)) for t in temperatures]


def parse_decoding(text: str) -> Sampling:
    """One decoding setting from "top_p=0.8;min_p=0.05" (keys: temperature, top_p, ...)."""
    from passk_plugin.errors import UsageError

    values: dict[str, float] = {}
    for part in text.replace(",", ";").split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in SAMPLING_KEYS:
            raise UsageError(
                f"decoding setting {part.strip()!r}: use key=value with key one of "
                + ", ".join(SAMPLING_KEYS)
            )
        try:
            values[key] = float(value)
        except ValueError:
            raise UsageError(f"decoding setting {part.strip()!r}: {value!r} is no number") from None
    if not values:
        raise UsageError(f"empty decoding setting {text!r}: e.g. top_p=0.8;min_p=0.05")
    try:
        return Sampling(**values)
    except ValidationError as err:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
        raise UsageError(f"decoding setting {text!r}: {problems}") from None


def interpolation_points(
    method: str,
    first: str,
    second: str,
    values: Sequence[float],
    *,
    dtype: str | None = None,
    out_dtype: str | None = None,
    id_prefix: str = "",
    step: int | None = None,
) -> list[GridPoint]:
    """Pairwise interpolations of resolved checkpoints (no checks: see recipes for those).

    `id_prefix` distinguishes grids of one early checkpoint with several late ones.
    """
    coordinate = COORDINATE[method]
    out = []
    for v in values:
        v = 0.0 if v == 0 else float(v)
        fields: dict[str, Any] = {coordinate: v}
        if method != "slerp":
            # Rounded so 1 − 0.7 is written as 0.3, not 0.30000000000000004.
            fields["weights"] = (round(1.0 - v, 12), round(v, 12))
        out.append(
            GridPoint(
                id=id_prefix + coordinate_point_id(method, v),
                method=method,  # type: ignore[arg-type]
                checkpoints=(first, second),
                step=step,
                dtype=dtype,
                out_dtype=out_dtype,
                **fields,
            )
        )
    return out


def early_late_points(
    early: str, lates: Sequence[str], alphas: Sequence[float], method: str = "wise-ft"
) -> list[GridPoint]:
    """Interpolations of one early checkpoint with each later one, ends as checkpoints.

    α = 0 is the early checkpoint and α = 1 each late one: those are checkpoint points
    (shared with a trajectory over the same checkpoints), so nothing is evaluated twice.
    """
    points: list[GridPoint] = []
    for late in lates:
        prefix = f"{checkpoint_point_id(late)}_" if len(lates) > 1 else ""
        grid = interpolation_points(
            method, early, late, alphas, id_prefix=prefix, step=checkpoint_step(late)
        )
        points += [p if p.model_key()[0] != "model" else _as_checkpoint(p) for p in grid]
    return unique_points(points)


def _as_checkpoint(point: GridPoint) -> GridPoint:
    path = point.model_key()[1]
    return checkpoint_points([path])[0]


def unique_points(points: Iterable[GridPoint]) -> list[GridPoint]:
    """One point per distinct (model, sampling), in first-seen order.

    When a merge and a checkpoint point evaluate the same model, the checkpoint point is
    kept. Raises ValueError when two different models would share an id.
    """
    from passk_plugin.errors import UsageError

    by_key: dict[tuple, GridPoint] = {}
    for p in points:
        key = p.model_key()
        kept = by_key.get(key)
        if kept is None or (kept.needs_merge and not p.needs_merge):
            by_key[key] = p
    out = list(by_key.values())
    ids: dict[str, GridPoint] = {}
    for p in out:
        if p.id in ids:
            raise UsageError(
                f"two different points would share the id {p.id!r} "
                f"({ids[p.id].describe()}; {p.describe()}): rename a checkpoint directory"
            )
        ids[p.id] = p
    return out

"""What each stored point is to a reader: its role in the sweep, its short name, its colour.

One place decides these so every table, plot and sentence of a report names and colours a
point the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from passk_plugin.report.collect import PointRecord

# The no-merge baseline: a checkpoint sampled under other settings (the grid's "decoding"
# points; results stored by older versions say "temperature").
BASELINE = "decoding"
_DECODING = (BASELINE, "temperature")
_NOT_MERGES = (None, "checkpoint", *_DECODING)
# Stored coordinates closer than this to 0 or 1 are the ends of a merge line.
_ALPHA_TOLERANCE = 1e-9


def is_decoding_point(r: PointRecord) -> bool:
    return r.method in _DECODING


def _sampling(r: PointRecord) -> dict[str, float]:
    sampling = r.point.sampling if r.point is not None else None
    return sampling.gen_kwargs() if sampling is not None else {}


def is_temperature_point(r: PointRecord) -> bool:
    """A decoding point that changes the temperature alone (a point on the temperature curve)."""
    if not is_decoding_point(r) or r.temperature is None:
        return False
    return r.point is None or list(_sampling(r)) in ([], ["temperature"])


def is_alpha_point(r: PointRecord) -> bool:
    """A merge with an interpolation coordinate (α, SLERP's t, toward-base's η)."""
    return r.method not in _NOT_MERGES and r.alpha is not None


def alpha_groups(records: Sequence[PointRecord], task: str | None = None) -> dict[str, list]:
    """Merge points with an α, grouped by method and sorted by α."""
    groups: dict[str, list[PointRecord]] = {}
    for r in records:
        if is_alpha_point(r) and (task is None or task in r.tasks):
            groups.setdefault(str(r.method), []).append(r)
    # WiSE-FT first: the method the sweep is about takes the first colour map and marker.
    order = sorted(groups, key=lambda m: (m != "wise-ft", m))
    return {m: sorted(groups[m], key=lambda r: r.alpha) for m in order}


def temperature_points(records: Sequence[PointRecord], task: str | None = None) -> list:
    pts = [r for r in records if is_temperature_point(r) and (task is None or task in r.tasks)]
    return sorted(pts, key=lambda r: r.temperature)


def decoding_points(records: Sequence[PointRecord], task: str | None = None) -> list:
    """Every decoding point (temperature or other sampling settings), temperature ones first."""
    pts = [r for r in records if is_decoding_point(r) and (task is None or task in r.tasks)]
    return sorted(pts, key=lambda r: (not is_temperature_point(r), r.temperature or 0.0, r.id))


def other_points(records: Sequence[PointRecord], task: str | None = None) -> list:
    return [
        r
        for r in records
        if (task is None or task in r.tasks)
        and not is_temperature_point(r)
        and not is_alpha_point(r)
    ]


def temperature_curve(records: Sequence[PointRecord], task: str) -> list[PointRecord]:
    """The late checkpoint across temperature: its temperature points and its own point at the
    sweep temperature (α = 1), ordered by temperature; empty without temperature points."""
    temps = temperature_points(records, task)
    if not temps:
        return []
    late = late_point([r for r in records if task in r.tasks])
    curve = temps + ([late] if late is not None and late.temperature is not None else [])
    return sorted(curve, key=lambda r: r.temperature)


def _end_point(records: Sequence[PointRecord], end: int) -> PointRecord | None:
    """The merge at α = `end` (WiSE-FT's first: its recipe is an exact copy of that end), else
    the checkpoint point of that end (see _checkpoint_point)."""
    ends = [
        r
        for r in records
        if is_alpha_point(r) and math.isclose(r.alpha, float(end), abs_tol=_ALPHA_TOLERANCE)
    ]
    if ends:
        return min(ends, key=lambda r: (r.method != "wise-ft", r.method or "", r.id))
    return _checkpoint_point(records, end)


def _checkpoint_point(records: Sequence[PointRecord], end: int) -> PointRecord | None:
    """Where α = 0 and 1 are stored as the checkpoints themselves (trajectories, early × late
    grids): the checkpoint point at that end of the pairwise merges (the latest late one), else,
    for the late end, the checkpoint the decoding points sample."""
    merges = [r for r in records if is_alpha_point(r) and r.point and len(r.point.checkpoints) == 2]
    merges.sort(key=lambda r: -1 if r.point.step is None else r.point.step)  # type: ignore[union-attr]
    ends = [r.point.checkpoints[end] for r in reversed(merges)]  # type: ignore[union-attr]
    if end == 1:  # decoding points sample the late checkpoint
        ends += [r.point.checkpoints[0] for r in records if is_decoding_point(r) and r.point]
    plain = {r.point.checkpoints[0]: r for r in records if r.method == "checkpoint" and r.point}
    return next((plain[e] for e in ends if e in plain), None)


def late_point(records: Sequence[PointRecord]) -> PointRecord | None:
    """The late checkpoint at the sweep's own temperature: the merge at α = 1, or the late
    checkpoint evaluated as it is. The headline, the tables, the plots and the paired
    comparisons all take this one."""
    return _end_point(records, 1)


def early_point(records: Sequence[PointRecord]) -> PointRecord | None:
    """The early checkpoint: the merge at α = 0, or that checkpoint evaluated as it is."""
    return _end_point(records, 0)


# The interpolation coordinate's symbol by its name in the grid point (SLERP's is t).
_SYMBOL = {"alpha": "α", "t": "t", "eta": "η"}


def coordinate_symbol(r: PointRecord) -> str:
    coordinate = r.point.coordinate if r.point is not None else None
    return _SYMBOL.get(coordinate[0], "α") if coordinate else "α"


def short_label(r: PointRecord, records: Sequence[PointRecord] = ()) -> str:
    """ "α=0.5" (or "slerp α=0.5" when the sweep has several merge methods), "T=1 (late)"."""
    if is_temperature_point(r):
        return f"T={r.temperature:g} (late)"
    if is_alpha_point(r):
        several = len(alpha_groups(records)) > 1
        name = f"{coordinate_symbol(r)}={r.alpha:g}"
        name = f"{r.method} {name}" if several else name
        # α = 1 holds the late checkpoint's weights, α = 0 the early one's.
        role = {1.0: " (late)", 0.0: " (early)"}.get(float(r.alpha), "")
        return name + role
    return r.label


def reading_order(records: Sequence[PointRecord]) -> list[PointRecord]:
    """Merge points by method (WiSE-FT first) and α, then the temperature points, then the
    rest: the order of every table and legend."""
    ordered = [r for g in alpha_groups(records).values() for r in g]
    ordered += temperature_points(records)
    ordered += other_points(records)
    return ordered


# Colour maps per merge method, in alpha_groups' order.
_METHOD_MAPS = ("viridis", "cividis", "cool", "summer")


def point_colours(records: Sequence[PointRecord]) -> dict[str, str]:
    """A fixed colour per point id (hex), the same in every plot and table of a report.

    Merge points shade by α along one colour map per method; temperature points shade from
    light to dark red as temperature rises; anything else takes the tab10 cycle in order.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    out: dict[str, str] = {}
    for i, (_, group) in enumerate(alpha_groups(records).items()):
        cmap = colormaps[_METHOD_MAPS[i % len(_METHOD_MAPS)]]
        lo, hi = min(r.alpha for r in group), max(r.alpha for r in group)
        for r in group:
            t = 0.5 if hi == lo else (r.alpha - lo) / (hi - lo)
            out[r.id] = to_hex(cmap(0.9 * t))
    temps = temperature_points(records)
    if temps:
        lo, hi = temps[0].temperature, temps[-1].temperature
        for r in temps:
            t = 0.5 if hi == lo else (r.temperature - lo) / (hi - lo)
            out[r.id] = to_hex(colormaps["OrRd"](0.45 + 0.5 * t))
    for i, r in enumerate(other_points(records)):
        out[r.id] = to_hex(colormaps["tab10"](i % 10))
    return out


def kmax(records: Sequence[PointRecord], task: str) -> int | None:
    """The largest k every point evaluated `task` at (the k of "Pass@k_max")."""
    common: set[int] | None = None
    for r in records:
        if task in r.tasks and r.tasks[task].ks:
            ks = set(r.tasks[task].ks)
            common = ks if common is None else common & ks
    return max(common) if common else None


_METHOD_MARKERS = ("o", "D", "v", "P")


def point_markers(records: Sequence[PointRecord]) -> dict[str, str]:
    """A marker per point id: one shape per merge method, squares for temperature points,
    triangles for anything else, so methods stay apart where their colours are close."""
    out = {r.id: "^" for r in other_points(records)}
    for i, (_, group) in enumerate(alpha_groups(records).items()):
        out.update({r.id: _METHOD_MARKERS[i % len(_METHOD_MARKERS)] for r in group})
    out.update({r.id: "s" for r in temperature_points(records)})
    return out

"""A rerun against the stored sweep.json: same settings, same points, or refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from passk_plugin.errors import UsageError
from passk_plugin.grid import GridPoint
from passk_plugin.sweep.settings import SWEEP_FORMAT, EvalSettings
from passk_plugin.sweep_store import RunStore


def _diff(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(now))
    return [
        f"{k}: {stored.get(k)!r} (stored) vs {now.get(k)!r} (now)"
        for k in keys
        if stored.get(k) != now.get(k)
    ]


def _identity(point: GridPoint) -> dict[str, Any]:
    """What must agree between a stored point and the same id asked for again.

    The model evaluated and its sampling, not how the point was described (a step read
    from trainer_state.json, or an older stored shape, does not count).
    """
    return {"method": point.method, "coordinate": point.coordinate, "model": point.model_key()}


def stored_points(store: RunStore) -> dict[str, GridPoint]:
    """The points sweep.json lists, paths resolved against the run directory."""
    stored = store.read_settings() or {}
    return {
        pid: GridPoint.from_stored(data, store.root)
        for pid, data in stored.get("points", {}).items()
    }


def reconcile_settings(
    store: RunStore, settings: EvalSettings, points: Sequence[GridPoint], force: bool
) -> list[GridPoint]:
    """Check a rerun against sweep.json; record the settings and the (possibly grown) grid.

    New points may be added to a run; changed settings, or a point id whose model changed,
    would mix incomparable results and are refused unless `force` discards stored points.
    Returns every point of the run (stored ones first). Paths inside the run directory are
    stored relative to it, so a moved or copied run directory still resumes.
    """
    stored = store.read_settings()
    now = settings.model_dump(mode="json")
    old_points = stored_points(store) if stored else {}
    if stored is not None:
        problems = _diff(stored.get("settings", {}), now)
        for p in points:
            old = old_points.get(p.id)
            if old is not None and _identity(old) != _identity(p):
                problems.append(f"point {p.id}: {_diff(_identity(old), _identity(p))}")
        if problems and not force:
            n_done = len(store.done_ids())
            raise UsageError(
                f"{store.root} holds a sweep with other settings ({'; '.join(problems)}). "
                f"Its {n_done} finished points would not be comparable: rerun with the stored "
                "settings, choose a new --out directory, or pass --force to discard the "
                "stored points and start over"
            )
        if problems:
            store.discard_points()
            stored, old_points = None, {}
    merged = dict(old_points)
    merged.update({p.id: p for p in points})
    now_iso = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write_settings(
        {
            "format": SWEEP_FORMAT,
            "created": stored.get("created", now_iso) if stored else now_iso,
            "updated": now_iso,
            "settings": now,
            "points": {pid: p.to_stored(store.root) for pid, p in merged.items()},
        }
    )
    return list(merged.values())

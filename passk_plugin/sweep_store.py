"""A sweep's run directory: where each artifact lives and how it is written safely.

Layout of RUN_DIR::

    sweep.json                 settings that decide the results, and every point asked for
    recipes/                   mergekit recipes + manifest.json (when the sweep wrote them)
    merged/<point>/            merged weights, removed after evaluation unless --keep-merged
    points/<point>/            one finished grid point (present only once complete):
        point.json             the point's spec (method, alpha, temperature, model)
        results.json           lm_eval's results, as `lm_eval --output_path` writes them
        samples_<task>.jsonl   lm_eval's logged samples, one line per problem
        DONE.json              completion marker (written last, before the rename)
    points/.tmp-<point>-*/     a point being written; left behind only by a crash
    report/                    leaderboard tables and plots, rebuilt from points/ alone

A point is written into a temporary directory beside its final place and renamed into
place in one step, so a point directory either holds everything or does not exist.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from passk_plugin.atomic import atomic_write_text
from passk_plugin.errors import read_json_file

SETTINGS_FILE = "sweep.json"
POINTS_DIR = "points"
MERGED_DIR = "merged"
RECIPES_DIR = "recipes"
REPORT_DIR = "report"
POINT_SPEC_FILE = "point.json"
RESULTS_FILE = "results.json"
DONE_FILE = "DONE.json"
TMP_PREFIX = ".tmp-"


def _json_default(obj: Any) -> Any:
    # Same fallbacks as lm_eval's own writer, so stored results read back alike.
    from lm_eval.utils import handle_non_serializable

    return handle_non_serializable(obj)


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj))


def read_json(path: str | Path) -> Any:
    """A stored JSON file; DataError naming the file and line when it is corrupt."""
    return read_json_file(path, what="stored result")


def sample_record(sample: Mapping[str, Any]) -> dict[str, Any]:
    """One logged sample shaped exactly as `lm_eval --log_samples` writes it to jsonl."""
    from lm_eval.utils import sanitize_list

    out = dict(sample)
    arguments: dict[str, dict[str, Any]] = {}
    for i, arg in enumerate(sample.get("arguments", [])):
        arguments[f"gen_args_{i}"] = {f"arg_{j}": part for j, part in enumerate(arg)}
    out["arguments"] = arguments
    out["resps"] = sanitize_list(sample.get("resps", []))
    out["filtered_resps"] = sanitize_list(sample.get("filtered_resps", []))
    out["target"] = str(sample.get("target"))
    return out


def samples_jsonl(samples: Iterable[Mapping[str, Any]]) -> str:
    return "".join(
        json.dumps(sample_record(s), ensure_ascii=False, default=_json_default) + "\n"
        for s in samples
    )


def samples_file_name(task: str) -> str:
    return f"samples_{task}.jsonl"


class RunStore:
    """Paths and atomic writes for one run directory. Holds no state beyond the root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    # -- paths -------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def points_root(self) -> Path:
        return self.root / POINTS_DIR

    @property
    def recipes_dir(self) -> Path:
        return self.root / RECIPES_DIR

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT_DIR

    def point_dir(self, point_id: str) -> Path:
        return self.points_root / point_id

    def merged_dir(self, point_id: str) -> Path:
        return self.root / MERGED_DIR / point_id

    # -- state -------------------------------------------------------------------------
    def is_done(self, point_id: str) -> bool:
        return (self.point_dir(point_id) / DONE_FILE).is_file()

    def done_ids(self) -> list[str]:
        if not self.points_root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.points_root.iterdir()
            if p.is_dir() and not p.name.startswith(TMP_PREFIX) and (p / DONE_FILE).is_file()
        )

    def read_settings(self) -> dict[str, Any] | None:
        if not self.settings_path.is_file():
            return None
        return read_json_file(
            self.settings_path,
            what="sweep settings file",
            fix="restore it, or pass --force to start the sweep afresh",
        )

    def write_settings(self, settings: Mapping[str, Any]) -> None:
        atomic_write_json(self.settings_path, dict(settings))

    def clean_partial(self) -> list[Path]:
        """Remove half-written points (a crash mid-write) so they are redone from scratch.

        Call only when no worker is writing into this run directory.
        """
        removed: list[Path] = []
        if self.points_root.is_dir():
            for p in self.points_root.iterdir():
                if p.name.startswith(TMP_PREFIX) or (p.is_dir() and not (p / DONE_FILE).exists()):
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p)
        merged = self.root / MERGED_DIR
        if merged.is_dir():
            # A merge killed mid-write leaves <point>.tmp-<pid> (passk_plugin.merge's naming).
            for p in merged.glob("*.tmp-*"):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    def remove_merged(self, point_id: str) -> None:
        """Delete a point's merged weights (and merged/ itself once empty)."""
        shutil.rmtree(self.merged_dir(point_id), ignore_errors=True)
        try:
            (self.root / MERGED_DIR).rmdir()
        except OSError:
            pass  # other merged models are still there

    def discard_points(self) -> None:
        """Remove every stored point and the report (used when settings are forced to change)."""
        for sub in (self.points_root, self.report_dir, self.root / MERGED_DIR):
            shutil.rmtree(sub, ignore_errors=True)

    # -- writing a point ---------------------------------------------------------------
    def write_point(
        self,
        point_id: str,
        files: Mapping[str, str | bytes],
        marker: Mapping[str, Any],
    ) -> Path:
        """Write a finished point atomically: files into a temp dir, DONE.json last, rename.

        Idempotent: when the point is already complete (another worker finished it
        first), the new copy is dropped and the stored one kept.
        """
        final = self.point_dir(point_id)
        self.points_root.mkdir(parents=True, exist_ok=True)
        tmp = self.points_root / f"{TMP_PREFIX}{point_id}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, content in files.items():
                if name == DONE_FILE or "/" in name or name.startswith("."):
                    raise ValueError(f"bad file name for a stored point: {name!r}")
                data = content.encode("utf-8") if isinstance(content, str) else content
                with open(tmp / name, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            with open(tmp / DONE_FILE, "w", encoding="utf-8") as fh:
                fh.write(dumps_json(dict(marker)))
                fh.flush()
                os.fsync(fh.fileno())
            if self.is_done(point_id):
                shutil.rmtree(tmp)
                return final
            if final.exists():  # an incomplete leftover from a crash
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

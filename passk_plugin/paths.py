"""Where passk's own files live."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def tasks_dir() -> Path:
    """The directory of passk's lm_eval task YAMLs (inside the package when installed)."""
    for candidate in (_PKG / "tasks", _PKG.parent / "tasks"):
        if any(candidate.glob("*.yaml")):
            return candidate
    raise FileNotFoundError(f"passk's task YAMLs were not found next to {_PKG}; reinstall passk")

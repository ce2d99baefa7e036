"""Temporary names that say whose they are, and removal of those a killed process left.

A temporary is named ``<name>.tmp-<host>-<pid>-<random>`` beside its target, so it never
collides with a live writer's (another host, process or thread) and a later run on the same
target can tell a dead writer's leftovers (same host, no such process) from a live one's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

TEMP_TAG = ".tmp-"
# Temporaries named by older passk versions carry no pid (mkstemp's random part); they are
# taken for stale once untouched this long.
LEGACY_TEMP_AGE_S = 3600.0

_HOST = re.sub(r"[^A-Za-z0-9.]+", "_", socket.gethostname()) or "host"


def temp_name(name: str) -> str:
    """A temporary sibling name for `name`: ``<name>.tmp-<host>-<pid>-<random>``."""
    return f"{name}{TEMP_TAG}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _is_stale(entry: Path, tail: str) -> bool:
    """Whether the temporary whose name ends in `tail` (after '.tmp-') belongs to no live run."""
    if tail.isdigit():  # <name>.tmp-<pid>: older passk versions, always this host's
        return not _pid_alive(int(tail))
    parts = tail.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit():
        host, pid, _ = parts
        # Another host's temporary (shared storage) cannot be checked from here: kept.
        return host == _HOST and not _pid_alive(int(pid))
    return False


def remove_stale_temps(target: str | os.PathLike[str], *, hidden: bool = False) -> list[Path]:
    """Remove temporaries of `target` left by processes that are gone; return them.

    Matches ``<name>.tmp-*`` beside `target` (``.<name>.tmp-*`` with `hidden`, the atomic
    writer's files), and with `hidden` also older passk's ``.<name>.<random>.tmp``
    files once they are an hour old.
    """
    target = Path(target)
    parent, name = target.parent, target.name
    prefix = f".{name}{TEMP_TAG}" if hidden else f"{name}{TEMP_TAG}"
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        stale = False
        if entry.name.startswith(prefix):
            stale = _is_stale(entry, entry.name[len(prefix) :])
        elif hidden and entry.name.startswith(f".{name}.") and entry.name.endswith(".tmp"):
            try:
                stale = now - entry.lstat().st_mtime > LEGACY_TEMP_AGE_S
            except OSError:
                stale = False
        if not stale:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed

"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from passk_plugin.temps import remove_stale_temps, temp_name


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` via a temporary file in the same directory and os.replace.

    The data is fsynced before the rename, so a crash right after cannot leave an empty file
    under the final name. The file gets the mode the umask gives (mkstemp's 0600 would hide
    results from the other users of shared storage), and temporaries that killed writers
    left for the same path are removed first.
    """
    path = Path(path)
    with _atomic_file(path, "wb") as fh:
        fh.write(data)
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:  # Linux reports it (os.umask can only be read by setting it, racing other threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_file_mode() -> int:
    """The mode a new file gets under the umask (0644 under umask 022)."""
    return 0o666 & ~current_umask()


def umask_dir_mode() -> int:
    """The mode a new directory gets under the umask (0755 under umask 022)."""
    return 0o777 & ~current_umask()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_text_writer(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A text file to write incrementally that appears under `path` only when the block
    ends without an error (fsynced, then renamed); on an error it is removed."""
    with _atomic_file(Path(path), "w") as fh:
        yield fh


@contextlib.contextmanager
def _atomic_file(path: Path, mode: str) -> Iterator[IO]:
    """The one temp-file-then-rename sequence behind both writers: stale temporaries of dead
    writers removed, a hidden temporary created with the umask's mode, fsynced, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path, hidden=True)
    tmp = path.parent / f".{temp_name(path.name)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""Output directories: passk never deletes or overwrites what it did not write.

The rule every command that writes a directory follows (:func:`claim_output_dir`):

- a path that does not exist yet, or an empty directory, is taken;
- a directory this command wrote before (its marker file ``.passk-output.json`` names the
  command, or the command's own test recognises it) is taken again;
- anything else is refused with a message naming the path: choose another, or pass
  ``--overwrite``, which writes into it, replacing only files of the same name and keeping
  every other file;
- a directory that is, or holds, one of the command's inputs (a recipe's checkpoints) is
  refused even with ``--overwrite``; so is a path that is an existing file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from passk_plugin.atomic import atomic_write_text
from passk_plugin.errors import UsageError

MARKER_FILE = ".passk-output.json"


# ---------------------------------------------------------------- claiming a directory


def _resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _holds(directory: Path, path: Path) -> bool:
    return path == directory or directory in path.parents


def read_marker(directory: str | os.PathLike[str]) -> dict | None:
    try:
        data = json.loads((Path(directory) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(directory: str | os.PathLike[str], command: str) -> None:
    atomic_write_text(
        Path(directory) / MARKER_FILE, json.dumps({"written_by": f"passk {command}"}) + "\n"
    )


def is_own(directory: str | os.PathLike[str], command: str) -> bool:
    marker = read_marker(directory)
    return marker is not None and marker.get("written_by") == f"passk {command}"


def _visible_entries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name != MARKER_FILE]


def claim_output_dir(
    path: str | os.PathLike[str],
    command: str,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    recognise: Callable[[Path], bool] | None = None,
    flag: str = "--out",
    create: bool = True,
) -> Path:
    """Check that `command` may write into `path` (see the module docstring); return it resolved.

    `inputs` are paths the command reads (checkpoints, recipes): a directory holding one is
    never written into. `recognise` says whether an existing directory is this command's
    own output from before markers existed (or by its own completion marker). With
    `create`, the directory is made and marked as this command's.
    """
    out = _resolved(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {path}: is a file, not a directory; choose a new path")
    for item in inputs:
        ref = Path(item).expanduser()
        if not ref.exists():
            continue  # hub ids and missing files cannot be inside OUT
        if _holds(out, ref.resolve()):
            raise UsageError(
                f"{flag} {path}: holds the input {item}; choose another directory "
                "(passk never writes into its inputs, not even with --overwrite)"
            )
    if out.is_dir():
        own = is_own(out, command) or (recognise is not None and recognise(out))
        if not own and not overwrite and _visible_entries(out):
            raise UsageError(
                f"{flag} {path}: is a directory passk {command} did not write and it is not "
                "empty; choose another, or pass --overwrite to write into it (files of the "
                "same name are replaced, nothing else is deleted)"
            )
    if create:
        out.mkdir(parents=True, exist_ok=True)
        if not is_own(out, command):
            write_marker(out, command)
    return out

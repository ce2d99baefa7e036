"""The errors passk raises for the user to act on, and how the CLI words every failure.

Raise :class:`UsageError` for bad input (arguments, recipes, samples files): the message
names the thing (file and line where there is one) and the fix, and the CLI prints it as is,
without a traceback, exiting 2. :class:`DataError` is stored data that cannot be read (a
corrupt results file): exit 1. :func:`describe` turns any exception, including OSError
(read-only or full disk, an existing file where a directory is wanted), into those one or
two lines.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

EXIT_FAILURE = 1
EXIT_USAGE = 2
DEBUG_ENV = "PASSK_DEBUG"


class PasskError(Exception):
    """A failure passk explains itself; str() is the whole message for the user."""

    exit_code = EXIT_FAILURE


class UsageError(PasskError, ValueError):
    """Bad input the user can fix (an argument, a recipe, a samples file)."""

    exit_code = EXIT_USAGE


class DataError(PasskError, ValueError):
    """A stored file passk wrote or reads back (results, manifest, settings) is unreadable."""


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


# ---------------------------------------------------------------- reading files


def decode_utf8(
    data: bytes,
    path: str | os.PathLike[str],
    first_line: int = 1,
    error: type[PasskError] = UsageError,
) -> str:
    """`data` as UTF-8 text; `error` (a UsageError) naming the file and line where it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = first_line + data.count(b"\n", 0, err.start)
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); "
            "save the file as UTF-8"
        ) from None


def read_text(path: str | os.PathLike[str], error: type[PasskError] = UsageError) -> str:
    """A UTF-8 text file's contents, with a file-and-line error for other encodings."""
    return decode_utf8(Path(path).read_bytes(), path, error=error)


def read_json_file(path: str | os.PathLike[str], *, what: str = "file", fix: str = "") -> Any:
    """A stored JSON file's contents; DataError naming the file and line when it is corrupt."""
    text = read_text(path, error=DataError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        hint = f"; {fix}" if fix else ""
        raise DataError(
            f"{path}:{err.lineno}: corrupt {what}, not valid JSON ({err.msg}){hint}"
        ) from None


# ---------------------------------------------------------------- wording any failure

_OS_HINTS = {
    errno.EROFS: "read-only file system; choose an output location on a writable disk",
    errno.ENOSPC: "no space left on the device; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EACCES: "permission denied; choose a location you may write to",
    errno.EPERM: "operation not permitted; choose a location you may write to",
    errno.EISDIR: "is a directory where a file was expected; give a file path",
    errno.ENOTDIR: "a path component is a file, not a directory; choose another path",
    errno.EEXIST: "already exists and is in the way (a file where a directory is needed?); "
    "choose another path",
    errno.ENAMETOOLONG: "file name too long; choose a shorter path",
}


def _os_message(err: OSError) -> tuple[str, int]:
    where = err.filename if err.filename is not None else ""
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    if isinstance(err, FileNotFoundError):
        # passk's own FileNotFoundErrors carry a full sentence; the system's carry a path.
        if err.errno is None and err.args:
            return str(err.args[0]), EXIT_USAGE
        return f"{where or 'a file'}: not found; check the path", EXIT_USAGE
    hint = _OS_HINTS.get(err.errno or -1)
    if hint is None:
        hint = err.strerror or str(err)
    if err.errno is None and err.args and not where:
        return str(err.args[0]), EXIT_FAILURE
    return (f"{where}: {hint}" if where else hint), EXIT_FAILURE


def _yaml_message(err: Exception) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = ""
    if mark is not None:
        named = mark.name and not str(mark.name).startswith("<")  # "<unicode string>"
        where = f"{mark.name}:{mark.line + 1}: " if named else f"line {mark.line + 1}: "
    return f"{where}not valid YAML ({problem}); fix the file"


def describe(err: BaseException) -> tuple[str, int]:
    """The one or two lines the CLI prints for `err`, and the exit code."""
    if isinstance(err, PasskError):
        return str(err), err.exit_code
    if isinstance(err, UnicodeDecodeError):
        return (
            f"not UTF-8 text ({err.reason} at byte {err.start}); save the input as UTF-8",
            EXIT_USAGE,
        )
    if isinstance(err, json.JSONDecodeError):
        return f"line {err.lineno}: not valid JSON ({err.msg})", EXIT_FAILURE
    if isinstance(err, OSError):
        return _os_message(err)
    try:
        import yaml

        if isinstance(err, yaml.YAMLError):
            return _yaml_message(err), EXIT_USAGE
    except ImportError:  # pragma: no cover - yaml is a dependency
        pass
    if isinstance(err, ValueError):
        return "\n".join(str(err).splitlines()[:2]), EXIT_USAGE
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    name = type(err).__name__
    return (
        f"{name}: {first}\n(an unexpected failure; rerun with --debug or "
        f"{DEBUG_ENV}=1 for the traceback)",
        EXIT_FAILURE,
    )

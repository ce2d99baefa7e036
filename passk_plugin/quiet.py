"""What a long run prints: each upstream warning once, no nested progress bars in a log.

A sweep calls lm_eval once per grid point, so lm_eval's per-run warnings ("generation_kwargs
... specified through cli", "Overwriting default num_fewshot") would repeat at every point,
and its progress bars (and transformers' "Loading weights") nest under the sweep's own bar,
which in a log file means cursor-movement escape codes and carriage returns at every update.

:func:`quiet_output` (the CLI wraps every command in it):

- logs warnings through one stderr handler that lets each distinct message through once,
  and prints Python warnings as one line each (``warning: <message>``, without the source
  file and line of the library that raised them);
- when stderr is not a terminal, switches off the progress bars of libraries that leave the
  choice to tqdm's or the hub's defaults (``TQDM_DISABLE``, ``HF_HUB_DISABLE_PROGRESS_BARS``),
  keeps every remaining bar on one line (``TQDM_POSITION=0``: no escape codes) and updates
  them at most once a minute (``TQDM_MININTERVAL``). tqdm reads these variables when it is
  first imported, which is why this happens before any command module loads; variables the
  user set are left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

# tqdm and huggingface_hub read these at import; only defaults the user did not set are added.
LOG_FILE_ENV = {
    "TQDM_DISABLE": "1",
    "TQDM_POSITION": "0",
    "TQDM_MININTERVAL": "60",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class OncePerMessage(logging.Filter):
    """Passes the first record of each (logger, level, message); drops the repeats."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key] == 1


class _PasskHandler(logging.StreamHandler):
    """passk's stderr handler (a class of its own so it is installed once)."""


def install_log_handler(stream: TextIO | None = None) -> logging.Handler | None:
    """Give the root logger passk's once-per-message stderr handler, unless it has handlers.

    Returns the handler installed (None when the root logger was already configured, e.g.
    by the user's own logging setup or a test runner).
    """
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = _PasskHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(OncePerMessage())
    root.addHandler(handler)
    return handler


@contextlib.contextmanager
def quiet_output(stream: TextIO | None = None) -> Iterator[None]:
    """Run a command with deduplicated warnings and, in a log, flat progress bars."""
    stream = stream or sys.stderr
    added: list[str] = []
    if not _is_terminal(stream):
        for key, value in LOG_FILE_ENV.items():
            if key not in os.environ:
                os.environ[key] = value
                added.append(key)
    handler = install_log_handler(stream)
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _one_line_warning(stream)
    try:
        yield
    finally:
        warnings.showwarning = previous_showwarning
        if handler is not None:
            logging.getLogger().removeHandler(handler)
        for key in added:
            os.environ.pop(key, None)


def _one_line_warning(stream: TextIO):
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        del category, filename, lineno, line  # where in a library it was raised: not for users
        try:
            (file or stream).write(f"warning: {message}\n")
        except (OSError, ValueError):
            pass  # a closed or broken stream must not turn a warning into a failure

    return show


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

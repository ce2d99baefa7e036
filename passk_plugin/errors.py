"""Errors passk raises for bad input: the CLI prints their one-line message, no traceback."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user (an argument, a file, a setting), found before any work.

    The message is one line naming the problem and the fix.
    """

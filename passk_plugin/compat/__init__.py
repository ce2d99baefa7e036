"""The one place where passk touches private APIs and internals of the libraries it builds on.

One module per library (``transformers``, ``lm_eval``, ``mergekit``, ``vllm``). Each checks,
when imported, that every internal it relies on is there, and otherwise raises
:class:`UnsupportedVersion` naming the library, the version found and the range passk
supports, instead of failing with an AttributeError deep inside a run. Code elsewhere in passk
uses these modules' functions and never reaches into those libraries' private names itself.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable

# The versions passk supports, as pyproject.toml declares them (a test keeps the two equal).
SUPPORTED = {
    "transformers": ">=4.56,<5.20",
    "lm_eval": ">=0.4.12,<0.5",
    "mergekit": ">=0.1.5,<0.2",
    "vllm": ">=0.18",
}


class UnsupportedVersion(ImportError):
    """An installed library lacks an internal passk relies on."""


def installed_version(*distributions: str) -> str:
    """The version of the first of ``distributions`` that is installed, or "not installed"."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def require(
    library: str,
    version: str,
    supported: str,
    checks: Iterable[tuple[str, Callable[[], object]]],
    *,
    distribution: str | None = None,
) -> None:
    """Run each ``(what, check)``; raise UnsupportedVersion naming those that fail.

    A check fails when it raises (a missing attribute or module) or returns a false value.
    ``distribution`` is the name to pip-install (default: ``library``).
    """
    missing = []
    for what, check in checks:
        try:
            ok = check()
        except Exception:  # any failure means the internal is not what passk expects
            ok = False
        if not ok:
            missing.append(what)
    if missing:
        raise UnsupportedVersion(
            f"passk supports {library} {supported}, found {library} {version}, which lacks "
            f"{', '.join(missing)}; install a supported version: pip install "
            f"'{distribution or library}{supported}'"
        )

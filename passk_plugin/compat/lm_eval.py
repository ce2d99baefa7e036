"""lm_eval internals used by ``passk eval``: its CLI, its task index, its TaskManager lookup.

``passk eval`` is lm_eval's ``run`` command with passk's tasks and options added, so it drives
lm_eval's own CLI class (``lm_eval._cli.HarnessCLI``) rather than re-implementing its options.
To skip indexing lm_eval's ~14,700 built-in tasks when only passk's are asked for (~10 s per
run), it reads task names with ``lm_eval.tasks._index.TaskIndex`` and swaps
``lm_eval.tasks.TaskManager`` for a subclass with ``include_defaults=False`` while the CLI runs:
lm_eval has no option for either.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lm_eval.tasks

from passk_plugin.compat import SUPPORTED as SUPPORTED_VERSIONS
from passk_plugin.compat import installed_version, require

SUPPORTED = SUPPORTED_VERSIONS["lm_eval"]


def _cli() -> Any:
    return importlib.import_module("lm_eval._cli")


def _index() -> Any:
    return importlib.import_module("lm_eval.tasks._index")


def check_supported() -> None:
    """Raise UnsupportedVersion unless the installed lm_eval has what passk uses."""
    require(
        "lm_eval",
        installed_version("lm-eval", "lm_eval"),
        SUPPORTED,
        [
            ("_cli.HarnessCLI.parse_args", lambda: _cli().HarnessCLI.parse_args),
            ("_cli.HarnessCLI.execute", lambda: _cli().HarnessCLI.execute),
            ("tasks._index.TaskIndex.build", lambda: _index().TaskIndex.build),
            (
                "TaskManager(include_defaults=...)",
                lambda: (
                    "include_defaults"
                    in inspect.signature(lm_eval.tasks.TaskManager.__init__).parameters
                ),
            ),
        ],
        distribution="lm-eval",
    )


check_supported()


def harness_cli() -> Any:
    """lm_eval's command-line interface (``parse_args()`` reads sys.argv, ``execute(args)``)."""
    return _cli().HarnessCLI()


def task_names(include_paths: Sequence[str | Path]) -> set[str]:
    """Names of the tasks, groups and tags defined under ``include_paths`` (YAML only)."""
    return set(_index().TaskIndex.build([Path(p) for p in include_paths]))


@contextlib.contextmanager
def builtin_tasks_skipped() -> Iterator[None]:
    """Within the block, TaskManagers that lm_eval's CLI builds skip the built-in tasks.

    If a later lm_eval stops looking the class up in ``lm_eval.tasks``, runs stay correct
    and only lose the saving.
    """
    original = lm_eval.tasks.TaskManager

    class LocalTaskManager(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["include_defaults"] = False
            super().__init__(*args, **kwargs)

    lm_eval.tasks.TaskManager = LocalTaskManager
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = original

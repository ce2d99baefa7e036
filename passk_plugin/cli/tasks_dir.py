"""`passk tasks-dir`: print the task directory, for `lm_eval --include_path`."""

from __future__ import annotations

import argparse

from passk_plugin.paths import tasks_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    print(tasks_dir())
    return 0

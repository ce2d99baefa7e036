"""`passk` command line: one module per subcommand, each with `add_arguments` and `run`.

The CLI only parses and calls; subcommand modules are imported lazily so `passk --help`
and `passk tasks-dir` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module under passk_plugin.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "offline WiSE-FT demo: train tiny checkpoints, sweep, report"),
    "eval": ("eval", "run lm_eval with passk's tasks and backends (accepts every lm_eval option)"),
    "tasks-dir": ("tasks_dir", "print the directory of passk's lm_eval task YAMLs"),
    "score": ("score", "grade generations made elsewhere and report Pass@k"),
    "recipes": ("recipes", "write mergekit recipes for an interpolation grid"),
    "merge": ("merge", "run mergekit on one recipe"),
    "sweep": ("sweep", "merge, evaluate and report a grid of interpolations (resumable)"),
    "report": ("report", "build leaderboard tables and plots from stored results"),
    "compare": ("compare", "paired comparison of two results: Δ, 95% CI and p per metric"),
}


def _load(name: str):
    module, _ = SUBCOMMANDS[name]
    return importlib.import_module(f"passk_plugin.cli.{module}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(prog="passk", description=__doc__.splitlines()[0])
    subs = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        subs.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        top.parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = _load(name)
    if hasattr(module, "main"):  # pass-through commands parse their own arguments
        return int(module.main(rest) or 0)
    parser = argparse.ArgumentParser(prog=f"passk {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # Bad input is the user's to fix: one clear line, no traceback.
        print(f"passk {name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

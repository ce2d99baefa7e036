"""The offline demo, end to end: train one fine-tuning run, sweep, report.

The sweep tells the paper's story in three parts, each model evaluated once:

- the trajectory: every saved checkpoint of the run as it is, with its step;
- WiSE-FT of the early checkpoint with the late one over α (α = 0 and 1 are the trajectory's
  own early and late points);
- the late checkpoint under other decoding settings: the temperature range, and a high
  temperature with min_p (see `DemoConfig`).

Everything happens under one output directory, on CPU, without the hub:

    OUT/checkpoints/run-<hash>/checkpoint-<step>  trained once, then cached (0 = base)
    OUT/checkpoints/run-<hash>/data/gsm8k/        its problems (PASSK_DATA_DIR layout)
    OUT/run/                                      a `passk sweep` run directory, report included

The evaluation is the real path: mergekit recipes, lm_eval with `gsm8k_passk_zeroshot` (the
prompt the demo models were trained on) and passk's graders, then `passk report`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from passk_plugin.demo.train import DemoTrainConfig
from passk_plugin.grid import GridPoint, Sampling

TASK = "gsm8k_passk_zeroshot"


@dataclass(frozen=True)
class DemoConfig:
    """What the demo trains and evaluates. `quick()` is the reduced version CI runs.

    Sampling is fixed before looking at any result: T = 1.0 samples the models' own
    distributions, so Pass@k measures the diversity training left them, and n = 16 resolves
    each problem's success rate to 1/16 at a cost two CPU cores can pay in minutes.

    Decoding baselines of the late checkpoint: the temperatures, plus one more setting,
    T = 1.3 with min_p = 0.1. Plain top_p or min_p at T = 1 only cut the tail, sharpening
    the distribution as a lower temperature does (already covered); min_p at a high
    temperature is the setting proposed to keep diversity without the tail's noise, so it
    is the strongest decoding rival to WiSE-FT on Pass@k. One point costs about as much as
    one temperature point.
    """

    train: DemoTrainConfig = field(default_factory=DemoTrainConfig)
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    temperatures: tuple[float, ...] = (0.5, 0.7, 1.3)
    decoding: tuple[Sampling, ...] = (Sampling(temperature=1.3, min_p=0.1),)
    sampling_temperature: float = 1.0
    n: int = 16
    max_gen_toks: int = 48
    limit: int | None = None
    seed: int = 1234
    # Rows decoded together: the tiny models cost little per row, so wide batches cut the
    # per-step overhead (one 128-problem point: 13.0 s at 64, 9.8 s at 256, free cores).
    batch_size: int = 256

    @classmethod
    def quick(cls) -> DemoConfig:
        return cls(
            train=DemoTrainConfig(
                n_test=8,
                hidden_size=64,
                intermediate_size=128,
                n_pretrain=400,
                pretrain_steps=40,
                n_train=100,
                steps=30,
                early_step=10,
                checkpoint_steps=(10, 30),
                warmup_steps=5,
            ),
            alphas=(0.0, 0.5, 1.0),
            temperatures=(0.7,),
            decoding=(Sampling(temperature=1.3, min_p=0.1),),
            n=4,
            max_gen_toks=24,
        )


def demo_points(checkpoints: list[Path], early: Path, late: Path, cfg: DemoConfig):
    """The demo's grid: trajectory, WiSE-FT of early with late, decoding points of late.

    α = 0 and 1 are the early and late checkpoints' own trajectory points, so
    `unique_points` keeps one point per model and sampling setting.
    """
    from passk_plugin.grid import (
        checkpoint_points,
        decoding_points,
        early_late_points,
        temperature_settings,
        unique_points,
    )

    points: list[GridPoint] = checkpoint_points(checkpoints)
    points += early_late_points(str(early), [str(late)], cfg.alphas)
    settings = temperature_settings(cfg.temperatures) + list(cfg.decoding)
    points += decoding_points(late, settings, prefix="late")
    return unique_points(points)


def run_demo(out_dir: str | Path, config: DemoConfig | None = None, *, progress: bool = True):
    """Run (or resume) the demo under out_dir; returns the report files by name."""
    from passk_plugin.demo.train import run_data_dir, saved_checkpoints, train_demo_checkpoints
    from passk_plugin.sweep.run import run_sweep
    from passk_plugin.sweep.settings import EvalSettings, RunOptions

    cfg = config or DemoConfig()
    out = Path(out_dir).resolve()
    early, late = train_demo_checkpoints(out / "checkpoints", config=cfg.train, progress=progress)
    data_dir = run_data_dir(early)  # the problems the run was trained and held out on
    run_dir = out / "run"
    checkpoints = [path for _, path in saved_checkpoints(early.parent)]
    points = demo_points(checkpoints, early, late, cfg)
    settings = EvalSettings(
        tasks=[TASK],
        n=cfg.n,
        gen_kwargs={"temperature": cfg.sampling_temperature, "max_gen_toks": cfg.max_gen_toks},
        model="hf-passk",
        limit=cfg.limit,
        seed=cfg.seed,
        data_dir=str(data_dir),  # reaches passk's dataset loaders as task metadata
    )
    options = RunOptions(in_memory=True, batch_size=cfg.batch_size, device="cpu")
    run_sweep(run_dir, points, settings, options, progress=progress)
    from passk_plugin.report import build_report

    return build_report(run_dir, title="passk demo: WiSE-FT on tiny models trained here")


def describe(config: DemoConfig) -> str:
    """One paragraph saying what the demo will do, printed before it starts."""
    t = config.train
    inner = [a for a in config.alphas if 0 < a < 1]
    decoding = [f"T={x:g}" for x in config.temperatures]
    decoding += [
        ", ".join(f"{k}={v:g}" for k, v in s.gen_kwargs().items()) for s in config.decoding
    ]
    return (
        f"passk demo: training a {t.num_layers}-layer Llama-style model (hidden {t.hidden_size}) "
        f"on {t.n_pretrain} varied word problems ({t.pretrain_steps} steps), then fine-tuning it "
        f"on {t.n_train} narrow ones for {t.steps} steps (early checkpoint at step "
        f"{t.early_step}, late at {t.steps}), then evaluating with {TASK}, n={config.n} samples "
        f"at temperature {config.sampling_temperature:g} on {t.n_test} held-out problems: "
        f"the checkpoints at steps {', '.join(str(s) for s in t.saved_steps)}, WiSE-FT of the "
        f"early with the late one at alpha {', '.join(f'{a:g}' for a in inner)}, and the late "
        f"checkpoint sampled with {', '.join(decoding)}."
    )


def with_overrides(config: DemoConfig, **changes) -> DemoConfig:
    """A copy with the given fields changed (None values are ignored)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if "temperature" in changes:
        changes["sampling_temperature"] = changes.pop("temperature")
    train_changes = {k: changes.pop(k) for k in list(changes) if k in ("seed", "steps")}
    if train_changes:
        changes["train"] = dataclasses.replace(config.train, **train_changes)
    return dataclasses.replace(config, **changes)


def finding_text(out_dir: str | Path, config: DemoConfig | None = None) -> str:
    """What the finished demo showed, in words, from its report's paired comparisons."""
    import json
    import textwrap

    from passk_plugin.demo import finding
    from passk_plugin.demo.train import checkpoint_dir
    from passk_plugin.grid import GridPoint, checkpoint_point_id
    from passk_plugin.sweep_store import RunStore

    cfg = config or DemoConfig()
    out = Path(out_dir).resolve()
    run_dir = out / "run"
    rows = finding.load_rows(RunStore(run_dir).report_dir)
    trained = out / "checkpoints" / f"run-{cfg.train.cache_key()}"
    early = checkpoint_point_id(checkpoint_dir(trained, cfg.train.early_step))
    late = checkpoint_point_id(checkpoint_dir(trained, cfg.train.steps))
    points = [
        GridPoint.from_stored(json.loads(f.read_text(encoding="utf-8")), run_dir)
        for f in sorted((run_dir / "points").glob("*/point.json"))
    ]
    sentences = [
        finding.collapse_sentence(
            rows,
            early=early,
            late=late,
            early_step=cfg.train.early_step,
            late_step=cfg.train.steps,
        ),
        finding.wise_ft_sentence(
            rows,
            late=late,
            alphas={p.id: p.alpha for p in points if p.method == "wise-ft" and p.alpha is not None},
            decoding=[p.id for p in points if p.method == "decoding"],
        ),
    ]
    return "\n".join(textwrap.fill(s, 100) for s in sentences if s)

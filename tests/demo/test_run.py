"""The reduced demo end to end: training, mergekit, lm_eval, report, on CPU."""

from __future__ import annotations

import csv
import json
import math
import os
from fractions import Fraction

import pytest

from passk_plugin.demo.run import TASK, DemoConfig, run_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    files = run_demo(out, DemoConfig.quick(), progress=False)
    return out, files


def test_every_report_file_is_written(demo):
    out, files = demo
    report = out / "run" / "report"
    for name in (
        "leaderboard.md",
        "leaderboard.csv",
        "leaderboard.json",
        "leaderboard.html",
        "biasvar.md",
        "biasvar.csv",
        "biasvar.json",
    ):
        assert (report / name).stat().st_size > 0, name
    pngs = sorted(p.name for p in report.glob("*.png"))
    assert any(p.startswith("pass1_vs_passk") for p in pngs), pngs
    assert any(p.startswith("passk_vs_k") for p in pngs), pngs
    assert all(path.exists() for path in files.values())


def test_leaderboard_numbers_come_from_the_evaluation(demo):
    out, _ = demo
    cfg = DemoConfig.quick()
    rows = {r["id"]: r for r in csv.DictReader((out / "run/report/leaderboard.csv").open())}
    expected = {f"ckpt_checkpoint-{step}" for step in cfg.train.saved_steps}
    expected |= {f"wise-ft_a{a:.3f}" for a in cfg.alphas if 0 < a < 1}
    expected |= {f"late-T{t:g}" for t in cfg.temperatures}
    expected |= {f"late-{s.label()}" for s in cfg.decoding}
    assert set(rows) == expected
    for pid, row in rows.items():
        results = json.loads((out / "run/points" / pid / "results.json").read_text())
        task = results["results"][TASK]
        samples = [
            json.loads(line) for line in (out / "run/points" / pid / f"samples_{TASK}.jsonl").open()
        ]
        assert len(samples) == cfg.train.n_test
        for k in (1, 2, cfg.n):
            assert float(row[f"{TASK}/pass@{k}"]) == pytest.approx(task[f"pass@{k},all"])
            # Independently: the unbiased estimator from each problem's stored n and c.
            exact = [
                1 - Fraction(math.comb(s["n"] - s["c"], k), math.comb(s["n"], k)) for s in samples
            ]
            assert task[f"pass@{k},all"] == pytest.approx(float(sum(exact) / len(exact)))
        assert all(s["n"] == cfg.n for s in samples)


def test_the_sweep_is_trajectory_wise_ft_and_decoding_each_model_once(demo):
    from passk_plugin.grid import GridPoint

    out, _ = demo
    cfg = DemoConfig.quick()
    run = out / "run"
    points = [
        GridPoint.from_stored(json.loads(f.read_text()), run)
        for f in sorted((run / "points").glob("*/point.json"))
    ]
    (run_dir,) = (out / "checkpoints").glob("run-*")
    late = str(run_dir / f"checkpoint-{cfg.train.steps}")
    early = str(run_dir / f"checkpoint-{cfg.train.early_step}")
    # The trajectory: every saved checkpoint, as it is, with its step.
    trajectory = {p.step: p.checkpoints[0] for p in points if p.method == "checkpoint"}
    assert trajectory == {s: str(run_dir / f"checkpoint-{s}") for s in cfg.train.saved_steps}
    # WiSE-FT strictly inside (0, 1): the ends are the trajectory's early and late points.
    merges = [p for p in points if p.method == "wise-ft"]
    assert sorted(p.alpha for p in merges) == [a for a in cfg.alphas if 0 < a < 1]
    assert all(p.checkpoints == (early, late) for p in merges)
    # The late checkpoint under every decoding setting, and these reach the generation.
    decoding = [p for p in points if p.method == "decoding"]
    assert {p.checkpoints[0] for p in decoding} == {late}
    wanted = [{"temperature": t} for t in cfg.temperatures] + [s.gen_kwargs() for s in cfg.decoding]
    assert sorted(map(str, (p.gen_kwargs() for p in decoding))) == sorted(map(str, wanted))
    for p in decoding:
        results = json.loads((run / "points" / p.id / "results.json").read_text())
        used = results["configs"][TASK]["generation_kwargs"]
        assert {k: used[k] for k in p.gen_kwargs()} == p.gen_kwargs(), used
    # Each model under each sampling setting once, and nothing else.
    assert len(points) == len({p.model_key() for p in points})
    assert len(points) == len(trajectory) + len(merges) + len(decoding)


def test_stored_verdicts_match_an_independent_regrade(demo):
    """Every stored completion, graded again against the generator's own answer."""
    from passk_plugin.demo.problems import split_problems
    from passk_plugin.graders.gsm8k import extract_answer

    out, _ = demo
    cfg = DemoConfig.quick()
    _, held_out = split_problems(cfg.train.n_train, cfg.train.n_test, cfg.train.seed)
    gold = {p.question: p.value for p in held_out}
    graded = solved = 0
    for samples_file in sorted((out / "run/points").glob(f"*/samples_{TASK}.jsonl")):
        for line in samples_file.open():
            sample = json.loads(line)
            completions = [text for group in sample["resps"] for text in group]
            verdicts = [json.loads(v) for group in sample["filtered_resps"] for v in group]
            assert len(completions) == len(verdicts) == sample["n"] == cfg.n
            value = gold[sample["doc"]["question"]]
            mine = [extract_answer(text) == str(value) for text in completions]
            assert [v["correct"] for v in verdicts] == mine, samples_file
            assert [v["answer"] for v in verdicts] == [extract_answer(t) for t in completions]
            assert sample["c"] == sum(mine)
            graded += len(mine)
            solved += sample["c"] > 0
    assert graded == len(list((out / "run/points").iterdir())) * cfg.train.n_test * cfg.n
    # The models trained here do solve held-out problems, not only emit numbers.
    assert solved > 0


def test_the_demo_ends_by_saying_what_it_showed(demo):
    from passk_plugin.demo.run import finding_text

    out, _ = demo
    cfg = DemoConfig.quick()
    text = " ".join(finding_text(out, cfg).split())
    rows = json.loads((out / "run/report/paired.json").read_text())
    late, early = f"ckpt_checkpoint-{cfg.train.steps}", f"ckpt_checkpoint-{cfg.train.early_step}"
    collapse = [r for r in rows if r["point"] == late and r["reference"] == early]
    assert {r["metric"] for r in collapse} >= {"pass@1", f"pass@{cfg.n}"}
    for r in collapse:
        if r["metric"].startswith("pass@"):
            assert f"{r['delta']:+.3f} (95% CI {r['ci_low']:+.3f} to {r['ci_high']:+.3f})" in text
    assert f"step {cfg.train.early_step} to step {cfg.train.steps}" in text
    assert "WiSE-FT alpha = 0.5" in text


def test_demo_leaves_the_environment_as_it_was(demo):
    from passk_plugin.demo.train import run_data_dir

    (run,) = (demo[0] / "checkpoints").glob("run-*")
    assert os.environ.get("PASSK_DATA_DIR") != str(run_data_dir(run / "checkpoint-0"))


def test_demo_checkpoints_are_cached(demo):
    out, _ = demo
    from passk_plugin.demo.train import train_demo_checkpoints

    runs = list((out / "checkpoints").glob("run-*"))
    assert len(runs) == 1
    early, late = train_demo_checkpoints(out / "checkpoints", config=DemoConfig.quick().train)
    assert early.parent == runs[0] and late.parent == runs[0]

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
    expected = {f"wise-ft_a{a:.3f}" for a in cfg.alphas}
    expected |= {f"late-T{t:g}" for t in cfg.temperatures}
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


def test_demo_leaves_the_environment_as_it_was(demo):
    from passk_plugin.demo.train import run_data_dir

    (run,) = (demo[0] / "checkpoints").glob("run-*")
    assert os.environ.get("PASSK_DATA_DIR") != str(run_data_dir(run / "early"))


def test_demo_checkpoints_are_cached(demo):
    out, _ = demo
    from passk_plugin.demo.train import train_demo_checkpoints

    runs = list((out / "checkpoints").glob("run-*"))
    assert len(runs) == 1
    early, late = train_demo_checkpoints(out / "checkpoints", config=DemoConfig.quick().train)
    assert early.parent == runs[0] and late.parent == runs[0]

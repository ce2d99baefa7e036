"""`passk report --results` on the output directory of a real lm_eval run."""

from __future__ import annotations

import csv
import json

import pytest

from passk_plugin.cli import main

TASK = "gsm8k_passk"


@pytest.mark.slow
def test_report_from_lm_eval_output_dir(tmp_path, tiny_model, shared_data, monkeypatch):
    monkeypatch.setenv("PASSK_DATA_DIR", str(shared_data))
    out = tmp_path / "lm_eval_out"
    rc = main(
        [
            "eval",
            "--model", "hf",
            "--model_args", f"pretrained={tiny_model}",
            "--device", "cpu",
            "--batch_size", "8",
            "--tasks", TASK,
            "--num_fewshot", "1",
            "--n", "4",
            "--limit", "2",
            "--gen_kwargs", "max_gen_toks=8,temperature=1.0,do_sample=True",
            "--output_path", str(out),
            "--log_samples",
        ]
    )  # fmt: skip
    assert rc == 0
    (results_file,) = out.rglob("results_*.json")
    assert list(out.rglob(f"samples_{TASK}_*.jsonl"))
    stored = json.loads(results_file.read_text())["results"][TASK]

    rep = tmp_path / "report"
    assert main(["report", "--results", str(out), "--out", str(rep)]) == 0
    (row,) = list(csv.DictReader((rep / "leaderboard.csv").open()))
    assert row["label"] == tiny_model.name
    assert row["temperature"] == "1"
    for k in (1, 2, 4):
        assert float(row[f"{TASK}/pass@{k}"]) == stored[f"pass@{k},all"]
        assert float(row[f"{TASK}/pass@{k}_stderr"]) == stored[f"pass@{k}_stderr,all"]
    bv = list(csv.DictReader((rep / "biasvar.csv").open()))
    assert [int(r["k"]) for r in bv] == [1, 2, 4]
    assert all(int(r["problems"]) == 2 for r in bv)
    # mean rho from the logged per-problem counts is the stored pass@1
    assert float(bv[0]["mean_rho"]) == pytest.approx(stored["pass@1,all"])
    assert (rep / f"rho_hist_{TASK}.png").is_file()
    assert (rep / "leaderboard.html").is_file()

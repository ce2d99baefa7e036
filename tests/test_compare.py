"""`passk compare` on real lm_eval output directories and on `passk score` results files.

The lm_eval runs are real (TaskManager with passk's tasks, lm_eval's own output writer) with
a scripted model whose number of right samples per problem is known, so every compared value
is checked against an independent computation from the logged samples.
"""

from __future__ import annotations

import json
from collections import Counter
from math import comb
from pathlib import Path

import numpy as np
import pytest
from lm_eval.api.model import LM

from passk_plugin import compare
from passk_plugin.cli import main as passk_main
from passk_plugin.paths import tasks_dir

N = 4
TASK = "gsm8k_passk_zeroshot"
PROBLEMS = 10


def _gsm8k_rows(count: int = PROBLEMS) -> list[dict]:
    return [{"question": f"What is {i} plus one?", "answer": f"#### {i + 1}"} for i in range(count)]


class ScriptedLM(LM):
    """Sample i of problem d is right when i < skill(d); wrong answers rotate over two."""

    def __init__(self, skill) -> None:
        super().__init__()
        self.skill = skill
        self.seen: Counter = Counter()

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError

    def generate_until(self, requests):
        out = []
        for request in requests:
            key = request.doc_id
            i = self.seen[key]
            self.seen[key] += 1
            gold = int(request.doc["answer"].split("####")[-1])
            answer = gold if i < self.skill(request.doc_id) else 1000 + i % 2
            out.append(f"Some steps. The answer is {answer}.")
        return out


def _lm_eval_run(out: Path, skill, data_dir: Path, log_samples: bool = True) -> Path:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PASSK_DATA_DIR", str(data_dir))
        # lm_eval's environment report (pip, GPU and OS probes) takes most of a tiny run's time.
        mp.setattr("lm_eval.evaluator.add_env_info", lambda results: None)
        manager = TaskManager(
            include_path=str(tasks_dir()), include_defaults=False, metadata={"n": N}
        )
        tracker = EvaluationTracker(output_path=str(out))
        results = simple_evaluate(
            model=ScriptedLM(skill),
            tasks=[TASK],
            task_manager=manager,
            log_samples=log_samples,
            evaluation_tracker=tracker,
        )
    samples = results.pop("samples", None)
    tracker.save_results_aggregated(results=results, samples=samples)
    if log_samples:
        tracker.save_results_samples(task_name=TASK, samples=samples[TASK])
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "gsm8k").mkdir()
    (root / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _gsm8k_rows()))
    return root


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, data_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    a = _lm_eval_run(root / "a", lambda d: (d * 3) % 5, data_dir)
    b = _lm_eval_run(root / "b", lambda d: (d * 2 + 1) % 5, data_dir)
    return a, b


def _expected_counts(skill) -> list[int]:
    return [min(skill(d), N) for d in range(PROBLEMS)]


def test_compare_two_lm_eval_dirs(two_runs, tmp_path, capsys):
    a, b = two_runs
    out = tmp_path / "ab.json"
    code = passk_main(["compare", str(a), str(b), "--k", "1,2,4", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "A: " in printed and "pass@4" in printed and "95% paired-bootstrap CI" in printed
    doc = json.loads(out.read_text())
    assert list(doc) == [TASK]
    table = doc[TASK]
    c_a = _expected_counts(lambda d: (d * 3) % 5)
    c_b = _expected_counts(lambda d: (d * 2 + 1) % 5)
    (results_a,) = a.rglob("results_*.json")
    (results_b,) = b.rglob("results_*.json")
    stored_a = json.loads(results_a.read_text())["results"][TASK]
    stored_b = json.loads(results_b.read_text())["results"][TASK]
    for k in (1, 2, 4):
        row = table[f"pass@{k}"]
        assert set(row) == {"a", "b", "delta", "ci_low", "ci_high", "p_value", "n_problems"}
        want_a = sum(1 - comb(N - c, k) / comb(N, k) for c in c_a) / PROBLEMS
        want_b = sum(1 - comb(N - c, k) / comb(N, k) for c in c_b) / PROBLEMS
        assert row["a"] == pytest.approx(want_a, abs=1e-12)
        assert row["b"] == pytest.approx(want_b, abs=1e-12)
        # The stored means are reported, so Δ is their difference to the last bit.
        assert row["a"] == stored_a[f"pass@{k},all"] and row["b"] == stored_b[f"pass@{k},all"]
        assert row["delta"] == row["a"] - row["b"]
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
        assert 0 < row["p_value"] <= 1 and row["n_problems"] == PROBLEMS
    for key in ("maj@4", "g-pass@4_0.5", "g-pass@4_1.0", "mg-pass@4", "mean_rho"):
        assert key in table
    assert table["mean_rho"]["delta"] == pytest.approx(table["pass@1"]["delta"], abs=1e-12)
    assert table["maj@4"]["a"] == pytest.approx(stored_a["maj@4,all"], abs=1e-12)


def test_compare_a_run_with_itself_finds_nothing(two_runs):
    a, _ = two_runs
    _, _, result = compare.compare_paths(a, a, ks="1,4", n_resamples=2000)
    for res in result[TASK].values():
        assert (res.delta, res.ci_low, res.ci_high, res.p_value) == (0.0, 0.0, 0.0, 1.0)


def _score_results(tmp_path: Path, name: str, counts: list[int], data: Path) -> Path:
    records = []
    for task_id, c in enumerate(counts):
        gold = task_id + 1
        for j in range(N):
            answer = gold if j < c else 900 + j % 3
            records.append({"task_id": task_id, "completion": f"The answer is {answer}."})
    samples = tmp_path / f"{name}.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["score", "--task", "gsm8k", "--samples", str(samples), "--data", str(data)]
    assert passk_main(args) == 0
    return Path(f"{samples}_results.jsonl")


@pytest.fixture
def gsm8k_file(tmp_path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _gsm8k_rows(6)))
    return path


def test_compare_two_score_results_files(tmp_path, gsm8k_file, capsys):
    c_a, c_b = [4, 4, 3, 2, 4, 1], [1, 0, 3, 0, 2, 1]
    a = _score_results(tmp_path, "a", c_a, gsm8k_file)
    b = _score_results(tmp_path, "b", c_b, gsm8k_file)
    capsys.readouterr()
    out = tmp_path / "cmp.json"
    assert passk_main(["compare", str(a), str(b), "--k", "1,4", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    (task,) = doc
    row = doc[task]["pass@1"]
    assert row["a"] == pytest.approx(np.mean(c_a) / N) and row["b"] == pytest.approx(
        np.mean(c_b) / N
    )
    assert row["delta"] > 0 and row["ci_low"] > 0  # A is right more often on 5 of 6 problems
    # Exact sign-flip p: 4 positive differences, two zero -> 2 / 2^4.
    assert row["p_value"] == pytest.approx(2 / 16)
    # maj@4 uses all 4 samples: the gold answer wins with 2 or more votes (wrong answers
    # rotate over three); with 1 vote it is a 4-way tie, worth 1/4.
    assert doc[task]["maj@4"]["a"] == pytest.approx(np.mean([1, 1, 1, 1, 1, 0.25]))
    assert doc[task]["g-pass@4_1.0"]["b"] == pytest.approx(0.0)


def test_bad_input(two_runs, tmp_path, gsm8k_file, data_dir, capsys):
    a, _ = two_runs
    scored = _score_results(tmp_path, "s", [1, 2, 3, 4, 0, 1], gsm8k_file)
    fewer = _score_results(tmp_path, "f", [1, 2, 3, 4], gsm8k_file)
    capsys.readouterr()

    def error(*argv: str) -> str:
        assert passk_main(["compare", *argv]) == 2
        return capsys.readouterr().err

    assert "share no task" in error(str(a), str(scored))
    assert "task math_passk is not in A" in error(str(a), str(a), "--tasks", "math_passk")
    msg = error(str(scored), str(fewer))
    assert "different problems" in msg and "2 of A's 6 problems are not in B" in msg
    assert "k=8 is larger than" in error(str(a), str(a), "--k", "1,8")
    samples = tmp_path / "s.jsonl"  # the samples, not the results: no verdicts
    assert "no per-sample verdict" in error(str(samples), str(scored))
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"task": "gsm8k", "per_problem": []}))
    assert "without per-sample verdicts" in error(str(summary), str(scored))
    unlogged = _lm_eval_run(tmp_path / "nolog", lambda d: 1, data_dir, log_samples=False)
    assert "no per-sample verdicts" in error(str(unlogged), str(a))
    assert "not found" in error(str(tmp_path / "missing"), str(a))
    (tmp_path / "run" / "points").mkdir(parents=True)
    assert "sweep run directory" in error(str(tmp_path / "run"), str(a))

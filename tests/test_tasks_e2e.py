"""End-to-end lm_eval runs of passk's tasks.

A scripted model (fixed answers, a known number right per problem) checks the numbers; the
tiny locally built Llama checks the real plumbing: both ways in (TaskManager/--include_path
and `passk eval`), chat templates, logged samples. Every run checks its reported metrics
against an independent recomputation from the logged per-sample verdicts.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from fractions import Fraction
from itertools import combinations
from math import ceil, comb, sqrt
from pathlib import Path
from statistics import stdev

import pytest
from lm_eval.api.model import LM

from passk_plugin.harness import parse_verdicts
from passk_plugin.paths import tasks_dir

N = 4
KS = (1, 2, 4)
BASE_TASKS = ["gsm8k_passk", "math_passk", "math500_passk", "humaneval_passk"]
ZERO_SHOT_TASKS = [
    "gsm8k_passk_zeroshot",
    "math_passk_zeroshot",
    "math500_passk_zeroshot",
    "humaneval_passk_instruct",
]
VOTED = {"gsm8k_passk", "math_passk", "math500_passk"} | {
    "gsm8k_passk_zeroshot",
    "math_passk_zeroshot",
    "math500_passk_zeroshot",
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_dir(shared_data, tmp_path_factory):
    """PASSK_DATA_DIR: the shared GSM8K and MATH-500 copies, plus a small full-MATH file."""
    root = tmp_path_factory.mktemp("data")
    for name in ("gsm8k", "math500"):
        (root / name).symlink_to(shared_data / name)
    (root / "math").mkdir()
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").open()]
    with (root / "math" / "test.jsonl").open("w") as fh:
        for row in rows[100:105]:  # full MATH rows carry no `answer`: it comes from the solution
            record = {"problem": row["problem"], "solution": row["solution"]}
            fh.write(json.dumps({**record, "level": f"Level {row['level']}", "type": "x"}) + "\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PASSK_DATA_DIR", str(root))
        yield root


def _task_manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)


# ------------------------------------------------------------------ independent recomputation


def _maj(answers: list, correct: list[bool], k: int) -> float:
    """maj@k averaged over every k-subset, enumerated: ties split, no answer casts no vote."""
    worth = {
        a: sum(ok for b, ok in zip(answers, correct, strict=True) if b == a) / answers.count(a)
        for a in set(answers) - {None}
    }
    scores = []
    for subset in combinations(range(len(answers)), k):
        votes = Counter(answers[i] for i in subset if answers[i] is not None)
        top = max(votes.values(), default=0)
        tied = [a for a, v in votes.items() if v == top]
        scores.append(sum(worth[a] for a in tied) / len(tied) if tied else 0.0)
    return sum(scores) / len(scores)


def _g_pass(n: int, c: int, k: int, tau: float) -> float:
    need = max(1, ceil(Fraction(str(tau)) * k))
    hits = sum(comb(c, j) * comb(n - c, k - j) for j in range(need, min(c, k) + 1))
    return hits / comb(n, k)


def check_against_samples(task: str, metrics: dict, samples: list[dict]) -> list[int]:
    """Every reported metric equals its recomputation from the logged verdicts; returns c's."""
    per_metric: dict[str, list[float]] = {}
    cs = []
    for sample in samples:
        assert sample["filter"] == "all"
        (completions,) = sample["resps"]
        verdicts = parse_verdicts(sample["filtered_resps"][0])
        n, c = len(verdicts), sum(bool(v["correct"]) for v in verdicts)
        assert n == len(completions) == N, task
        assert (sample["n"], sample["c"]) == (n, c), task
        assert all({"correct", "answer", "result"} <= set(v) for v in verdicts)
        cs.append(c)
        for k in KS:
            per_metric.setdefault(f"pass@{k}", []).append(1 - comb(n - c, k) / comb(n, k))
            if k > 1:
                for tau in (0.5, 0.75, 1.0):
                    per_metric.setdefault(f"g-pass@{k}_{tau}", []).append(_g_pass(n, c, k, tau))
            if task in VOTED and k > 1:
                answers = [v.get("answer_class", v["answer"]) for v in verdicts]
                correct = [bool(v["correct"]) for v in verdicts]
                per_metric.setdefault(f"maj@{k}", []).append(_maj(answers, correct, k))
    expected_names = (
        {f"pass@{k}" for k in KS}
        | {f"g-pass@{k}_{tau}" for k in KS if k > 1 for tau in (0.5, 0.75, 1.0)}
        | ({f"maj@{k}" for k in KS if k > 1} if task in VOTED else set())
    )
    assert set(per_metric) == expected_names
    for name, values in per_metric.items():
        assert metrics[f"{name},all"] == pytest.approx(sum(values) / len(values), abs=1e-12)
        stderr = stdev(values) / sqrt(len(values))
        assert metrics[f"{name}_stderr,all"] == pytest.approx(stderr, abs=1e-12), name
    assert metrics["n,all"] == N
    return cs


# ------------------------------------------------------------------ a scripted model


class ScriptedLM(LM):
    """Answers sample i of problem d right when i < d (d = 0..4), wrong otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter = Counter()

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError

    def generate_until(self, requests):
        out = []
        for request in requests:
            key = (request.task_name, request.doc_id)
            i = self.seen[key]
            self.seen[key] += 1
            out.append(_completion(request.task_name, request.doc, i < request.doc_id, i))
        return out


def _completion(task: str, doc: dict, right: bool, i: int) -> str:
    from passk_plugin.graders import gsm8k
    from passk_plugin.graders import math as math_grader

    if task.startswith("gsm8k"):
        return f"Some steps. The answer is {gsm8k.gold_answer(doc) if right else 1000 + i % 2}."
    if task.startswith("math"):
        return f"So it is $\\boxed{{{math_grader.gold_answer(doc) if right else 1000 + i % 2}}}$."
    return doc["canonical_solution"] if right else "    return None\n"


def test_scripted_model_scores_match_the_definition(data_dir):
    from lm_eval import simple_evaluate

    results = simple_evaluate(
        model=ScriptedLM(),
        tasks=["passk"],
        limit=5,
        task_manager=_task_manager(n=N),
        confirm_run_unsafe_code=True,
        log_samples=True,
    )
    assert set(BASE_TASKS) <= set(results["results"])
    assert "passk" in results["group_subtasks"]
    for task in BASE_TASKS:
        metrics = results["results"][task]
        expected_c = [0, 1, 2, 3, 4]  # problem d has d of its 4 samples right
        assert check_against_samples(task, metrics, results["samples"][task]) == expected_c
        for k in KS:
            expected = sum(1 - comb(N - c, k) / comb(N, k) for c in expected_c) / 5
            assert metrics[f"pass@{k},all"] == pytest.approx(expected, abs=1e-12), (task, k)


def test_k_larger_than_n_is_refused(data_dir):
    with pytest.raises(ValueError, match="k=8 is larger than"):
        _task_manager(n=N, k="1,8").load(["gsm8k_passk"])


def test_passk_eval_checks_k_before_loading_a_model(capsys):
    from passk_plugin.cli import main as passk_main

    assert passk_main(["eval", "--tasks", "gsm8k_passk", "--n", "2", "--k", "1,4"]) == 2
    assert "k=4 is larger than" in capsys.readouterr().err


def test_only_local_tasks():
    from passk_plugin.cli.eval import only_local_tasks

    ours = [str(tasks_dir())]
    assert only_local_tasks(["passk", "gsm8k_passk_zeroshot"], ours)
    assert only_local_tasks(["gsm8k_passk,math500_passk"], ours)
    assert not only_local_tasks(["gsm8k_passk", "hellaswag"], ours)
    assert not only_local_tasks(["gsm8k_passk*"], ours)  # patterns need the full index
    assert not only_local_tasks([], ours)


# ------------------------------------------------------------------ the tiny model


def _hf_args(model: Path) -> dict:
    # A short context keeps the 8-shot prompts cheap on CPU (left-truncated; fine here).
    return {"pretrained": str(model), "dtype": "float32", "max_length": 512}


def test_every_task_with_a_chat_template(tiny_model, data_dir):
    """All eight tasks through TaskManager(include_path=...), with the model's chat template."""
    from lm_eval import simple_evaluate

    results = simple_evaluate(
        model="hf",
        model_args=_hf_args(tiny_model),
        tasks=BASE_TASKS + ZERO_SHOT_TASKS,
        limit=2,
        batch_size=16,
        device="cpu",
        gen_kwargs="max_gen_toks=16",
        task_manager=_task_manager(n=N),
        apply_chat_template=True,
        fewshot_as_multiturn=True,
        confirm_run_unsafe_code=True,
        log_samples=True,
    )
    for task in BASE_TASKS + ZERO_SHOT_TASKS:
        samples = results["samples"][task]
        assert len(samples) == 2
        prompt = samples[0]["arguments"][0][0]
        assert "<|user|>" in prompt and prompt.rstrip().endswith("<|assistant|>"), task
        assert results["configs"][task]["generation_kwargs"]["max_gen_toks"] == 16
        check_against_samples(task, results["results"][task], samples)


def test_passk_eval_cli(tiny_model, data_dir, tmp_path, monkeypatch):
    """`passk eval` on the group: finds the tasks itself and skips lm_eval's built-ins."""
    import lm_eval
    from lm_eval.tasks import manager

    from passk_plugin.cli import main as passk_main

    indexed: list[list[Path]] = []
    original_build = manager.TaskIndex.build

    def spy(paths, **kwargs):
        paths = list(paths)
        indexed.append(paths)
        return original_build(paths, **kwargs)

    monkeypatch.setattr(manager.TaskIndex, "build", staticmethod(spy))
    model_args = ",".join(f"{k}={v}" for k, v in _hf_args(tiny_model).items())
    out = tmp_path / "out"
    code = passk_main(
        ["eval", "--model", "hf", "--model_args", model_args, "--tasks", "passk",
         "--limit", "2", "--n", str(N), "--k", "1,2,4", "--batch_size", "16", "--device", "cpu",
         "--gen_kwargs", "max_gen_toks=16", "--confirm_run_unsafe_code",
         "--output_path", str(out), "--log_samples"]
    )  # fmt: skip
    assert code == 0
    builtin = Path(lm_eval.__file__).parent / "tasks"
    assert indexed and all(builtin not in paths for paths in indexed)
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    for task in BASE_TASKS:
        (samples_file,) = out.rglob(f"samples_{task}_*.jsonl")
        samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
        check_against_samples(task, results["results"][task], samples)
        assert results["configs"][task]["repeats"] == N


def test_lm_eval_cli_with_include_path(tiny_model, data_dir, tmp_path, monkeypatch, capsys):
    """Plain `lm_eval --include_path $(passk tasks-dir)`, as a user without passk eval runs it."""
    from lm_eval.__main__ import cli_evaluate

    model_args = ",".join(f"{k}={v}" for k, v in _hf_args(tiny_model).items())
    out = tmp_path / "out"
    argv = ["lm_eval", "--model", "hf", "--model_args", model_args,
            "--include_path", str(tasks_dir()), "--tasks", "gsm8k_passk_zeroshot",
            "--limit", "2", "--metadata", json.dumps({"n": N}), "--batch_size", "16",
            "--device", "cpu", "--gen_kwargs", "max_gen_toks=16",
            "--output_path", str(out), "--log_samples"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    cli_evaluate()
    table = capsys.readouterr().out
    assert "pass@4" in table and "maj@4" in table
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]["gsm8k_passk_zeroshot"]
    (samples_file,) = out.rglob("samples_gsm8k_passk_zeroshot_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    check_against_samples("gsm8k_passk_zeroshot", results, samples)

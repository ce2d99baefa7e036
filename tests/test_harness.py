from __future__ import annotations

import ast
import functools
import json
from math import comb
from pathlib import Path

import lm_eval
import pytest
import yaml

from passk_plugin import harness
from passk_plugin.graders import Verdict
from passk_plugin.paths import tasks_dir

LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
OUR_TASKS = [
    "gsm8k_passk",
    "gsm8k_passk_zeroshot",
    "math_passk",
    "math_passk_zeroshot",
    "math500_passk",
    "math500_passk_zeroshot",
    "humaneval_passk",
    "humaneval_passk_instruct",
]


def _pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator straight from its definition, with exact binomials."""
    return 1.0 - comb(n - c, k) / comb(n, k)


def _verdicts(pattern: str, answers: list[str | None] | None = None) -> list[str]:
    """Encoded verdicts from a pattern like '1001' (1 = correct)."""
    answers = answers or [None] * len(pattern)
    return [
        harness.encode_verdict(Verdict(correct=ch == "1", answer=a, result="x", answer_class=a))
        for ch, a in zip(pattern, answers, strict=True)
    ]


# ------------------------------------------------------------------ settings from metadata


def test_settings_default_to_sixteen_samples_and_powers_of_two():
    settings = harness.PasskSettings.from_metadata({})
    assert settings.n == 16 and settings.ks == (1, 2, 4, 8, 16)


@pytest.mark.parametrize(
    ("metadata", "n", "ks"),
    [
        ({"n": 8}, 8, (1, 2, 4, 8)),
        ({"n": "6"}, 6, (1, 2, 4, 6)),
        ({"n": 8, "k": "1,8,2"}, 8, (1, 2, 8)),
        ({"n": 8, "k": [1, 3]}, 8, (1, 3)),
        ({"n": 8, "k": 4}, 8, (4,)),
    ],
)
def test_settings_from_metadata(metadata, n, ks):
    settings = harness.PasskSettings.from_metadata(metadata)
    assert (settings.n, settings.ks) == (n, ks)


def test_k_above_n_is_a_clear_error():
    with pytest.raises(ValueError, match=r"k=8 is larger than .*n=4"):
        harness.PasskSettings.from_metadata({"n": 4, "k": "1,8"})


@pytest.mark.parametrize("n", [0, "many"])
def test_bad_n(n):
    with pytest.raises(ValueError, match="n"):
        harness.PasskSettings.from_metadata({"n": n})


def test_metric_names_include_majority_vote_only_when_asked():
    plain = harness.PasskSettings.from_metadata({"n": 4, "tau": "none"})
    voted = harness.PasskSettings.from_metadata({"n": 4, "majority_vote": True, "tau": ""})
    assert plain.metric_names() == ["pass@1", "pass@2", "pass@4", "mg-pass@2", "mg-pass@4"]
    assert voted.metric_names()[-2:] == ["maj@2", "maj@4"]
    assert plain.diversity_names() == ["rho0_share", "rho1_share"]
    assert voted.diversity_names() == [
        "rho0_share",
        "rho1_share",
        "distinct_answers",
        "answer_entropy",
    ]
    entries = harness.metric_list(voted)
    assert [e["metric"] for e in entries][-2:] == ["n", "c"]
    assert all(e["aggregation"] == "mean" for e in entries)


def test_g_pass_thresholds_from_metadata():
    default = harness.PasskSettings.from_metadata({"n": 4, "k": "1,4"})
    assert default.taus == (0.5, 0.75, 1.0)
    assert default.metric_names() == [
        "pass@1",
        "pass@4",
        "g-pass@4_0.5",
        "g-pass@4_0.75",
        "g-pass@4_1.0",
        "mg-pass@4",
    ]
    assert harness.PasskSettings.from_metadata({"n": 4, "tau": 0.5}).taus == (0.5,)
    with pytest.raises(ValueError, match="tau"):
        harness.PasskSettings.from_metadata({"n": 4, "tau": "2"})
    scores = harness.score_problem(_verdicts("1101"), default)
    # 3 of 4 right, all 4 drawn: at least 2, 3 right always; all 4 never.
    assert (scores["g-pass@4_0.5"], scores["g-pass@4_0.75"], scores["g-pass@4_1.0"]) == (
        1.0,
        1.0,
        0.0,
    )
    assert scores["mg-pass@4"] == pytest.approx(0.5 * (1.0 + 0.0))  # i = 3, 4
    assert (scores["rho0_share"], scores["rho1_share"]) == (0.0, 0.0)


# ------------------------------------------------------------------ per-problem scores


@pytest.mark.parametrize("pattern", ["0000", "1000", "0110", "1111", "00000001"])
def test_score_problem_matches_the_definition(pattern):
    n = len(pattern)
    settings = harness.PasskSettings.from_metadata({"n": n})
    scores = harness.score_problem(_verdicts(pattern), settings)
    c = pattern.count("1")
    assert scores["n"] == n and scores["c"] == c
    for k in settings.ks:
        assert scores[f"pass@{k}"] == pytest.approx(_pass_at_k(n, c, k), abs=1e-12)
    assert scores["pass@1"] == pytest.approx(c / n)


def test_score_problem_majority_vote():
    settings = harness.PasskSettings.from_metadata({"n": 4, "majority_vote": True})
    # Sample 0 is right ("7"); samples 1-3 agree on a wrong "5".
    scores = harness.score_problem(_verdicts("1000", ["7", "5", "5", "5"]), settings)
    # Over the 6 pairs: 3 hold the 7 and a 5, a tie worth 1/2; 3 hold two 5s, worth 0.
    assert scores["maj@2"] == pytest.approx(0.25)
    assert scores["maj@4"] == 0.0
    assert "maj@1" not in scores
    assert scores["distinct_answers"] == 2.0
    assert scores["answer_entropy"] == pytest.approx(0.8112781244591328)  # H(1/4, 3/4)
    # The grader's equivalence classes win over raw answers where present.
    verdicts = [
        {"correct": True, "answer": "0.5", "answer_class": "1/2"},
        {"correct": True, "answer": "\\frac{1}{2}", "answer_class": "1/2"},
        {"correct": False, "answer": "3", "answer_class": "3"},
        {"correct": False, "answer": None, "answer_class": None},
    ]
    scores = harness.score_problem(verdicts, settings)
    assert scores["maj@4"] == 1.0 and scores["distinct_answers"] == 2.0


def test_parse_verdicts_reads_json_strings_and_dicts():
    encoded = _verdicts("10")
    assert harness.parse_verdicts(encoded) == [
        {"correct": True, "answer": None, "result": "x", "answer_class": None},
        {"correct": False, "answer": None, "result": "x", "answer_class": None},
    ]
    assert harness.parse_verdicts([{"correct": True}]) == [{"correct": True}]


# ------------------------------------------------------------------ filters


def test_grade_gsm8k_filter_grades_every_sample_in_order():
    docs = [{"question": "q0", "answer": "x\n#### 12"}, {"question": "q1", "answer": "#### 3"}]
    resps = [["The answer is 12.", "The answer is 13."], ["3", "So 4. The answer is 3.", "none"]]
    out = harness.grade_gsm8k(resps, docs)
    assert [len(x) for x in out] == [2, 3]
    assert all(isinstance(v, str) for per_doc in out for v in per_doc)  # JSON for log files
    parsed = [harness.parse_verdicts(per_doc) for per_doc in out]
    assert [v["correct"] for v in parsed[0]] == [True, False]
    assert [v["correct"] for v in parsed[1]] == [True, True, False]
    assert parsed[0][1]["answer"] == "13"
    assert [v["answer_class"] for v in parsed[1]] == ["3", "3", None]


def test_grade_math_filter():
    docs = [{"problem": "p", "solution": "so $\\boxed{\\frac{1}{2}}$"}]
    resps = [["Thus $\\boxed{0.5}$.", "Thus $\\boxed{2}$.", "no idea", "$\\boxed{4/2}$"]]
    parsed = harness.parse_verdicts(harness.grade_math(resps, docs, timeout=5, workers=1)[0])
    assert [v["correct"] for v in parsed] == [True, False, False, False]
    assert parsed[2]["result"] == "no answer"
    # Logged verdicts carry the answer's class: 2 and 4/2 are one wrong answer.
    classes = [v["answer_class"] for v in parsed]
    assert classes[0] == "\\frac{1}{2}" and classes[1] == classes[3] != classes[0]
    assert classes[2] is None


def test_grade_humaneval_filter_runs_tests():
    from passk_plugin.graders.humaneval import load_problems

    problem = load_problems()["HumanEval/0"]
    good, bad = problem["canonical_solution"], "    return None\n"
    parsed = harness.parse_verdicts(harness.grade_humaneval([[good, bad]], [problem], workers=1)[0])
    assert [v["correct"] for v in parsed] == [True, False]


# ------------------------------------------------------------------ the YAML tasks


@pytest.fixture(scope="module")
def task_manager_factory():
    from lm_eval.tasks import TaskManager

    def make(**metadata):
        return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata)

    return make


@pytest.fixture
def local_data(shared_data, tmp_path, monkeypatch):
    """PASSK_DATA_DIR with the shared copies plus a small full-MATH file."""
    for name in ("gsm8k", "math500"):
        (tmp_path / name).symlink_to(shared_data / name)
    (tmp_path / "math").mkdir()
    rows = [json.loads(line) for line in (shared_data / "math500" / "test.jsonl").open()][:5]
    with (tmp_path / "math" / "test.jsonl").open("w") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in ("problem", "solution", "level")}) + "\n")
    monkeypatch.setenv("PASSK_DATA_DIR", str(tmp_path))
    return tmp_path


def test_all_tasks_and_the_group_are_indexed(task_manager_factory):
    names = set(task_manager_factory().all_tasks)
    assert set(OUR_TASKS) | {"passk"} <= names
    assert not any(name.startswith("_") for name in names)  # shared includes are not tasks


def test_every_task_loads_with_n_and_k_from_metadata(task_manager_factory, local_data):
    tasks = task_manager_factory(n=4, k="1,4").load(OUR_TASKS)["tasks"]
    assert set(tasks) == set(OUR_TASKS)
    for name, task in tasks.items():
        cfg = task.config
        assert cfg.repeats == 4, name
        metrics = [m["metric"] for m in cfg.metric_list]
        voted = not name.startswith("humaneval")
        gpass = ["g-pass@4_0.5", "g-pass@4_0.75", "g-pass@4_1.0", "mg-pass@4"]
        diversity = ["rho0_share", "rho1_share"]
        if voted:
            diversity += ["distinct_answers", "answer_entropy"]
        assert metrics == ["pass@1", "pass@4", *gpass] + (["maj@4"] if voted else []) + [
            *diversity,
            "n",
            "c",
        ]
        gen = cfg.generation_kwargs
        assert gen["do_sample"] is True and gen["temperature"] > 0 and gen["max_gen_toks"] >= 512
        assert [f["name"] for f in cfg.filter_list] == ["all"]


def test_k_above_n_fails_when_the_task_loads(task_manager_factory, local_data):
    with pytest.raises(ValueError, match="k=8 is larger"):
        task_manager_factory(n=4, k="8").load(["gsm8k_passk"])


def test_grading_options_reach_the_filter(task_manager_factory, local_data):
    task = task_manager_factory(n=2, grade_timeout=7, grade_workers=3).load(["humaneval_passk"])[
        "tasks"
    ]["humaneval_passk"]
    fn = task.config.filter_list[0]["filter"][0]["filter_fn"]
    assert isinstance(fn, functools.partial) and fn.keywords == {"timeout": 7, "workers": 3}


def test_gsm8k_prompt_is_lm_evals_gsm8k_cot(task_manager_factory, local_data):
    ours = yaml.load((tasks_dir() / "gsm8k_passk.yaml").read_text(), Loader=_IgnoreTagsLoader)
    theirs = yaml.load(
        (LM_EVAL_TASKS / "gsm8k" / "gsm8k-cot.yaml").read_text(), Loader=_IgnoreTagsLoader
    )
    assert ours["fewshot_config"] == theirs["fewshot_config"]
    assert ours["doc_to_text"] == theirs["doc_to_text"]
    task = task_manager_factory(n=1).load(["gsm8k_passk"])["tasks"]["gsm8k_passk"]
    doc = task.test_docs()[0]
    shots = "".join(
        f"Q: {s['question']}\nA: {s['target']}\n\n" for s in theirs["fewshot_config"]["samples"]
    )
    assert task.fewshot_context(doc, 8) == shots + f"Q: {doc['question']}\nA:"
    assert task.doc_to_target(doc) == "18"


def test_minerva_exemplars_are_lm_evals(task_manager_factory, local_data):
    # lm_eval's minerva utils cannot be imported beside math-verify: read the function.
    source = (LM_EVAL_TASKS / "minerva_math" / "utils.py").read_text()
    tree = ast.parse(source)
    fn = next(n for n in tree.body if getattr(n, "name", "") == "list_fewshot_samples")
    namespace: dict = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "utils", "exec"), namespace)
    assert harness.minerva_fewshot() == namespace["list_fewshot_samples"]()
    task = task_manager_factory(n=1).load(["math500_passk"])["tasks"]["math500_passk"]
    doc = task.test_docs()[0]
    context = task.fewshot_context(doc, 4)
    first = harness.MINERVA_FEWSHOT[0]
    assert context.startswith(f"Problem:\n{first['problem']}\n\nSolution: {first['solution']}\n\n")
    assert context.endswith(f"Problem:\n{doc['problem']}\n\nSolution:")
    assert task.doc_to_target(doc) == doc["answer"]


def test_full_math_target_is_the_last_boxed_answer(task_manager_factory, local_data):
    task = task_manager_factory(n=1).load(["math_passk"])["tasks"]["math_passk"]
    doc = task.test_docs()[0]
    assert "answer" not in doc
    assert task.doc_to_target(doc) == "\\left( 3, \\frac{\\pi}{2} \\right)"


def test_humaneval_prompts(task_manager_factory, local_data):
    tasks = task_manager_factory(n=1).load(["humaneval_passk", "humaneval_passk_instruct"])["tasks"]
    doc = tasks["humaneval_passk"].test_docs()[0]
    assert tasks["humaneval_passk"].fewshot_context(doc, 0) == doc["prompt"]
    instruct = tasks["humaneval_passk_instruct"].fewshot_context(doc, 0)
    assert "```python" in instruct and doc["prompt"].rstrip() in instruct
    assert tasks["humaneval_passk"].UNSAFE_CODE and tasks["humaneval_passk_instruct"].UNSAFE_CODE


class _IgnoreTagsLoader(yaml.SafeLoader):
    """Reads task YAMLs without resolving `!function`."""


_IgnoreTagsLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))

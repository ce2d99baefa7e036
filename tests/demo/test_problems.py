from __future__ import annotations

import json
import operator
import random
import re
from pathlib import Path

import pytest

from passk_plugin.atomic import umask_file_mode
from passk_plugin.demo.problems import (
    BROAD_TEMPLATES,
    STYLES,
    TEMPLATES,
    final_answer,
    generate_problems,
    pretraining_records,
    prompt_text,
    render_reasoning,
    split_problems,
    training_text,
    write_jsonl_dataset,
)

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}
EQUATION = re.compile(r"(\d+) ([-+*/]) (\d+) = (\d+)\.")


def test_answers_recompute_from_their_equations():
    for problem in generate_problems(400, seed=3):
        record = problem.to_record()
        equations = EQUATION.findall(record["answer"])
        assert 2 <= len(equations) <= 3
        for left, op, right, result in equations:
            if op == "/":
                assert int(left) % int(right) == 0
            assert OPS[op](int(left), int(right)) == int(result)
        # Each step after the first builds on the previous result.
        for (_, _, _, previous), step in zip(equations, equations[1:], strict=False):
            assert previous in (step[0], step[2])
        assert final_answer(record["answer"]) == int(equations[-1][3]) == problem.value
        assert problem.value > 0


def test_every_operand_comes_from_the_question_or_an_earlier_step():
    for problem in generate_problems(300, seed=4):
        for path in problem.paths:
            known = {int(n) for n in re.findall(r"\d+", problem.question)}
            for left, _, right, result in path:
                assert left in known and right in known, problem
                known.add(result)


def test_every_solution_path_computes_the_answer():
    rng = random.Random(0)
    problems = [fn(rng) for fn, _ in BROAD_TEMPLATES for _ in range(200)]
    assert max(len(p.paths) for p in problems) >= 3
    for problem in problems:
        assert len(set(problem.paths)) == len(problem.paths), problem
        for path in problem.paths:
            for left, op, right, result in path:
                if op == "/":
                    assert left % right == 0
                assert OPS[op](left, right) == result > 0, problem
            assert path[-1][3] == problem.value
        known = {int(n) for n in re.findall(r"\d+", problem.question)}
        for path in problem.paths:
            seen = set(known)
            for left, _, right, result in path:
                assert left in seen and right in seen, problem
                seen.add(result)


def test_styles_render_the_same_equations():
    steps = ((2, "*", 3, 6), (6, "+", 4, 10))
    for style in STYLES:
        assert EQUATION.findall(render_reasoning(steps, style).replace(",", ".")) == [
            ("2", "*", "3", "6"),
            ("6", "+", "4", "10"),
        ]
    with pytest.raises(ValueError, match="style"):
        render_reasoning(steps, "poem")


def test_broad_stage_is_varied_and_shares_nothing_with_the_held_out_set():
    _, test = split_problems(200, 128, seed=2)
    held_out = frozenset(p.key for p in test)
    records = pretraining_records(3000, seed=2, exclude=held_out)
    assert len(records) == len({r["question"] for r in records}) == 3000
    assert not {r["question"] for r in records} & {p.question for p in test}
    answers = [r["answer"] for r in records]
    # Several styles and problem types beyond the narrow templates' stories.
    assert sum("First," in a for a in answers) > 300 and sum(", so " in a for a in answers) > 300
    assert sum("marbles" in r["question"] for r in records) > 100
    # The answers still recompute from their equations, in any path and style.
    for answer in answers:
        equations = EQUATION.findall(answer.replace(",", "."))
        assert equations and all(OPS[op](int(a), int(b)) == int(r) for a, op, b, r in equations)
        assert final_answer(answer) == int(equations[-1][3])
    assert pretraining_records(50, seed=2) == pretraining_records(50, seed=2)


def test_every_template_is_used():
    keys = {p.key[0] for p in generate_problems(300, seed=0)}
    assert len(keys) == len(TEMPLATES)


def test_same_seed_same_problems_other_seed_other_problems():
    assert generate_problems(50, seed=7) == generate_problems(50, seed=7)
    assert generate_problems(50, seed=7) != generate_problems(50, seed=8)


def test_train_and_test_share_no_computation():
    train, test = split_problems(800, 64, seed=1)
    assert len(train) == 800 and len(test) == 64
    assert not {p.key for p in train} & {p.key for p in test}
    assert not {p.question for p in train} & {p.question for p in test}
    # The held-out set does not depend on the training-set size.
    assert split_problems(100, 64, seed=1)[1] == test


def test_final_answer_rejects_an_answer_without_marker():
    with pytest.raises(ValueError, match="####"):
        final_answer("3 + 4 = 7.")


def test_training_text_is_prompt_then_worked_answer():
    problem = generate_problems(1, seed=0)[0]
    text = training_text(problem)
    assert text.startswith(prompt_text(problem.question))
    assert text.endswith(f" The answer is {problem.value}.\n\n")
    assert "####" not in text


def test_prompt_matches_the_zero_shot_task(tmp_path):
    yaml = pytest.importorskip("yaml")
    jinja2 = pytest.importorskip("jinja2")
    task_file = Path(__file__).resolve().parents[2] / "tasks" / "gsm8k_passk_zeroshot.yaml"
    if not task_file.exists():
        pytest.skip("gsm8k_passk_zeroshot task not present")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    task = yaml.load(task_file.read_text(), Loader=Loader)
    question = generate_problems(1, seed=0)[0].question
    assert jinja2.Template(task["doc_to_text"]).render(question=question) == prompt_text(question)


def test_write_jsonl_dataset_layout(tmp_path):
    train_path, test_path = write_jsonl_dataset(tmp_path, n_train=30, n_test=10, seed=2)
    assert train_path == tmp_path / "gsm8k" / "train.jsonl"
    assert test_path == tmp_path / "gsm8k" / "test.jsonl"
    rows = [json.loads(line) for line in test_path.read_text().splitlines()]
    assert len(rows) == 10
    assert all(set(row) == {"question", "answer"} for row in rows)
    assert [row["question"] for row in rows] == [p.question for p in split_problems(30, 10, 2)[1]]
    assert len(train_path.read_text().splitlines()) == 30
    assert not list((tmp_path / "gsm8k").glob(".*"))  # no temporary left
    assert test_path.stat().st_mode & 0o777 == umask_file_mode()  # not mkstemp's 0600


def test_gsm8k_grader_reads_the_gold_answers():
    gsm8k = pytest.importorskip("passk_plugin.graders.gsm8k")
    for problem in generate_problems(20, seed=5):
        assert gsm8k.extract_answer(problem.answer) == str(problem.value)

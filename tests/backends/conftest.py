"""Helpers the backend tests share: lm_eval requests and a tiny generate_until task."""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval.api.instance import Instance


def instances(args: list[tuple[str, dict]]) -> list[Instance]:
    return [Instance("generate_until", {}, a, idx=i) for i, a in enumerate(args)]


def tiny_repeats_task(tmp_path: Path, gen_kwargs: dict, questions: list[str]) -> Path:
    """A task dir holding `tiny_repeats`: one doc per question (answer "15"), 4 repeats each."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": "15"}) + "\n" for q in questions))
    task_dir = tmp_path / "tasks"
    task_dir.mkdir(exist_ok=True)
    (task_dir / "tiny_repeats.yaml").write_text(
        json.dumps(
            {
                "task": "tiny_repeats",
                "dataset_path": "json",
                "dataset_kwargs": {"data_files": {"test": str(data)}},
                "test_split": "test",
                "output_type": "generate_until",
                "doc_to_text": "{{question}}",
                "doc_to_target": "{{answer}}",
                "repeats": 4,
                "generation_kwargs": gen_kwargs,
                "metric_list": [{"metric": "exact_match"}],
            }
        )
    )
    return task_dir

from __future__ import annotations

import importlib

import lm_eval.tasks

from passk_plugin.compat import SUPPORTED
from passk_plugin.compat import lm_eval as compat
from passk_plugin.paths import tasks_dir

from .conftest import assert_guard_fires


def test_imports_against_the_installed_version():
    compat.check_supported()
    assert compat.SUPPORTED == SUPPORTED["lm_eval"]
    assert hasattr(compat.harness_cli(), "parse_args")


def test_guard_fires_when_the_task_index_is_missing(monkeypatch):
    index = importlib.import_module("lm_eval.tasks._index")
    monkeypatch.delattr(index.TaskIndex, "build")
    assert_guard_fires(
        compat.check_supported, "lm_eval", ("lm-eval",), compat.SUPPORTED, "TaskIndex.build"
    )


def test_guard_fires_when_the_cli_class_is_missing(monkeypatch):
    monkeypatch.delattr(importlib.import_module("lm_eval._cli"), "HarnessCLI")
    assert_guard_fires(
        compat.check_supported, "lm_eval", ("lm-eval",), compat.SUPPORTED, "_cli.HarnessCLI"
    )


def test_task_names_reads_passk_tasks_only():
    names = compat.task_names([tasks_dir()])
    assert {"passk", "gsm8k_passk", "math500_passk_zeroshot", "humaneval_passk"} <= names
    assert "hellaswag" not in names


def test_builtin_tasks_skipped_only_within_the_block(monkeypatch):
    seen = []

    def fake_init(self, *args, **kwargs):
        seen.append(kwargs.get("include_defaults", True))

    monkeypatch.setattr(lm_eval.tasks.TaskManager, "__init__", fake_init)
    original = lm_eval.tasks.TaskManager
    with compat.builtin_tasks_skipped():
        lm_eval.tasks.TaskManager(include_path=str(tasks_dir()))
    assert lm_eval.tasks.TaskManager is original
    lm_eval.tasks.TaskManager()
    assert seen == [False, True]

"""Bad input to `passk sweep` is refused before any merge or model load, in one line.

A merge or a model load here fails the test: the merge functions and lm_eval's evaluation
are replaced by ones that raise, so each refusal is proven to come first.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from passk_plugin.cli import main
from passk_plugin.sweep import evaluation, preflight, resident
from passk_plugin.sweep import point as point_mod
from passk_plugin.sweep.settings import EvalSettings


class Forbidden(AssertionError):
    pass


def _forbidden(*args, **kwargs):
    raise Forbidden("a merge or a model load happened before the input was checked")


@pytest.fixture
def no_work(monkeypatch):
    monkeypatch.setattr(point_mod, "merge_point", _forbidden)
    monkeypatch.setattr(evaluation, "evaluate", _forbidden)
    monkeypatch.setattr(resident.InMemoryModels, "lm_for", _forbidden)


def _sweep(tmp_path: Path, early: Path, late: Path, *extra: str) -> list[str]:
    return [
        "sweep", "--early", str(early), "--late", str(late), "--alphas", "0,1",
        "--tasks", "gsm8k_passk", "--n", "2", "--limit", "1", "--no-progress",
        "--out", str(tmp_path / "run"), *extra,
    ]  # fmt: skip


def _refused(argv: list[str], capsys, *expected: str) -> str:
    t0 = time.perf_counter()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert time.perf_counter() - t0 < 30
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err, err
    return err


def _no_run_recorded(tmp_path: Path) -> None:
    assert not (tmp_path / "run" / "sweep.json").exists()


def test_unknown_task_names_close_matches(tmp_path, tiny_pair, capsys, no_work):
    argv = _sweep(tmp_path, *tiny_pair)
    argv[argv.index("gsm8k_passk")] = "gsm8k_pask"
    _refused(argv, capsys, "unknown task 'gsm8k_pask'", "gsm8k_passk")
    _no_run_recorded(tmp_path)


def test_missing_local_data(tmp_path, tiny_pair, capsys, no_work):
    empty = tmp_path / "data"
    empty.mkdir()
    argv = _sweep(tmp_path, *tiny_pair, "--data-dir", str(empty))
    _refused(argv, capsys, "gsm8k_passk", str(empty / "gsm8k" / "test.jsonl"))
    _no_run_recorded(tmp_path)


def test_k_above_the_tasks_default_n(tmp_path, tiny_pair, capsys, no_work, shared_data):
    argv = _sweep(tmp_path, *tiny_pair, "--k", "32", "--data-dir", str(shared_data))
    argv.remove("--n")
    argv.remove("2")
    _refused(argv, capsys, "k=32", "n=16", "gsm8k_passk")
    _no_run_recorded(tmp_path)


def test_incompatible_checkpoints(tmp_path, tiny_pair, wide_model, capsys, no_work):
    _refused(_sweep(tmp_path, tiny_pair[0], wide_model), capsys, "cannot be merged", "hidden_size")
    _no_run_recorded(tmp_path)


def test_output_that_is_a_file(tmp_path, tiny_pair, capsys, no_work, shared_data):
    (tmp_path / "run").write_text("notes")
    argv = _sweep(tmp_path, *tiny_pair, "--data-dir", str(shared_data))
    _refused(argv, capsys, "is a file")
    assert (tmp_path / "run").read_text() == "notes"


def test_grids_are_bounded(tmp_path, tiny_pair, capsys, no_work):
    argv = _sweep(tmp_path, *tiny_pair)
    argv[argv.index("0,1")] = "0:1:1e-9"
    _refused(argv, capsys, "1000000001 points", "limit of 1000")
    argv[argv.index("0:1:1e-9")] = ""
    _refused(argv, capsys, "empty grid")
    _no_run_recorded(tmp_path)


def test_preflight_reads_the_default_n_without_a_model():
    infos = preflight.task_infos(EvalSettings(tasks=["gsm8k_passk", "math500_passk_zeroshot"]))
    assert infos["gsm8k_passk"].default_n == 16 and infos["gsm8k_passk"].bench == "gsm8k"
    assert infos["math500_passk_zeroshot"].bench == "math500"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_output_directory_rule(tmp_path, tiny_pair, capsys, no_work):
    early, late = tiny_pair
    notes = tmp_path / "run"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    _refused(_sweep(tmp_path, early, late), capsys, str(notes), "--overwrite")
    assert _files(notes) == {"notes.txt": b"mine"}
    # The checkpoints' parent: refused even with --overwrite, nothing written or deleted.
    before = _files(early.parent)
    argv = _sweep(tmp_path, early, late, "--overwrite")
    argv[argv.index(str(notes))] = str(early.parent)
    _refused(argv, capsys, str(early.parent), "holds the input")
    assert _files(early.parent) == before

from __future__ import annotations

from pathlib import Path

import pytest

from passk_plugin.errors import UsageError
from passk_plugin.outputs import MARKER_FILE, claim_output_dir, is_own


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_new_and_empty_directories_are_taken_and_marked(tmp_path):
    new = claim_output_dir(tmp_path / "a" / "b", "report")
    assert new.is_dir() and is_own(new, "report") and not is_own(new, "recipes")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_output_dir(empty, "report") == empty.resolve()
    # Taken again by the same command, refused to another.
    (new / "leaderboard.md").write_text("x")
    assert claim_output_dir(new, "report") == new.resolve()
    with pytest.raises(UsageError, match="passk recipes did not write"):
        claim_output_dir(new, "recipes")


def test_a_foreign_directory_needs_overwrite_and_loses_nothing(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    with pytest.raises(UsageError) as err:
        claim_output_dir(notes, "report", flag="--out")
    message = str(err.value)
    assert f"--out {notes}" in message and "--overwrite" in message and "choose another" in message
    assert not (notes / MARKER_FILE).exists()
    claim_output_dir(notes, "report", overwrite=True)
    assert (notes / "notes.txt").read_text() == "mine" and is_own(notes, "report")


def test_recognised_outputs_are_taken_without_a_marker(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    claim_output_dir(old, "recipes", recognise=lambda p: (p / "manifest.json").is_file())


def test_inputs_are_protected_even_with_overwrite(tmp_path):
    run = tmp_path / "run"
    (run / "early").mkdir(parents=True)
    (run / "early" / "model.safetensors").write_bytes(b"weights")
    before = _files(tmp_path)
    for out in (run, run / "early", tmp_path):
        for overwrite in (False, True):
            with pytest.raises(UsageError, match=r"holds the input .*early.*not even with"):
                claim_output_dir(out, "merge", overwrite=overwrite, inputs=[run / "early"])
    assert _files(tmp_path) == before
    # Beside an input, or below one, is fine.
    claim_output_dir(run / "merged", "merge", inputs=[run / "early", "org/hub-model"])


def test_an_existing_file_is_refused(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("keep")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        claim_output_dir(target, "report", overwrite=True)
    assert target.read_text() == "keep"


# ---------------------------------------------------------------- the commands follow it


def test_recipes_out_follows_the_rule(tiny_pair, tmp_path, capsys):
    from passk_plugin.cli import main

    early, late = tiny_pair
    grid = ["recipes", "--early", str(early), "--late", str(late), "--alphas", "0,1"]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    file_out = tmp_path / "grid.txt"
    file_out.write_text("keep")
    before = _files(early.parent)
    for out, flags, expected in [
        (notes, [], "--overwrite"),
        (file_out, ["--overwrite"], "is a file, not a directory"),
        (early.parent, ["--overwrite"], "holds the input"),
    ]:
        assert main([*grid, "--out", str(out), *flags]) == 2
        err = capsys.readouterr().err
        assert str(out) in err and expected in err and "Traceback" not in err
    assert _files(early.parent) == before and file_out.read_text() == "keep"
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]
    # Its own directory again (a rerun), and a foreign one with --overwrite.
    assert main([*grid, "--out", str(tmp_path / "grid")]) == 0
    assert main([*grid, "--out", str(tmp_path / "grid"), "--alphas", "0.5"]) == 0
    assert main([*grid, "--out", str(notes), "--overwrite"]) == 0
    assert (notes / "notes.txt").read_text() == "mine" and (notes / "manifest.json").is_file()


def test_demo_out_is_refused_before_any_work(tmp_path, capsys):
    from passk_plugin.cli import main

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    assert main(["demo", "--quick", "--out", str(notes)]) == 2
    err = capsys.readouterr().err
    assert str(notes) in err and "--overwrite" in err and "Traceback" not in err
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]

from __future__ import annotations

import json
import os

import pytest

from passk_plugin.sweep_store import (
    DONE_FILE,
    RunStore,
    atomic_write_json,
    sample_record,
)


def test_write_point_is_complete_or_absent(tmp_path):
    store = RunStore(tmp_path)
    final = store.write_point("p", {"results.json": "{}", "samples_t.jsonl": b"x\n"}, {"id": "p"})
    assert final == store.point_dir("p")
    assert sorted(f.name for f in final.iterdir()) == [DONE_FILE, "results.json", "samples_t.jsonl"]
    assert json.loads((final / DONE_FILE).read_text()) == {"id": "p"}
    assert store.is_done("p") and store.done_ids() == ["p"]
    assert [p.name for p in store.points_root.iterdir()] == ["p"]  # no temp dirs left


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    store = RunStore(tmp_path)

    class Boom(Exception):
        pass

    def fail(*args, **kwargs):
        raise Boom

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(Boom):
        store.write_point("p", {"results.json": "{}"}, {})
    assert not store.is_done("p")
    assert list(store.points_root.iterdir()) == []


def test_write_point_keeps_a_finished_copy(tmp_path):
    store = RunStore(tmp_path)
    store.write_point("p", {"results.json": "first"}, {})
    store.write_point("p", {"results.json": "second"}, {})  # e.g. a second worker finishing
    assert (store.point_dir("p") / "results.json").read_text() == "first"


def test_write_point_replaces_an_incomplete_leftover(tmp_path):
    store = RunStore(tmp_path)
    store.point_dir("p").mkdir(parents=True)
    (store.point_dir("p") / "results.json").write_text("partial")
    store.write_point("p", {"results.json": "whole"}, {})
    assert (store.point_dir("p") / "results.json").read_text() == "whole"


def test_bad_file_names_are_refused(tmp_path):
    store = RunStore(tmp_path)
    for name in (DONE_FILE, "a/b", ".hidden"):
        with pytest.raises(ValueError, match="bad file name"):
            store.write_point("p", {name: "x"}, {})


def test_clean_partial_removes_half_written_points(tmp_path):
    store = RunStore(tmp_path)
    store.write_point("done", {"results.json": "{}"}, {})
    (store.points_root / ".tmp-p-1234").mkdir()
    (store.points_root / "half").mkdir()
    removed = store.clean_partial()
    assert sorted(p.name for p in removed) == [".tmp-p-1234", "half"]
    assert [p.name for p in store.points_root.iterdir()] == ["done"]


def test_settings_round_trip_and_atomic_json(tmp_path):
    store = RunStore(tmp_path)
    assert store.read_settings() is None
    store.write_settings({"a": 1})
    assert store.read_settings() == {"a": 1}
    atomic_write_json(tmp_path / "x" / "y.json", {"v": [1, 2]})
    assert json.loads((tmp_path / "x" / "y.json").read_text()) == {"v": [1, 2]}
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["y.json"]


def test_sample_record_matches_lm_eval_jsonl_shape():
    sample = {
        "doc_id": 0,
        "arguments": [("prompt", {"temperature": 1.0})],
        "resps": [["a", "b"]],
        "filtered_resps": [[{"correct": True}]],
        "target": 18,
        "n": 2,
        "c": 1,
    }
    rec = sample_record(sample)
    assert rec["arguments"] == {"gen_args_0": {"arg_0": "prompt", "arg_1": {"temperature": 1.0}}}
    assert rec["resps"] == [["a", "b"]]
    assert rec["filtered_resps"] == [["{'correct': True}"]]
    assert rec["target"] == "18"
    assert (rec["n"], rec["c"]) == (2, 1)
    assert sample["target"] == 18  # the input is not modified


def test_clean_partial_removes_killed_merges_and_remove_merged(tmp_path):
    store = RunStore(tmp_path)
    (store.root / "merged" / "p.tmp-999").mkdir(parents=True)
    store.merged_dir("q").mkdir()
    assert [p.name for p in store.clean_partial()] == ["p.tmp-999"]
    assert store.merged_dir("q").is_dir()  # a finished merge is reused on rerun
    store.remove_merged("q")
    assert not (store.root / "merged").exists()


def test_corrupt_settings_name_the_file_and_the_fix(tmp_path):
    from passk_plugin.errors import DataError
    from passk_plugin.sweep_store import RunStore

    store = RunStore(tmp_path)
    store.settings_path.write_bytes(b'{"tasks": ["gsm8k_passk"],\n\x00\xff')
    with pytest.raises(DataError, match=rf"^{store.settings_path}:2: "):
        store.read_settings()
    store.settings_path.write_text('{"tasks": \n')
    with pytest.raises(DataError, match="corrupt sweep settings file.*--force"):
        store.read_settings()

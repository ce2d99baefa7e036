from __future__ import annotations

import errno
import json

import pytest
import yaml

from passk_plugin.errors import (
    DataError,
    UsageError,
    decode_utf8,
    describe,
    read_json_file,
)


def test_decoding_names_file_line_and_column():
    data = b"line one\nzwei\n" + b"dr\xffi\n"
    with pytest.raises(UsageError, match=r"^f\.jsonl:3: not UTF-8 text \(byte 0xff at column 3\)"):
        decode_utf8(data, "f.jsonl")
    with pytest.raises(UsageError, match=r"^f\.jsonl:12:"):
        decode_utf8(b"\xfe", "f.jsonl", first_line=12)
    assert decode_utf8("ρ = c/n".encode(), "f") == "ρ = c/n"


def test_corrupt_json_names_file_and_line(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"results":\n')
    with pytest.raises(DataError, match=rf"^{path}:2: corrupt stored result, not valid JSON"):
        read_json_file(path, what="stored result")
    path.write_text(json.dumps({"a": 1}))
    assert read_json_file(path) == {"a": 1}


@pytest.mark.parametrize(
    ("err", "code", "words"),
    [
        (UsageError("--out x: choose another"), 2, "--out x: choose another"),
        (DataError("f.json:2: corrupt"), 1, "f.json:2: corrupt"),
        (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/x"), 1, "/mnt/ro/x: read-only"),
        (OSError(errno.ENOSPC, "No space left on device", "/d/x"), 1, "/d/x: no space left"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), 1, "/d: is a directory"),
        (FileNotFoundError(errno.ENOENT, "No such file", "/d/f"), 2, "/d/f: not found"),
        (FileNotFoundError("recipe not found: r.yaml"), 2, "recipe not found: r.yaml"),
        (ValueError("k=9 is larger than n"), 2, "k=9 is larger than n"),
        (RuntimeError("boom\ndeep detail"), 1, "RuntimeError: boom\n"),
    ],
)
def test_every_failure_is_one_or_two_lines(err, code, words):
    message, exit_code = describe(err)
    assert exit_code == code and words in message
    assert len(message.splitlines()) <= 2


def test_yaml_errors_say_where():
    with pytest.raises(yaml.YAMLError) as info:
        yaml.safe_load("a: [1,\nb: 2\n")
    message, code = describe(info.value)
    assert code == 2 and "line " in message and "not valid YAML" in message

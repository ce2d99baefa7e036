from __future__ import annotations

import os
import subprocess
import sys

import pytest

from passk_plugin.atomic import atomic_write_text
from passk_plugin.temps import _HOST


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "sub" / "results.json", "{}\n")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert path.read_text() == "{}\n"
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    leftover = tmp_path / f".results.json.tmp-{_HOST}-{proc.pid}-abcd1234"
    live = tmp_path / f".results.json.tmp-{_HOST}-{os.getpid()}-abcd1234"
    leftover.write_text("half")
    live.write_text("being written")
    atomic_write_text(tmp_path / "results.json", "{}")
    assert not leftover.exists() and live.exists()

from __future__ import annotations

import os
import subprocess
import sys
import time

from passk_plugin.temps import _HOST, remove_stale_temps, temp_name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_names_are_unique_and_say_whose(tmp_path):
    names = {temp_name("out") for _ in range(100)}
    assert len(names) == 100
    assert all(n.startswith(f"out.tmp-{_HOST}-{os.getpid()}-") for n in names)


def test_only_dead_local_writers_temporaries_are_removed(tmp_path):
    target = tmp_path / "out"
    dead, live = _dead_pid(), os.getpid()
    stale = [f"out.tmp-{dead}", f"out.tmp-{_HOST}-{dead}-abcd1234"]
    kept = [
        f"out.tmp-{live}",
        f"out.tmp-{_HOST}-{live}-abcd1234",
        f"out.tmp-elsewhere-{dead}-abcd1234",  # another host: cannot tell, kept
        "out.tmp-notes",
        "outer.tmp-1",
        "out",
    ]
    for name in stale + kept:
        (tmp_path / name).mkdir()
    removed = remove_stale_temps(target)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_hidden_temporaries_and_old_random_names(tmp_path):
    target = tmp_path / "summary.json"
    dead = _dead_pid()
    old = tmp_path / ".summary.json.k2j4h1.tmp"  # mkstemp's naming, from older versions
    fresh = tmp_path / ".summary.json.zz9911.tmp"
    gone = tmp_path / f".summary.json.tmp-{_HOST}-{dead}-abcd1234"
    for path in (old, fresh, gone):
        path.write_text("partial")
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    removed = remove_stale_temps(target, hidden=True)
    assert sorted(removed) == sorted([old, gone]) and fresh.exists()

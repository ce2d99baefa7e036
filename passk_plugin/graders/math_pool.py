"""MATH answer checks for many problems at once, spread over worker processes.

A job is one problem: its gold answer and its distinct answers (see
:func:`passk_plugin.graders.math.check_distinct`). Workers are fresh interpreters started
with ``subprocess`` (``python -c``), not ``multiprocessing``: a pool then needs no
``if __name__ == "__main__":`` guard in the user's script, and a multi-threaded caller (an
lm_eval run with torch threads) is never forked. Each worker checks in its main thread,
where math-verify's work can be bounded with SIGALRM.

A worker that does not answer within a generous bound for its job (every check at its time
limit, twice over) is killed and replaced, and that job is checked again in this process,
answer by answer under :func:`passk_plugin.graders.math.compare`'s own guards.

Small batches are checked in this process: starting a worker (importing sympy and
math-verify) costs about a second, more than a few hundred checks.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from passk_plugin.graders import Verdict
from passk_plugin.graders import math as math_grader
from passk_plugin.graders.sandbox import available_cpus

Checked = list[tuple[math_grader.Outcome, int]]

# Below this many distinct answers per worker, a worker's start-up costs more than it saves.
MIN_ANSWERS_PER_WORKER = 400
_START_LIMIT_S = 120.0
_COMMAND = "from passk_plugin.graders.math_pool import _serve; _serve()"


def check_problems(
    jobs: Sequence[tuple[str, Sequence[str]]],
    timeout: float = 5.0,
    workers: int | None = None,
    classify: bool = True,
) -> list[Checked]:
    """check_distinct(gold, answers) for every (gold, answers) job, in job order.

    workers: processes to use (default: every CPU this process may use); fewer are started
    when there is too little work to pay for them, none for a small batch.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    total = sum(len(answers) for _, answers in jobs)
    wanted = min(workers or available_cpus(), total // MIN_ANSWERS_PER_WORKER, len(jobs))
    if wanted < 2 and math_grader._alarm_usable():
        return [
            math_grader.check_distinct(gold, answers, timeout, classify) for gold, answers in jobs
        ]
    return _Pool(max(1, wanted)).run(jobs, timeout, classify)


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, env.get("PYTHONPATH", "")) if p
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", _COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        self._finalizer = weakref.finalize(self, math_grader.kill_worker, self.process)
        assert self.process.stdout is not None and self.process.stdin is not None
        self.rfd = self.process.stdout.fileno()
        self.pending = b""
        self.ready = False
        self.job: int | None = None
        self.deadline = time.monotonic() + _START_LIMIT_S  # to start, then per job

    def send(self, job: int, payload: dict, deadline: float) -> bool:
        self.job, self.deadline = job, deadline
        try:
            self.process.stdin.write(json.dumps(payload).encode() + b"\n")  # type: ignore[union-attr]
        except OSError:
            return False
        return True

    def read_lines(self) -> list[bytes] | None:
        """Complete lines now readable; None at end of file (the worker died)."""
        chunk = os.read(self.rfd, 1 << 16)
        if not chunk:
            return None
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        return lines

    def close(self) -> None:
        self._finalizer()


class _Pool:
    def __init__(self, size: int) -> None:
        self.size = size

    def run(
        self, jobs: Sequence[tuple[str, Sequence[str]]], timeout: float, classify: bool
    ) -> list[Checked]:
        results: list[Checked | None] = [None] * len(jobs)
        workers = [_Worker() for _ in range(self.size)]
        try:
            self._drive(workers, jobs, timeout, classify, results)
        finally:
            for worker in workers:
                worker.close()
        return results  # type: ignore[return-value]

    def _drive(
        self,
        workers: list[_Worker],
        jobs: Sequence[tuple[str, Sequence[str]]],
        timeout: float,
        classify: bool,
        results: list[Checked | None],
    ) -> None:
        queue = deque(range(len(jobs)))

        def fallback(job: int) -> None:
            gold, answers = jobs[job]
            # Off the workers' main thread or not, compare() bounds every check.
            outcomes = [math_grader.compare(gold, a, timeout) for a in answers]
            results[job] = [(o, -1 if o == "equal" else i) for i, o in enumerate(outcomes)]

        def dispatch(worker: _Worker) -> None:
            while queue:
                job = queue.popleft()
                gold, answers = jobs[job]
                # Gold, every answer and the clustering each at the limit, twice over.
                bound = 2.0 * timeout * (len(answers) + 2) + 5.0
                payload = {
                    "gold": gold,
                    "answers": list(answers),
                    "timeout": timeout,
                    "classify": classify,
                }
                if worker.send(job, payload, time.monotonic() + bound):
                    return
                fallback(job)
                replace(worker)
                return

        def replace(worker: _Worker) -> None:
            worker.close()
            workers[workers.index(worker)] = _Worker()

        while True:
            for worker in workers:
                if worker.ready and worker.job is None and queue:
                    dispatch(worker)
            if not queue and all(w.job is None for w in workers):
                break  # nothing left; workers still starting are not needed
            by_fd = {w.rfd: w for w in workers}
            waiting = [w.deadline for w in workers if w.job is not None or not w.ready]
            wait = max(0.0, min(waiting) - time.monotonic()) if waiting else 0.0
            readable, _, _ = select.select(list(by_fd), [], [], wait)
            for fd in readable:
                worker = by_fd[fd]
                lines = worker.read_lines()
                if lines is None:
                    if worker.job is not None:
                        job, worker.job = worker.job, None
                        fallback(job)
                    elif not worker.ready:
                        raise RuntimeError(
                            "a math-verify worker process did not start; check that "
                            f"`{sys.executable} -c 'import passk_plugin.graders.math, "
                            "math_verify'` works"
                        )
                    replace(worker)
                    continue
                for line in lines:
                    line = line.strip()
                    if not worker.ready:
                        worker.ready = line == b"ready"
                        continue
                    if worker.job is not None:
                        results[worker.job] = [(o, int(h)) for o, h in json.loads(line)]
                        worker.job = None
                if worker.ready and worker.job is None:
                    dispatch(worker)
            now = time.monotonic()
            for worker in list(workers):
                if worker.job is not None and now > worker.deadline:
                    job, worker.job = worker.job, None
                    replace(worker)
                    fallback(job)
                elif not worker.ready and now > worker.deadline:
                    raise RuntimeError(
                        f"a math-verify worker process did not start within {_START_LIMIT_S} s"
                    )


def _serve() -> None:
    """A worker's loop: one JSON job per stdin line, its checked list per stdout line."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt replies
    # Warm up before "ready": math-verify builds its LaTeX parser on first use, which would
    # otherwise be charged to the first job's time limit.
    math_grader.warm_up()
    replies.write(b"ready\n")
    for line in sys.stdin.buffer:
        job = json.loads(line)
        checked = math_grader.check_distinct(
            job["gold"], job["answers"], float(job["timeout"]), bool(job["classify"])
        )
        replies.write(json.dumps(checked).encode() + b"\n")


def grade_problems(
    problems: Sequence[tuple[Sequence[str], dict]],
    timeout: float = 5.0,
    workers: int | None = None,
    classify: bool = True,
) -> list[list[Verdict]]:
    """Verdicts of every sample of every (completions, problem), problems in parallel and
    each distinct normalised answer of a problem checked once."""
    plans = [
        math_grader.plan_problem([math_grader.extract_answer(t) for t in texts], problem)
        for texts, problem in problems
    ]
    return grade_plans(plans, timeout, workers, classify)


def grade_plans(
    plans: Sequence[math_grader.ProblemPlan],
    timeout: float = 5.0,
    workers: int | None = None,
    classify: bool = True,
) -> list[list[Verdict]]:
    """Per-sample verdicts of planned problems (see math.plan_problem), in order."""
    checked = check_problems(
        [(plan.gold, plan.representatives) for plan in plans], timeout, workers, classify
    )
    return [math_grader.finish_problem(p, c) for p, c in zip(plans, checked, strict=True)]

"""`passk score` at research scale: time and peak memory for problems x n MATH-500 samples.

Writes a samples file (bench/_math_answers.py's realistic distribution, default 500 problems
x 1024 samples = 512k lines), runs `passk score --task math500` on it under GNU time, and
reports the wall time, the CPU time (scoring process and workers), the peak resident memory
(of the largest single process: the scoring process or a grading worker), and checks the
per-sample results file has one line per sample.

    python bench/bench_score_scale.py --problems 500 --n 1024 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _math_answers
from _common import DATA, REPO


def write_samples(path: Path, rows: list[dict], problems: int, n: int, seed: int) -> int:
    rng = random.Random(seed)
    lines = 0
    with path.open("w") as out:
        for i in range(problems):
            for text in _math_answers.problem_samples(rows, i, n, rng):
                out.write(json.dumps({"task_id": str(i), "completion": text}) + "\n")
                lines += 1
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--forecast", type=int, default=None, help="also pass --forecast K")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    rows = _math_answers.load_math500(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples.jsonl"
        lines = write_samples(samples, rows, args.problems, args.n, seed=0)
        size_mb = samples.stat().st_size / 2**20
        # GNU time's peak is the largest single process: the scoring process, or a grading
        # worker if one grew larger.
        command = [
            "/usr/bin/time", "-v", sys.executable, "-c",
            "import sys; from passk_plugin.cli import main; sys.exit(main())", "score",
            "--task", "math500", "--samples", str(samples),
            "--data", str(args.data / "math500" / "test.jsonl"),
            "--workers", str(args.workers), "--out", str(Path(tmp) / "summary.json"),
        ]  # fmt: skip
        if args.forecast:
            command += ["--forecast", str(args.forecast)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stdout, done.stderr, sep="\n")
            return 1
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
        # CPU seconds of the scoring process and its grading workers: on a busy machine the
        # wall time mostly measures the other jobs, CPU / cores what an idle one would take.
        cpu = sum(
            float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr)[1])
            for kind in ("User", "System")
        )
        load = os.getloadavg()[0]
        results = Path(f"{samples}_results.jsonl")
        with results.open() as fh:
            result_lines = sum(1 for _ in fh)
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    print(done.stdout)
    report = {
        "problems": args.problems,
        "n": args.n,
        "samples": lines,
        "samples_file_mb": round(size_mb, 1),
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average_after": round(load, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "result_lines": result_lines,
        "pass@1": summary["results"]["pass@1"],
    }
    print(json.dumps(report))
    print(
        f"| {args.problems} x {args.n} | {lines} | {size_mb:.0f} MB | {args.workers} | "
        f"{seconds:.1f} s | {cpu:.1f} s | {load:.0f} | {peak_kb / 1024:.0f} MB |"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if result_lines == lines else 1


if __name__ == "__main__":
    sys.exit(main())

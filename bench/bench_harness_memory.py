"""Memory of lm_eval's per-request objects for a passk task at large n, against passk's grading.

Builds math500_passk_zeroshot's requests (lm_eval keeps one Instance per problem, repeated n
times by reference), attaches n responses of `--response-chars` characters to each, runs
passk's grading filter on them, and reports what tracemalloc attributes to each step (after
importing math-verify and sympy, which cost tens of MB once). Compare with the peak RSS of the
whole run (`/usr/bin/time -v passk eval ...`, bench/README.md) to see what dominates.

    PASSK_DATA_DIR=/path/to/shared/data python bench/bench_harness_memory.py --n 1024 --limit 16
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--response-chars", type=int, default=2000, help="length of each answer")
    args = parser.parse_args(argv)

    from lm_eval.tasks import TaskManager

    from passk_plugin import harness
    from passk_plugin.paths import tasks_dir

    manager = TaskManager(
        include_path=str(tasks_dir()), include_defaults=False, metadata={"n": args.n}
    )
    task = manager.load(["math500_passk_zeroshot"])["tasks"]["math500_passk_zeroshot"]
    harness.grade_math([["$\\boxed{1}$"]], [{"answer": "1"}], workers=1)  # imports, parser
    gc.collect()
    tracemalloc.start()
    task.build_all_requests(limit=args.limit, rank=0, world_size=1)
    instances = task.instances
    built, _ = tracemalloc.get_traced_memory()
    # lm_eval keeps one Instance per problem (its `repeats` is n) and appends the n responses
    # to it; distinct strings, as real samples are (a shared string would be counted once).
    for i, instance in enumerate(instances):
        for j in range(args.n):
            text = f"{i} {j} " + "x" * args.response_chars + " so $\\boxed{" + str(j % 7) + "}$"
            instance.resps.append(text)
    with_responses, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    docs = [instance.doc for instance in instances]
    resps = [instance.resps for instance in instances]
    verdicts = harness.grade_math(resps, docs, timeout=5.0, workers=1)
    after_grading, grading_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report = {
        "instances": len(instances),
        "responses": sum(len(r) for r in resps),
        "instances_mb": round(built / 2**20, 1),
        "instance_bytes_each": round(built / len(instances)),
        "responses_mb": round((with_responses - built) / 2**20, 1),
        "grading_peak_extra_mb": round((grading_peak - with_responses) / 2**20, 1),
        "verdicts_kept_mb": round((after_grading - with_responses) / 2**20, 1),
        "verdicts": sum(len(v) for v in verdicts),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What `passk eval` saves by not indexing lm_eval's built-in tasks when only passk's are asked.

Builds lm_eval's ``TaskManager`` both ways, alternately: as lm_eval's CLI does by default (all
built-in tasks plus passk's task directory) and as ``passk eval`` does when every requested task
is passk's (passk's directory only). Prints how many tasks each indexes and the median seconds.

    .venv/bin/python bench/bench_task_index.py --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from lm_eval.tasks import TaskManager

from passk_plugin.paths import tasks_dir


def _build(include_defaults: bool) -> tuple[float, int]:
    start = time.perf_counter()
    manager = TaskManager(include_path=[str(tasks_dir())], include_defaults=include_defaults)
    return time.perf_counter() - start, len(manager.all_tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    times: dict[bool, list[float]] = {True: [], False: []}
    counts: dict[bool, int] = {}
    for rep in range(args.repeats):
        for defaults in (True, False) if rep % 2 == 0 else (False, True):
            seconds, counts[defaults] = _build(defaults)
            times[defaults].append(seconds)
    full, ours = statistics.median(times[True]), statistics.median(times[False])
    print("| TaskManager | tasks, groups and tags indexed | median s |")
    print("|---|---|---|")
    print(f"| built-in + passk (lm_eval's default) | {counts[True]} | {full:.2f} |")
    print(f"| passk only (`passk eval`, passk tasks) | {counts[False]} | {ours:.2f} |")
    print(f"\nsaved per run: {full - ours:.1f} s (medians of {args.repeats})")


if __name__ == "__main__":
    main()

"""The demo's targets, checked on one finished demo run from its stored per-problem results.

Shared by `demo_seeds.py` (three seeds) and `demo_readme.py` (the README's table). Every
difference is point − reference over the same held-out problems with passk's 95%
paired-bootstrap interval (`passk_plugin.report.paired.compare_points`, the function behind
the report's paired.json, seeded); a difference counts when its interval excludes 0.

1. the late checkpoint's Pass@k_max is below the early one's and its Pass@1 above;
2. some α strictly between 0 and 1 beats the late checkpoint on Pass@k_max with no
   significant loss on Pass@1 (the one with the largest Pass@k_max gain is reported);
3. no decoding point of the late checkpoint reaches that α's Pass@1 and Pass@k_max at once:
   each is significantly below it on at least one of the two.

    python bench/demo_targets.py OUT/run [--early-step 25 --late-step 600]

prints the tables for one demo run from its finished points (a run still under way too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TASK = "gsm8k_passk_zeroshot"


@dataclass(frozen=True)
class Diff:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    @property
    def above(self) -> bool:
        return self.low > 0

    @property
    def below(self) -> bool:
        return self.high < 0


@dataclass
class Targets:
    k: int
    table: str  # markdown: every point against the late checkpoint
    rows: list[tuple[str, str]]  # (target, measured numbers and verdict) for the README
    met: dict[str, bool]


def _label(r) -> str:
    p = r.point
    if p.method == "checkpoint":
        return f"checkpoint, step {p.step}"
    if p.method == "wise-ft":
        return f"WiSE-FT α = {p.alpha:g}"
    return "late, " + ", ".join(f"{k} = {v:g}" for k, v in p.gen_kwargs().items())


def check(run_dir: str | Path, early_step: int, late_step: int) -> Targets:
    from passk_plugin.report.collect import collect_run
    from passk_plugin.report.paired import compare_points, k_max

    records = [r for r in collect_run(run_dir) if r.point is not None and TASK in r.tasks]
    k = k_max(records, TASK)
    assert k is not None, f"{run_dir}: no per-problem results"
    names = ["pass@1", f"pass@{k}"]

    def diff(a, b) -> tuple[Diff, Diff]:
        res = compare_points(a, b, TASK, names)
        assert res is not None, (a.id, b.id)
        d1, dk = (Diff(res[m].delta, res[m].ci_low, res[m].ci_high) for m in names)
        return d1, dk

    def value(r, metric: str) -> float:
        return r.tasks[TASK].metrics[metric]

    ckpts = {r.point.step: r for r in records if r.point.method == "checkpoint"}
    early, late = ckpts[early_step], ckpts[late_step]
    merges = sorted(
        (r for r in records if r.point.method == "wise-ft"), key=lambda r: r.point.alpha
    )
    decoding = [r for r in records if r.point.method == "decoding"]

    lines = [
        f"| point | Pass@1 | Pass@{k} | Pass@1 − late [95% CI] | Pass@{k} − late [95% CI] |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in sorted(ckpts.values(), key=lambda r: r.point.step) + merges + decoding:
        label = _label(r)
        label += " (early)" if r is early else " (late)" if r is late else ""
        d1, dk = ("—", "—") if r is late else diff(r, late)
        lines.append(
            f"| {label} | {value(r, names[0]):.3f} | {value(r, names[1]):.3f} | {d1} | {dk} |"
        )

    rows: list[tuple[str, str]] = []
    c1, ck = diff(late, early)
    t1 = ck.below and c1.above
    rows.append(
        (
            f"1. late (step {late_step}) below early (step {early_step}) on Pass@{k}, above on "
            "Pass@1",
            f"late − early: Pass@{k} {ck}, Pass@1 {c1}: **{'met' if t1 else 'not met'}**",
        )
    )
    best = None
    for r in merges:
        d1, dk = diff(r, late)
        if 0 < r.point.alpha < 1 and dk.above and not d1.below:
            if best is None or dk.mean > best[2].mean:
                best = (r, d1, dk)
    t2 = best is not None
    t3 = False
    if not merges:
        rows.append(
            (f"2. some α in (0, 1) beats late on Pass@{k}", "no WiSE-FT point finished yet")
        )
    elif best is None:
        rows.append(
            (
                f"2. some α in (0, 1) beats late on Pass@{k}, no significant Pass@1 loss",
                "no α does: **not met**",
            )
        )
        rows.append((f"3. no decoding point reaches that α on Pass@1 and Pass@{k}", "—"))
    else:
        r, d1, dk = best
        rows.append(
            (
                f"2. some α in (0, 1) beats late on Pass@{k}, no significant Pass@1 loss",
                f"α = {r.point.alpha:g} − late: Pass@{k} {dk}, Pass@1 {d1}: **met**",
            )
        )
        parts, reached = [], []
        for t in decoding:
            a1, ak = diff(r, t)
            parts.append(f"{_label(t)}: Pass@1 {a1}, Pass@{k} {ak}")
            if not (a1.above or ak.above):
                reached.append(_label(t))
        t3 = bool(decoding) and not reached
        verdict = (
            "**met**"
            if t3
            else f"**not met** ({'; '.join(reached)} reaches it)"
            if reached
            else "no decoding point finished yet"
        )
        rows.append(
            (
                f"3. no decoding point reaches α = {r.point.alpha:g} on Pass@1 and Pass@{k}",
                f"α = {r.point.alpha:g} − " + "; ".join(parts) + f": {verdict}",
            )
        )
    return Targets(k, "\n".join(lines), rows, {"1": t1, "2": t2, "3": t3})


def targets_markdown(targets: Targets) -> str:
    out = ["| target | measured (Δ [95% CI], paired over problems) |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in targets.rows]
    return "\n".join(out)


def main() -> int:
    """`python bench/demo_targets.py RUN_DIR`: the tables for a demo's run, finished or not."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("run_dir", type=Path, help="a demo's OUT/run")
    parser.add_argument("--early-step", type=int, default=25)
    parser.add_argument("--late-step", type=int, default=600)
    args = parser.parse_args()
    targets = check(args.run_dir, args.early_step, args.late_step)
    print(targets.table + "\n\n" + targets_markdown(targets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

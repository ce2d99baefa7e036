"""The bias-variance view of Pass@k per point and task, from per-problem success rates.

With rho_x = c_x / n_x the success rate of problem x, Pass@k = 1 - E_x[(1 - rho_x)^k].
By Jensen, E[(1 - rho)^k] = (1 - E rho)^k + excess with excess >= 0: the Jensen term is
what the mean Pass@1 alone would allow, and the excess is what spread in rho over problems
(some always solved, some never) costs at k samples. The numbers come from
passk_plugin.metrics.bias_variance on the stored per-problem counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from passk_plugin.metrics import bias_variance, default_ks
from passk_plugin.report.collect import PointRecord, TaskResult


@dataclass(frozen=True)
class BiasVarianceRow:
    point: str
    method: str | None
    alpha: float | None
    temperature: float | None
    task: str
    k: int
    problems: int
    mean_rho: float
    var_rho: float
    frac_rho_0: float  # problems never solved
    frac_rho_1: float  # problems always solved
    jensen_term: float  # (1 - mean rho)^k
    excess: float  # E[(1 - rho)^k] - (1 - mean rho)^k
    pass_at_k_of_rho: float  # 1 - E[(1 - rho)^k]
    pass_at_k_stored: float | None  # the unbiased estimate lm_eval stored, for comparison


def ks_for(task: TaskResult) -> list[int]:
    if task.ks:
        return task.ks
    if task.n is not None and task.n.size:
        return default_ks(int(task.n.min()))
    return [1]


def bias_variance_rows(records: Sequence[PointRecord]) -> list[BiasVarianceRow]:
    rows = []
    for rec in records:
        for name, task in sorted(rec.tasks.items()):
            if task.rho is None or task.rho.size == 0:
                continue
            rho = np.asarray(task.rho, dtype=np.float64)
            for k in ks_for(task):
                bv = bias_variance(rho, k)
                rows.append(
                    BiasVarianceRow(
                        point=rec.id,
                        method=rec.method,
                        alpha=rec.alpha,
                        temperature=rec.temperature,
                        task=name,
                        k=k,
                        problems=int(rho.size),
                        mean_rho=bv["mean_rho"],
                        var_rho=bv["var_rho"],
                        frac_rho_0=float(np.mean(rho == 0.0)),
                        frac_rho_1=float(np.mean(rho == 1.0)),
                        jensen_term=bv["jensen_term"],
                        excess=bv["excess"],
                        pass_at_k_of_rho=bv["pass_at_k_of_rho"],
                        pass_at_k_stored=task.metrics.get(f"pass@{k}"),
                    )
                )
    return rows


_FIELDS = [f for f in BiasVarianceRow.__dataclass_fields__]

# Column headers a reader understands, for the Markdown and HTML tables.
HEADERS = {
    "task": "task",
    "k": "k",
    "problems": "problems",
    "mean_rho": "mean ρ",
    "var_rho": "var ρ",
    "frac_rho_0": "ρ = 0 share",
    "frac_rho_1": "ρ = 1 share",
    "jensen_term": "Jensen term",
    "excess": "excess",
    "pass_at_k_of_rho": "Pass@k plug-in",
    "pass_at_k_stored": "Pass@k stored",
}
TIPS = {
    "frac_rho_0": "share of problems never solved",
    "frac_rho_1": "share of problems always solved",
    "jensen_term": "(1 − mean ρ)^k: what mean Pass@1 alone allows",
    "excess": "E[(1 − ρ)^k] − (1 − mean ρ)^k: what the spread of ρ costs",
    "pass_at_k_of_rho": "1 − E[(1 − ρ)^k] from the per-problem ρ",
    "pass_at_k_stored": "the unbiased estimate stored with the results",
}


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if not math.isfinite(v) else f"{v:.4f}"
    return str(v)


def to_markdown(rows: Sequence[BiasVarianceRow]) -> str:
    head = ["point", *HEADERS.values()]
    lines = [
        "# Bias-variance view of Pass@k",
        "",
        "ρ is a problem's success rate c/n. 1 − Pass@k = E[(1−ρ)^k] = (1−mean ρ)^k + excess: "
        "the Jensen term (1−mean ρ)^k depends on mean Pass@1 alone; the excess (≥ 0) is what "
        "the spread of ρ over problems costs. ρ = 0 / ρ = 1 share: problems never / always "
        "solved. Pass@k stored is the unbiased estimate; Pass@k plug-in is 1−E(1−ρ)^k.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for r in rows:
        cells = [
            r.point,
            r.task,
            r.k,
            r.problems,
            r.mean_rho,
            r.var_rho,
            r.frac_rho_0,
            r.frac_rho_1,
            r.jensen_term,
            r.excess,
            r.pass_at_k_of_rho,
            r.pass_at_k_stored,
        ]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def to_csv(rows: Sequence[BiasVarianceRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_FIELDS)
    for r in rows:
        w.writerow(
            [
                "" if v is None else (repr(v) if isinstance(v, float) else v)
                for v in asdict(r).values()
            ]
        )
    return buf.getvalue()


def to_json(rows: Sequence[BiasVarianceRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False) + "\n"

"""Reading lm_eval's results blocks: metric values and stderrs per task, by filter.

Shared by evaluation (a point's summary) and reporting, so neither imports the other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

PREFERRED_FILTER = "all"
# Per-problem fields a task may log beside its metrics; they are counts, not scores.
NON_METRIC_KEYS = frozenset({"alias", "n", "c", "samples", "name", "sample_len"})
_PASS = re.compile(r"^pass@(\d+)$")
_MAJ = re.compile(r"^maj@(\d+)$")


def metric_sort_key(name: str) -> tuple[int, int, str]:
    if m := _PASS.match(name):
        return (0, int(m.group(1)), name)
    if m := _MAJ.match(name):
        return (1, int(m.group(1)), name)
    return (2, 0, name)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def split_metrics(
    task_results: Mapping[str, Any],
) -> tuple[dict[str, float], dict[str, float], str | None]:
    """lm_eval's "metric,filter" keys -> ({metric: value}, {metric: stderr}, filter).

    Uses the "all" filter (every sample scored) when there is one, else the first filter.
    lm_eval writes "N/A" for a stderr it did not compute; those become NaN.
    """
    by_filter: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for key, value in task_results.items():
        if "," not in key:
            continue
        name, filt = key.split(",", 1)
        vals, errs = by_filter.setdefault(filt, ({}, {}))
        if name.endswith("_stderr"):
            base = name[: -len("_stderr")]
            errs[base] = float(value) if _is_number(value) else math.nan
        elif _is_number(value) and name not in NON_METRIC_KEYS:
            vals[name] = float(value)
    if not by_filter:
        return {}, {}, None
    filt = PREFERRED_FILTER if PREFERRED_FILTER in by_filter else next(iter(by_filter))
    vals, errs = by_filter[filt]
    vals = dict(sorted(vals.items(), key=lambda kv: metric_sort_key(kv[0])))
    return vals, {k: errs.get(k, math.nan) for k in vals}, filt

"""The leaderboard: one row per model point, one column group per task, in four formats.

`build_leaderboard` turns collected records into a `Leaderboard`; the `to_*` functions render
it. A column's top value is marked "best" only where a paired test over problems puts it ahead
of every other point; otherwise the top value and the points within noise of it are marked as
tied. The marks are decided once here and shown by every format.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import passk_plugin.report.paired as paired
import passk_plugin.report.points as points
import passk_plugin.report.significance as significance
from passk_plugin.report.collect import PointRecord, metric_sort_key

AVG = "avg"
BEST, TIE = "best", "tie"

_PASS = re.compile(r"^pass@(\d+)$")
_MAJ = re.compile(r"^maj@(\d+)$")
_GPASS = re.compile(r"^g-pass@(\d+)_(.+)$")
_MGPASS = re.compile(r"^mg-pass@(\d+)$")
# Diversity figures (answer classes, entropy, shares of rho = 0 / 1) are always shown.
_DIVERSITY = re.compile(r"distinct|entropy|classes|rho", re.IGNORECASE)


_NAMES = {
    "rho0_share": "ρ = 0 share",
    "rho1_share": "ρ = 1 share",
    "distinct_answers": "distinct answers",
    "answer_entropy": "answer entropy",
}


def short_header(metric: str) -> str:
    """ "pass@16" -> "Pass@16", "g-pass@16_0.5" -> "G-Pass@16 τ=0.5"; others unchanged but
    for underscores."""
    if m := _PASS.match(metric):
        return f"Pass@{m[1]}"
    if m := _GPASS.match(metric):
        return f"G-Pass@{m[1]} τ={m[2]}"
    if m := _MGPASS.match(metric):
        return f"mG-Pass@{m[1]}"
    return _NAMES.get(metric, metric.replace("_", " "))


def is_key_metric(metric: str, k_max: int | None) -> bool:
    """The metrics a reader needs first: Pass@1, Pass@k_max, maj@k_max, the diversity figures."""
    if metric in ("pass@1", f"pass@{k_max}", f"maj@{k_max}"):
        return True
    return bool(_DIVERSITY.search(metric))


@dataclass(frozen=True)
class Column:
    key: str  # "<task>/<metric>", or "avg/<metric>"
    task: str
    metric: str
    shown: bool = True  # shown by default; the rest sit behind the "all metrics" toggle

    @property
    def header(self) -> str:
        return short_header(self.metric)

    @property
    def label(self) -> str:
        return f"{self.task} {self.header}"


@dataclass
class Row:
    id: str
    label: str  # short name: "α=0.5", "T=1 (late)"
    method: str | None
    alpha: float | None
    temperature: float | None
    colour: str = "#777777"
    values: dict[str, float] = field(default_factory=dict)
    stderrs: dict[str, float] = field(default_factory=dict)
    # task -> the point beats the late checkpoint on Pass@k_max without losing Pass@1
    beats_late: dict[str, bool] = field(default_factory=dict)


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    # column key -> row id -> BEST (significantly ahead of every other row) or TIE
    marks: dict[str, dict[str, str]]
    k_max: dict[str, int]
    problems: dict[str, int]
    late_id: str | None = None

    @property
    def best(self) -> dict[str, list[str]]:
        return {
            k: [rid for rid, m in v.items() if m == BEST]
            for k, v in self.marks.items()
            if BEST in v.values()
        }

    def mark(self, row: Row, col: Column) -> str | None:
        return self.marks.get(col.key, {}).get(row.id)

    def is_best(self, row: Row, col: Column) -> bool:
        return self.mark(row, col) == BEST

    @property
    def tasks(self) -> list[str]:
        return list(dict.fromkeys(c.task for c in self.columns))

    def task_columns(self, task: str) -> list[Column]:
        return [c for c in self.columns if c.task == task]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def build_leaderboard(
    records: Sequence[PointRecord], pair_rows: Sequence[paired.PairedRow] | None = None
) -> Leaderboard:
    """The leaderboard of `records`; `pair_rows` (report.paired.paired_rows, computed here when
    not given) decide the ★ marks."""
    if pair_rows is None:
        pair_rows = paired.paired_rows(records)
    metrics_of: dict[str, set[str]] = {}
    problems: dict[str, int] = {}
    for rec in records:
        for task, tr in rec.tasks.items():
            metrics_of.setdefault(task, set()).update(tr.metrics)
            if tr.rho is not None:
                problems[task] = max(problems.get(task, 0), int(tr.rho.size))
    tasks = sorted(metrics_of)
    k_max = {t: k for t in tasks if (k := points.kmax(records, t)) is not None}
    columns = [
        Column(f"{t}/{m}", t, m, is_key_metric(m, k_max.get(t)))
        for t in tasks
        for m in sorted(metrics_of[t], key=metric_sort_key)
    ]
    shared = set.intersection(*(metrics_of[t] for t in tasks)) if len(tasks) > 1 else set()
    # A mean over different tasks mixes problem sets; it stays behind the toggle.
    columns += [Column(f"{AVG}/{m}", AVG, m, False) for m in sorted(shared, key=metric_sort_key)]

    colours = points.point_colours(records)
    late = points.late_point(records)
    rows = []
    for rec in points.reading_order(records):
        row = Row(
            rec.id,
            points.short_label(rec, records),
            rec.method,
            rec.alpha,
            rec.temperature,
            colours.get(rec.id, "#777777"),
        )
        for t, tr in rec.tasks.items():
            for m, v in tr.metrics.items():
                row.values[f"{t}/{m}"] = v
                row.stderrs[f"{t}/{m}"] = tr.stderrs.get(m, math.nan)
            if late is not None and t in k_max:
                row.beats_late[t] = paired.beats_late(pair_rows, rec.id, t)
        for m in sorted(shared, key=metric_sort_key):
            if all(t in rec.tasks and m in rec.tasks[t].metrics for t in tasks):
                vals = [rec.tasks[t].metrics[m] for t in tasks]
                errs = [rec.tasks[t].stderrs.get(m, math.nan) for t in tasks]
                # Tasks are independent samples: the mean's variance is sum(se^2) / T^2.
                row.values[f"{AVG}/{m}"] = sum(vals) / len(vals)
                row.stderrs[f"{AVG}/{m}"] = math.sqrt(sum(e * e for e in errs)) / len(errs)
        rows.append(row)
    marks = {c.key: m for c in columns if (m := mark_column(records, c))}
    return Leaderboard(columns, rows, marks, k_max, problems, late.id if late is not None else None)


def mark_column(records: Sequence[PointRecord], col: Column) -> dict[str, str]:
    """{row id: BEST} when the top point is significantly ahead of every other point under
    the paired test; else {row id: TIE} for the top point and every point within noise of it.
    Empty when the column cannot be tested (no per-problem values, or an average)."""
    if col.task == AVG:
        return {}
    have = [
        r
        for r in records
        if col.task in r.tasks and _finite(r.tasks[col.task].metrics.get(col.metric))
    ]
    if len(have) < 2:
        return {}
    top = max(have, key=lambda r: r.tasks[col.task].metrics[col.metric])
    tied = []
    for r in have:
        if r is top:
            continue
        diff = significance.compare(
            top, r, col.task, col.metric, n_resamples=significance.MARK_RESAMPLES
        )
        if diff is None:
            return {}
        if not (diff.significant and diff.delta > 0):
            tied.append(r.id)
    if not tied:
        return {top.id: BEST}
    return {rid: TIE for rid in [top.id, *tied]}


# -- renderers ---------------------------------------------------------------------------


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if not _finite(x) else f"{x:.{digits}f}"


def _opt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _repr(x: float | None) -> str:
    # Full precision, so the CSV carries exactly the stored numbers.
    return "" if not _finite(x) else repr(float(x))


def _json_num(x: float | None) -> float | None:
    return float(x) if _finite(x) else None


def legend_text(board: Leaderboard) -> str:
    """What the numbers and marks mean, in one paragraph (plain text)."""
    star = (
        " ★: beats the late checkpoint on Pass@k_max by a significant paired difference "
        "without a significant loss on Pass@1 (Holm-corrected over paired.md's table)."
        if board.late_id
        else ""
    )
    return (
        "Mean over problems ± standard error over problems. Best: ahead of every other point "
        "by a significant paired difference over problems (sign-flip p < 0.05 and a 95% "
        "bootstrap interval excluding 0); ≈: tied for best, the top value and every point whose "
        "paired difference to it is within noise. "
        "Columns without per-problem values (maj@k from older results, averages over tasks) "
        "are not marked." + star
    )


def to_markdown(
    board: Leaderboard,
    title: str = "Leaderboard",
    intro: Sequence[str] = (),
    *,
    all_metrics: bool = False,
) -> str:
    """One table per task with short headers; by default only the metrics that matter
    (the CSV and the HTML's "all metrics" toggle carry the rest)."""
    lines = [f"# {title}", ""]
    for paragraph in intro:  # blank lines between, so Markdown keeps them apart
        lines += [paragraph, ""]
    lines += [legend_text(board).replace("Best:", "**Bold**:"), ""]
    for task in board.tasks:
        cols = [c for c in board.task_columns(task) if all_metrics or c.shown]
        if not cols:
            continue
        n = board.problems.get(task)
        lines += [f"## {task}" + (f" ({n} problems)" if n else ""), ""]
        head = ["point", "α", "T", *(c.header for c in cols)]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for r in board.rows:
            if not any(c.key in r.values for c in cols):
                continue
            cells = [r.label, _opt(r.alpha), _opt(r.temperature)]
            for c in cols:
                v, err = r.values.get(c.key), r.stderrs.get(c.key)
                text = _num(v) + (f" ± {_num(err)}" if _finite(v) and _finite(err) else "")
                mark = board.mark(r, c)
                if mark == BEST:
                    text = f"**{text}**"
                elif mark == TIE:
                    text += " ≈"
                if c.metric == f"pass@{board.k_max.get(task)}" and r.beats_late.get(task):
                    text += " ★"
                cells.append(text)
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        lines.append("")
    hidden = sum(not c.shown for c in board.columns)
    if hidden and not all_metrics:
        lines += [f"{hidden} more columns (every Pass@k and maj@k) are in leaderboard.csv.", ""]
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["id", "label", "method", "alpha", "temperature"]
    for col in board.columns:
        header += [col.key, f"{col.key}_stderr"]
    header += ["best_in", "tied_in", "beats_late_in"]
    w.writerow(header)
    for r in board.rows:
        line = [r.id, r.label, r.method or "", _opt(r.alpha), _opt(r.temperature)]
        for col in board.columns:
            line += [_repr(r.values.get(col.key)), _repr(r.stderrs.get(col.key))]
        line.append(";".join(c.key for c in board.columns if board.mark(r, c) == BEST))
        line.append(";".join(c.key for c in board.columns if board.mark(r, c) == TIE))
        line.append(";".join(t for t, yes in sorted(r.beats_late.items()) if yes))
        w.writerow(line)
    return buf.getvalue()


def to_json(board: Leaderboard) -> str:
    doc = {
        "columns": [
            {"key": c.key, "task": c.task, "metric": c.metric, "header": c.header, "shown": c.shown}
            for c in board.columns
        ],
        "rows": [
            {
                "id": r.id,
                "label": r.label,
                "method": r.method,
                "alpha": r.alpha,
                "temperature": r.temperature,
                "colour": r.colour,
                "beats_late": r.beats_late,
                "values": {
                    c.key: {
                        "value": _json_num(r.values.get(c.key)),
                        "stderr": _json_num(r.stderrs.get(c.key)),
                        "best": board.mark(r, c) == BEST,
                        "tie": board.mark(r, c) == TIE,
                    }
                    for c in board.columns
                    if c.key in r.values
                },
            }
            for r in board.rows
        ],
        "best": board.best,
        "marks": board.marks,
        "late": board.late_id,
        "k_max": board.k_max,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def leaderboard_html(board: Leaderboard) -> str:
    """The leaderboard as an HTML fragment: a sortable table with one column group per task
    (the task name once, over its columns) and an "all metrics" toggle for the rest."""
    e = html.escape
    hidden = sum(not c.shown for c in board.columns)
    out = []
    if hidden:
        out.append(
            '<p class="controls"><label><input type="checkbox" class="toggle-all" '
            f'data-table="board"> show all metrics ({hidden} more columns)</label></p>'
        )
    # Wide tables scroll inside their own box, never the page.
    out.append('<div class="scroll"><table class="sortable board" id="board"><thead><tr>')
    out.append(
        '<th rowspan="2" class="txt" data-col="0">point</th>'
        '<th rowspan="2" data-col="1">α</th><th rowspan="2" data-col="2">T</th>'
    )
    for task in board.tasks:
        cols = board.task_columns(task)
        shown = sum(c.shown for c in cols)
        name = "mean over tasks" if task == AVG else task
        cls = "group" + ("" if shown else " extra")
        out.append(
            f'<th class="{cls}" colspan="{shown or len(cols)}" data-span="{shown}" '
            f'data-span-all="{len(cols)}">{e(name)}</th>'
        )
    out.append("</tr><tr>")
    for i, c in enumerate(board.columns):
        cls = "" if c.shown else ' class="extra"'
        title = e(f"{c.task} {c.metric}")
        out.append(f'<th{cls} data-col="{i + 3}" title="{title}">{e(c.header)}</th>')
    out.append("</tr></thead><tbody>")
    for pos, r in enumerate(board.rows):
        cells = [
            f'<td class="txt" data-v="{pos}" title="{e(r.id)}">'
            f'<span class="swatch" style="background:{r.colour}"></span>{e(r.label)}</td>',
            f'<td data-v="{_opt(r.alpha)}">{_opt(r.alpha)}</td>',
            f'<td data-v="{_opt(r.temperature)}">{_opt(r.temperature)}</td>',
        ]
        for c in board.columns:
            v, err = r.values.get(c.key), r.stderrs.get(c.key)
            classes = [] if c.shown else ["extra"]
            mark = board.mark(r, c)
            if mark:
                classes.append(mark)
            text = f'<span class="v">{_num(v)}</span>'
            if mark == TIE:
                text += '<span class="m" title="tied for best">≈</span>'
            if c.metric == f"pass@{board.k_max.get(c.task)}" and r.beats_late.get(c.task):
                text += '<span class="m star" title="beats the late checkpoint">★</span>'
            if _finite(v) and _finite(err):
                text += f'<span class="se">± {_num(err)}</span>'
            cls = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f'<td{cls} data-v="{_repr(v)}">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(x for x in out if x)


def html_table(
    head: Sequence[str],
    rows: Sequence[Sequence[object]],
    digits: int = 4,
    titles: Sequence[str] | None = None,
) -> str:
    """A plain sortable HTML table (for the page's secondary tables); `titles` are header
    tooltips."""
    e = html.escape

    def cell(v: object) -> str:
        if isinstance(v, float):
            shown = _num(v, digits) if _finite(v) else "–"
            return f'<td data-v="{_repr(v)}">{shown}</td>'
        text = "" if v is None else str(v)
        cls = "" if isinstance(v, int) else ' class="txt"'
        return f'<td{cls} data-v="{e(text)}">{e(text)}</td>'

    out = ['<div class="scroll"><table class="sortable"><thead><tr>']
    tips = list(titles) if titles else [""] * len(head)
    out.append(
        "".join(
            f'<th data-col="{i}"' + (f' title="{e(t)}"' if t else "") + f">{e(h)}</th>"
            for i, (h, t) in enumerate(zip(head, tips, strict=True))
        )
    )
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell(v) for v in r) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)

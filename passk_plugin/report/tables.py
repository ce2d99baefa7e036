"""The leaderboard: one row per model point, one column per (task, metric), in four formats.

`build_leaderboard` turns collected records into a `Leaderboard`; the `to_*` functions
render it. The best value of each column is found once here and marked by every format
(bold in Markdown, highlighted in HTML, `best` flags in JSON and CSV).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from passk_plugin.report.collect import PointRecord, metric_sort_key

AVG = "avg"


@dataclass(frozen=True)
class Column:
    key: str  # "<task>/<metric>", or "avg/<metric>"
    task: str
    metric: str

    @property
    def label(self) -> str:
        return f"{self.task} {self.metric}"


@dataclass
class Row:
    id: str
    label: str
    method: str | None
    alpha: float | None
    temperature: float | None
    values: dict[str, float] = field(default_factory=dict)
    stderrs: dict[str, float] = field(default_factory=dict)


@dataclass
class Leaderboard:
    columns: list[Column]
    rows: list[Row]
    best: dict[str, list[str]]  # column key -> ids of the rows holding its best value

    def is_best(self, row: Row, col: Column) -> bool:
        return row.id in self.best.get(col.key, [])


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def build_leaderboard(records: Sequence[PointRecord]) -> Leaderboard:
    tasks: list[str] = []
    metrics_of: dict[str, set[str]] = {}
    for rec in records:
        for task, tr in rec.tasks.items():
            if task not in metrics_of:
                tasks.append(task)
                metrics_of[task] = set()
            metrics_of[task].update(tr.metrics)
    tasks.sort()
    columns = [
        Column(f"{t}/{m}", t, m) for t in tasks for m in sorted(metrics_of[t], key=metric_sort_key)
    ]
    shared = set.intersection(*(metrics_of[t] for t in tasks)) if len(tasks) > 1 else set()
    columns += [Column(f"{AVG}/{m}", AVG, m) for m in sorted(shared, key=metric_sort_key)]

    rows = []
    for rec in records:
        row = Row(rec.id, rec.label, rec.method, rec.alpha, rec.temperature)
        for t, tr in rec.tasks.items():
            for m, v in tr.metrics.items():
                row.values[f"{t}/{m}"] = v
                row.stderrs[f"{t}/{m}"] = tr.stderrs.get(m, math.nan)
        for m in sorted(shared, key=metric_sort_key):
            if all(t in rec.tasks and m in rec.tasks[t].metrics for t in tasks):
                vals = [rec.tasks[t].metrics[m] for t in tasks]
                errs = [rec.tasks[t].stderrs.get(m, math.nan) for t in tasks]
                # Tasks are independent samples: the mean's variance is sum(se^2) / T^2.
                row.values[f"{AVG}/{m}"] = sum(vals) / len(vals)
                row.stderrs[f"{AVG}/{m}"] = math.sqrt(sum(e * e for e in errs)) / len(errs)
        rows.append(row)
    return Leaderboard(columns, rows, best_per_column(columns, rows))


def best_per_column(columns: Sequence[Column], rows: Sequence[Row]) -> dict[str, list[str]]:
    """Rows holding the highest value of each column (ties all count; every metric here
    is higher-is-better)."""
    best: dict[str, list[str]] = {}
    for col in columns:
        vals = [(r.id, r.values.get(col.key)) for r in rows]
        finite = [v for _, v in vals if _finite(v)]
        if not finite:
            continue
        top = max(finite)
        best[col.key] = [rid for rid, v in vals if _finite(v) and abs(v - top) <= 1e-12]
    return best


# -- renderers ---------------------------------------------------------------------------


def _num(x: float | None, digits: int = 4) -> str:
    return "" if not _finite(x) else f"{x:.{digits}f}"


def _opt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _cell(value: float | None, err: float | None) -> str:
    if not _finite(value):
        return "–"
    return f"{value:.4f} ± {err:.4f}" if _finite(err) else f"{value:.4f}"


def to_markdown(board: Leaderboard, title: str = "Leaderboard") -> str:
    head = ["point", "method", "α", "T", *(c.label for c in board.columns)]
    lines = [
        f"# {title}",
        "",
        "Mean over problems ± standard error. Best of each column in **bold**.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 4 + ["---:"] * len(board.columns)) + "|",
    ]
    for r in board.rows:
        cells = [r.label, r.method or "", _opt(r.alpha), _opt(r.temperature)]
        for col in board.columns:
            text = _cell(r.values.get(col.key), r.stderrs.get(col.key))
            cells.append(f"**{text}**" if board.is_best(r, col) else text)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["id", "label", "method", "alpha", "temperature"]
    for col in board.columns:
        header += [col.key, f"{col.key}_stderr"]
    header.append("best_in")
    w.writerow(header)
    for r in board.rows:
        line = [r.id, r.label, r.method or "", _opt(r.alpha), _opt(r.temperature)]
        for col in board.columns:
            line += [_repr(r.values.get(col.key)), _repr(r.stderrs.get(col.key))]
        line.append(";".join(c.key for c in board.columns if board.is_best(r, c)))
        w.writerow(line)
    return buf.getvalue()


def _repr(x: float | None) -> str:
    # Full precision, so the CSV carries exactly the stored numbers.
    return "" if not _finite(x) else repr(float(x))


def _json_num(x: float | None) -> float | None:
    return float(x) if _finite(x) else None


def to_json(board: Leaderboard) -> str:
    doc = {
        "columns": [{"key": c.key, "task": c.task, "metric": c.metric} for c in board.columns],
        "rows": [
            {
                "id": r.id,
                "label": r.label,
                "method": r.method,
                "alpha": r.alpha,
                "temperature": r.temperature,
                "values": {
                    c.key: {
                        "value": _json_num(r.values.get(c.key)),
                        "stderr": _json_num(r.stderrs.get(c.key)),
                        "best": board.is_best(r, c),
                    }
                    for c in board.columns
                    if c.key in r.values
                },
            }
            for r in board.rows
        ],
        "best": board.best,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


_HTML_STYLE = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;cursor:pointer;user-select:none;position:sticky;top:0}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
td.txt,th.txt{text-align:left}
td.best{background:#c8f7c5;font-weight:bold}
.err{color:#777;font-size:11px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
"""

_HTML_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  var ths = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(ths, function(th, idx){
    th.addEventListener('click', function(){
      var asc = !th.classList.contains('asc');
      Array.prototype.forEach.call(ths, function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc ? 'asc' : 'desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function(a, b){
        var x = a.cells[idx].getAttribute('data-v'), y = b.cells[idx].getAttribute('data-v');
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp;
        if (x === '' && y === '') cmp = 0;
        else if (x === '') return 1;
        else if (y === '') return -1;
        else if (!isNaN(nx) && !isNaN(ny)) cmp = nx - ny;
        else cmp = x < y ? -1 : (x > y ? 1 : 0);
        return asc ? cmp : -cmp;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""


def to_html(
    board: Leaderboard,
    title: str = "Leaderboard",
    images: Mapping[str, bytes] | None = None,
    extra_html: str = "",
) -> str:
    """A self-contained page: sortable table (click a header), plots inlined as data URIs."""
    e = html.escape
    head = [("point", "txt"), ("method", "txt"), ("α", ""), ("T", "")]
    head += [(c.label, "") for c in board.columns]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_HTML_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<p>Mean over problems ± standard error; the best of each column is highlighted. "
        "Click a column header to sort.</p>",
        '<table class="sortable"><thead><tr>',
        "".join(f'<th class="{cls}">{e(text)}</th>' for text, cls in head),
        "</tr></thead><tbody>",
    ]
    for r in board.rows:
        cells = [
            f'<td class="txt" data-v="{e(r.label)}">{e(r.label)}</td>',
            f'<td class="txt" data-v="{e(r.method or "")}">{e(r.method or "")}</td>',
            f'<td data-v="{_opt(r.alpha)}">{_opt(r.alpha)}</td>',
            f'<td data-v="{_opt(r.temperature)}">{_opt(r.temperature)}</td>',
        ]
        for col in board.columns:
            v, err = r.values.get(col.key), r.stderrs.get(col.key)
            cls = ' class="best"' if board.is_best(r, col) else ""
            text = _num(v) if _finite(v) else "–"
            if _finite(v) and _finite(err):
                text += f' <span class="err">± {_num(err)}</span>'
            cells.append(f'<td{cls} data-v="{_repr(v)}">{text}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    out.append(extra_html)
    if images:
        out.append("<h2>Plots</h2>")
        for name, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            out.append(
                f'<figure><img alt="{e(name)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{e(name)}</figcaption></figure>"
            )
    out.append(f"<script>{_HTML_SCRIPT}</script></body></html>\n")
    return "\n".join(out)


def html_table(head: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 4) -> str:
    """A plain sortable HTML table (for the page's secondary tables)."""
    e = html.escape

    def cell(v: object) -> str:
        if isinstance(v, float):
            shown = _num(v, digits) if _finite(v) else "–"
            return f'<td data-v="{_repr(v)}">{shown}</td>'
        text = "" if v is None else str(v)
        cls = "" if isinstance(v, int) else ' class="txt"'
        return f'<td{cls} data-v="{e(text)}">{e(text)}</td>'

    out = ['<table class="sortable"><thead><tr>']
    out.append("".join(f"<th>{e(h)}</th>" for h in head))
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell(v) for v in r) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)

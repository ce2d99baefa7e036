"""leaderboard.html: one self-contained page (inline CSS, JS and images) that reads top-down.

The answer first (the headline), then the key plot (Pass@1 against Pass@k_max), the paired
comparisons against the late checkpoint, the full leaderboard, the other plots, and the
bias–variance table last, collapsed.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from passk_plugin.report.tables import short_header

KEY_PLOT = "pass1_vs_passk_"

_STYLE = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:1.2em 1.5em;color:#222;
  line-height:1.4}
h1{font-size:1.5em;margin:.2em 0 .5em} h2{font-size:1.2em;margin:1.4em 0 .4em}
.headline{font-size:1.05em;background:#f4f7fb;border-left:4px solid #4a78b5;
  padding:.6em 1em;max-width:70em}
.headline p{margin:.3em 0}
.note{color:#555;font-size:.9em;max-width:80em}
table{border-collapse:collapse;font-size:13px;margin:.3em 0}
.scroll{overflow-x:auto;max-width:100%}
th,td{border:1px solid #d4d4d4;padding:2px 6px;text-align:right;white-space:nowrap;
  vertical-align:top}
th{background:#f0f0f0;user-select:none;white-space:normal;max-width:6em}
th.group{max-width:none}
th[data-col]{cursor:pointer}
th.group{text-align:center;background:#e4e9f0}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
td.txt,th.txt{text-align:left}
td.best{background:#bfeebc;font-weight:bold}
td.tie{background:#e8f6e7}
td .se{display:block;color:#777;font-size:10px;font-weight:normal}
td .m{margin-left:2px;color:#2b6a2b}
td .star{color:#b8860b}
td.sig{font-weight:bold}
.swatch{display:inline-block;width:.8em;height:.8em;border:1px solid #555;margin-right:.35em;
  vertical-align:-1px}
table.board .extra{display:none}
table.board.all .extra{display:table-cell}
img{max-width:100%;height:auto;border:1px solid #eee}
figure{display:inline-block;margin:0 .8em 1em 0;vertical-align:top;width:calc(50% - 1.2em);
  min-width:420px}
figure img{width:100%}
figure.wide{width:calc(100% - 1.2em)}
figcaption{font-size:.85em;color:#555}
details{margin-top:1.5em} summary{cursor:pointer;font-size:1.15em;font-weight:bold}
"""

_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function(table){
  var ths = table.tHead.querySelectorAll('th[data-col]');
  Array.prototype.forEach.call(ths, function(th){
    var idx = parseInt(th.getAttribute('data-col'), 10);
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
document.querySelectorAll('input.toggle-all').forEach(function(box){
  var table = document.getElementById(box.getAttribute('data-table'));
  function apply(){
    table.classList.toggle('all', box.checked);
    table.querySelectorAll('th.group').forEach(function(th){
      var span = th.getAttribute(box.checked ? 'data-span-all' : 'data-span');
      th.colSpan = parseInt(span, 10) || 1;
    });
  }
  box.addEventListener('change', apply);
  apply();
});
"""


def _img(name: str, png: bytes, caption: str, cls: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    e = html.escape
    klass = f' class="{cls}"' if cls else ""
    return (
        f'<figure{klass}><img alt="{e(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{e(caption)}</figcaption></figure>"
    )


def _caption(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    for prefix, what in (
        ("pass1_vs_passk_", "Pass@1 against Pass@k_max"),
        ("passk_vs_k_", "Pass@k against k"),
        ("metric_vs_alpha_", "metrics against α"),
        ("rho_hist_", "per-problem success rate ρ"),
        ("biasvar_", "where Pass@k is lost"),
        ("forest_", "paired differences against the references"),
        ("diversity_", "answer diversity"),
    ):
        if stem.startswith(prefix):
            return f"{stem[len(prefix) :]}: {what}"
    return stem.replace("_", " ")


_VERDICTS = re.compile(
    r"(No difference here is distinguishable from noise\.|significantly higher|"
    r"significantly lower|falls significantly short|matches it within noise|within noise)"
)


def _emphasise(text: str) -> str:
    """The verdicts of the headline in bold, so the answer can be skimmed."""
    return _VERDICTS.sub(r"<strong>\1</strong>", text)


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−") if math.isfinite(x) else "–"


def _p(p: float) -> str:
    # A bootstrap p-value of 0 only means below the resolution of the resamples.
    return "&lt;0.001" if p < 0.001 else f"{p:.2g}"


def paired_html(rows: Sequence[Any], labels: Mapping[str, str], colours: Mapping[str, str]) -> str:
    """Δ against the late checkpoint, one row per point and a column group per task.

    `rows` carry task, metric, point, reference_role, delta, ci_low, ci_high, p_holm (the
    paired-comparison rows); only those against the late checkpoint are shown here.
    """
    rows = [r for r in rows if r.reference_role == "late"]
    if not rows:
        return ""
    e = html.escape
    tasks = list(dict.fromkeys(r.task for r in rows))
    metrics_of = {t: list(dict.fromkeys(r.metric for r in rows if r.task == t)) for t in tasks}
    cols = [(t, m) for t in tasks for m in metrics_of[t]]
    cell = {(r.point, r.task, r.metric): r for r in rows}
    pts = list(dict.fromkeys(r.point for r in rows))
    out = [
        '<div class="scroll"><table class="sortable paired"><thead><tr>'
        '<th rowspan="2" class="txt">point</th>'
    ]
    for t in tasks:
        out.append(f'<th class="group" colspan="{len(metrics_of[t])}">{e(t)}</th>')
    out.append("</tr><tr>")
    for i, (_, m) in enumerate(cols):
        out.append(f'<th data-col="{i + 1}">Δ {e(short_header(m))}</th>')
    out.append("</tr></thead><tbody>")
    for pos, p in enumerate(pts):
        line = [
            f'<td class="txt" data-v="{pos}" title="{e(p)}"><span class="swatch" '
            f'style="background:{colours.get(p, "#777")}"></span>{e(labels.get(p, p))}</td>'
        ]
        for t, m in cols:
            r = cell.get((p, t, m))
            if r is None:
                line.append('<td data-v="">–</td>')
                continue
            cls = ' class="sig"' if r.p_holm < 0.05 else ""
            line.append(
                f'<td{cls} data-v="{r.delta!r}">{_signed(r.delta)}'
                f'<span class="se">[{_signed(r.ci_low)}, {_signed(r.ci_high)}] '
                f"p={_p(r.p_holm)}</span></td>"
            )
        out.append("<tr>" + "".join(line) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def render_page(
    title: str,
    headline: Sequence[str],
    images: Mapping[str, bytes],
    paired: str,
    board_html: str,
    board_legend: str,
    biasvar_html: str,
    biasvar_rows: int,
    trajectory_html: str = "",
) -> str:
    """The whole page, in reading order."""
    e = html.escape
    key = {n: png for n, png in images.items() if n.startswith(KEY_PLOT)}
    rest = {n: png for n, png in images.items() if n not in key}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        '<section class="headline" id="headline">',
        *(f"<p>{_emphasise(e(p))}</p>" for p in headline),
        "</section>" if headline else "<p>Nothing to compare yet.</p></section>",
    ]
    if key:
        out.append("<h2>Pass@1 against Pass@k_max</h2>")
        out += [_img(n, png, _caption(n), "key") for n, png in key.items()]
    if paired:
        out += [
            "<h2>Against the late checkpoint (paired)</h2>",
            '<p class="note">Δ = point − late checkpoint, problem by problem; below it the 95% '
            "paired-bootstrap interval over problems and the Holm-adjusted p-value over the "
            "whole table (every comparison, against every reference, is in paired.md). Bold: "
            "significant at 0.05 after adjustment.</p>",
            paired,
        ]
    out += [
        "<h2>Leaderboard</h2>",
        f'<p class="note">{e(board_legend)} Click a column header to sort.</p>',
        board_html,
        trajectory_html,
    ]
    if rest:
        out.append("<h2>More plots</h2>")
        out += [
            _img(n, png, _caption(n), "wide" if n.startswith("rho_hist_") else "")
            for n, png in rest.items()
        ]
    if biasvar_html:
        out += [
            f'<details id="biasvar"><summary>Bias–variance view ({biasvar_rows} rows)</summary>',
            '<p class="note">ρ = c/n is a problem\'s success rate. 1 − Pass@k = E[(1 − ρ)^k] '
            "= (1 − mean ρ)^k + excess: the Jensen term depends on mean Pass@1 alone; the "
            "excess (≥ 0) is what the spread of ρ over problems costs at k samples.</p>",
            biasvar_html,
            "</details>",
        ]
    out.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(out)

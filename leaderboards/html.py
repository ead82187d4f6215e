"""A self-contained HTML page for a report: inline CSS, a few lines of inline JS, data: plots.

No network assets: a Content-Security-Policy forbids every fetch except inline code and
``data:`` images. Every piece of text from result files (model names, task names, warnings) is
HTML-escaped. Tables sort by clicking a header (or Enter on it); ``#sort=<table key>,<column
index>[,desc]`` in the URL sorts one table on load. When the script has run, each table carries
``data-sortable="ready"`` and ``data-fits`` (``1`` when it fits the page width without
scrolling: long text cells wrap), ``<body>`` ``data-ready="1"``, and each figure ``data-labels``
(what its plot labels: every run); this is what the headless-browser test checks.
"""

from __future__ import annotations

import json
from html import escape

from harness.sections import Estimate, Section

from .report import Plot, Report, format_cell, sort_key, text_columns

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; color: #1d2330; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin: 28px 0 6px; }
.note { color: #4a5263; margin: 2px 0 8px; max-width: 900px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #dde1e8; padding: 4px 10px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.text, td:first-child { white-space: normal; overflow-wrap: anywhere; min-width: 6em; }
th { background: #f2f4f8; cursor: pointer; user-select: none; white-space: normal; vertical-align: bottom;
     max-width: 9em; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
tr:hover td { background: #f7f9fc; }
td.missing { color: #9aa1ad; }
section.reported table { border-left: 4px solid #c98a1b; }
tr.reported td { font-style: italic; background: #fdf8ee; }
.badge { display: inline-block; font-size: 11px; font-style: normal; padding: 0 6px; margin-left: 6px;
         border-radius: 8px; background: #f3e2bf; color: #6b4a0c; }
.warnings { background: #fff4f2; border: 1px solid #f0c2b8; padding: 6px 14px; border-radius: 6px; }
.notes { background: #eef4ff; border: 1px solid #c4d6f5; padding: 6px 14px; border-radius: 6px; }
figure { margin: 10px 0 18px; } figure img { max-width: 100%; border: 1px solid #e3e6ec; }
figcaption { color: #4a5263; font-size: 13px; }
"""

SCRIPT = """
(function () {
  function key(td) {
    var v = td.getAttribute("data-sort");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortTable(table, col, descending) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null || y === null) return (x === null) - (y === null);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) heads[i].removeAttribute("aria-sort");
    heads[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.setAttribute("data-sorted", col + (descending ? ",desc" : ",asc"));
  }
  var tables = document.querySelectorAll("table.sortable");
  tables.forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      var go = function () { sortTable(table, i, th.getAttribute("aria-sort") === "ascending"); };
      th.tabIndex = 0;
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
    });
    table.setAttribute("data-sortable", "ready");
    var box = table.parentNode;  // the table fits its column (no horizontal scrolling needed)
    table.setAttribute("data-fits", table.offsetWidth <= box.clientWidth + 1 ? "1" : "0");
  });
  var m = /[#&]sort=([^,&]+),(\\d+)(,desc)?/.exec(decodeURIComponent(location.hash));
  if (m) {
    var t = document.querySelector('table.sortable[data-key="' + m[1].replace(/"/g, "") + '"]');
    if (t && +m[2] < t.tHead.rows[0].cells.length) sortTable(t, +m[2], !!m[3]);
  }
  document.body.setAttribute("data-ready", "1");
})();
"""


def _table(section: Section) -> str:
    text_cols = text_columns(section)
    text_class = ' class="text"'
    head = "".join(
        f'<th scope="col"{text_class if i in text_cols else ""}>{escape(c)}</th>'
        for i, c in enumerate(section.columns)
    )
    reported = section.source == "reported"
    body = []
    for row in section.rows:
        cells = []
        for i, cell in enumerate(row):
            text = escape(format_cell(cell, section.digits_of(i)))
            classes = " ".join(n for n, on in (("missing", cell is None), ("text", i in text_cols)) if on)
            cls = f' class="{classes}"' if classes else ""
            title = f' title="n={cell.n}"' if isinstance(cell, Estimate) and cell.n is not None else ""
            if i == 0 and reported:
                text += '<span class="badge">reported by the authors</span>'
            cells.append(f'<td data-sort="{escape(sort_key(cell))}"{cls}{title}>{text}</td>')
        row_cls = "reported" if reported else "measured"
        label = escape(str(row[0]) if row else "")
        body.append(
            f'<tr class="{row_cls}" data-source="{section.source}" data-label="{label}">{"".join(cells)}</tr>'
        )
    return (
        f'<div class="scroll"><table class="sortable" data-key="{escape(section.key)}" '
        f'data-source="{section.source}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(plot: Plot) -> str:
    caption = f"<figcaption>{escape(plot.caption)}</figcaption>" if plot.caption else ""
    labels = escape(json.dumps(plot.labels()))
    return (
        f'<figure id="plot-{escape(plot.key)}" data-labels="{labels}"><img src="{plot.data_url()}" '
        f'alt="{escape(plot.title)}" data-plot="{escape(plot.key)}">{caption}</figure>'
    )


def section_html(section: Section) -> str:
    note = f'<p class="note">{escape(section.note)}</p>' if section.note else ""
    return (
        f'<section id="{escape(section.key)}" class="{section.source}">'
        f"<h2>{escape(section.title)}</h2>{note}{_table(section)}</section>"
    )


def to_html(report: Report) -> str:
    """The whole page as one string."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
    ]
    if report.notes:
        parts.append('<div class="notes">' + "".join(f"<p>{escape(n)}</p>" for n in report.notes) + "</div>")
    if report.flags or report.warnings:
        items = "".join(f"<li>{escape(m)}</li>" for m in (*report.flags, *report.warnings))
        parts.append(f'<div class="warnings" id="warnings"><h2>Warnings</h2><ul>{items}</ul></div>')
    for section in report.sections:
        parts.append(section_html(section))
        parts.extend(_figure(p) for p in report.plots_after(section.key))
    parts.extend(_figure(p) for p in report.trailing_plots())
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"

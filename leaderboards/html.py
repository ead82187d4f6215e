"""A self-contained HTML page for a report: inline CSS, a few lines of inline JS, data: plots.

The page is ``templates/report.html.j2`` (its parts in ``report_parts.html.j2``; ``report.css``
and ``report.js`` beside them), rendered by :mod:`.pages` with autoescaping. No network
assets: a Content-Security-Policy forbids every fetch except inline code and ``data:`` images. Every piece of text from result
files (model names, task names, warnings) is HTML-escaped. Tables sort by clicking a header (or
Enter on it); ``#sort=<table key>,<column index>[,desc]`` in the URL sorts one table on load.
When the script has run, each table carries ``data-sortable="ready"`` and ``data-fits`` (``1``
when it fits the page width without scrolling: long text cells wrap), ``<body>``
``data-ready="1"``, and each figure ``data-labels`` (what its plot labels: every run); this is
what the headless-browser test checks.
"""

from __future__ import annotations

from harness.sections import Section

from .pages import macros, render
from .report import Report, format_cell, sort_key, text_columns

TEMPLATE = "report.html.j2"
PARTS = "report_parts.html.j2"  # its macros: a section, a figure
HELPERS = {"format_cell": format_cell, "sort_key": sort_key, "text_columns": text_columns}


def section_html(section: Section) -> str:
    """One section (title, note, sortable table) as HTML."""
    return str(macros(PARTS, **HELPERS).section_html(section))


def to_html(report: Report) -> str:
    """The whole page as one string."""
    return render(TEMPLATE, report=report, **HELPERS)

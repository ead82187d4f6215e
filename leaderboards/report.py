"""The report model and its plain renderings: Markdown, CSV and JSON.

A :class:`Report` is a pure value computed from result files: sections (tables), plots (PNG
bytes), warnings and flags. ``html.py`` renders the same value as a self-contained page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.sections import Cell, Estimate, Section

if TYPE_CHECKING:
    import pandas as pd

MISSING = "–"
TEST_DOUBLE_NOTE = "Rows named scripted:* are test doubles (pipeline checks), not models."


@dataclass(frozen=True)
class Plot:
    """A PNG figure, shown after the section keyed ``after`` (at the end when empty)."""

    key: str
    title: str
    png: bytes
    caption: str = ""
    after: str = ""

    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    def labels(self) -> list[str]:
        """What the figure labels (legend entries, named rows), as ``plots`` recorded in the PNG."""
        return png_labels(self.png)


def png_labels(png: bytes) -> list[str]:
    """The ``Labels`` text chunk of a PNG written by ``plots`` (``[]`` when there is none)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        text = getattr(img, "text", {}).get("Labels", "[]")
    return [str(x) for x in json.loads(text)]


@dataclass(frozen=True)
class Report:
    """Everything a leaderboard shows; rendering it is deterministic."""

    title: str
    sections: tuple[Section, ...]
    plots: tuple[Plot, ...] = ()
    warnings: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    frame: pd.DataFrame | None = field(default=None, compare=False)

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)

    def plots_after(self, key: str) -> list[Plot]:
        return [p for p in self.plots if p.after == key]

    def trailing_plots(self) -> list[Plot]:
        keys = {s.key for s in self.sections}
        return [p for p in self.plots if p.after not in keys]


def format_cell(cell: Cell, digits: int) -> str:
    """Display text: ``84.3 ± 2.6`` for estimates, fixed decimals for floats, ``–`` for none."""
    if cell is None:
        return MISSING
    if isinstance(cell, Estimate):
        if cell.stderr is None:
            return f"{cell.value:.{digits}f}"
        return f"{cell.value:.{digits}f} ± {cell.stderr:.{digits}f}"
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return str(cell)


def sort_key(cell: Cell) -> str:
    """The value a table sorts a cell by (numbers as numbers, empty for none)."""
    if cell is None:
        return ""
    if isinstance(cell, Estimate):
        return repr(cell.value)
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return repr(float(cell))
    return str(cell)


def text_columns(section: Section) -> set[int]:
    """Columns after the first without a single number (left-aligned, allowed to wrap)."""
    numeric = {i for row in section.rows for i, c in enumerate(row) if isinstance(c, (int, float, Estimate))}
    return set(range(1, len(section.columns))) - numeric


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def section_markdown(section: Section) -> str:
    lines = [f"## {_md_escape(section.title)}", ""]
    if section.note:
        lines += [_md_escape(section.note), ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in section.columns) + " |")
    text = text_columns(section)
    lines.append(
        "|" + "|".join("---" if i == 0 or i in text else "---:" for i in range(len(section.columns))) + "|"
    )
    for row in section.rows:
        cells = [_md_escape(format_cell(c, section.digits_of(i))) for i, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(report: Report, plot_dir: str = "plots") -> str:
    """The report as Markdown; plots are linked as ``plot_dir/<key>.png``."""
    out = [f"# {_md_escape(report.title)}", ""]
    for note in report.notes:
        out += [f"> {_md_escape(note)}", ""]
    if report.warnings or report.flags:
        out += ["## Warnings", ""]
        out += [f"- {_md_escape(m)}" for m in (*report.flags, *report.warnings)]
        out.append("")

    def plots(items: list[Plot]) -> list[str]:
        return [f"![{_md_escape(p.title)}]({plot_dir}/{p.key}.png)\n" for p in items]

    for section in report.sections:
        out += [section_markdown(section), ""]
        out += plots(report.plots_after(section.key))
    out += plots(report.trailing_plots())
    return "\n".join(out).rstrip() + "\n"


def to_json(report: Report) -> dict[str, Any]:
    """The report as JSON: sections with raw cells, long rows, warnings and flags (no plots)."""
    rows: list[dict[str, Any]] = []
    if report.frame is not None:
        rows = json.loads(report.frame.to_json(orient="records"))
    return {
        "title": report.title,
        "notes": list(report.notes),
        "flags": list(report.flags),
        "warnings": list(report.warnings),
        "sections": [s.to_dict() for s in report.sections],
        "rows": rows,
        "plots": [{"key": p.key, "title": p.title, "file": f"plots/{p.key}.png"} for p in report.plots],
    }


def write_csv(report: Report, path: Path) -> None:
    """The long table (measured rows, then the reference rows) as CSV, numbers as fractions."""
    if report.frame is None:
        path.write_text("", encoding="utf-8")
        return
    report.frame.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")

"""Report sections: plain tables that leaderboards render (``harness_leaderboard_sections``).

A :class:`Section` is data, not markup: a title, column names and rows of scalars. The
leaderboard renders every section the same way into Markdown, HTML (sortable), and JSON, so a
plugin adds a table without touching HTML or importing pandas. The first column is the row
label (usually the model). An :class:`Estimate` cell is a value with its standard error; it
renders as ``84.3 ± 2.6`` and sorts by the value.

``source`` keeps measured numbers apart from published ones: a ``"reported"`` section holds
numbers reported by a paper's authors and is rendered, labelled, in its own table, never mixed
with rows measured from run folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

SectionSource = Literal["measured", "reported"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """A number with its standard error and sample count (``None`` when unknown)."""

    value: float
    stderr: float | None = None
    n: int | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "stderr": self.stderr, "n": self.n}


Cell: TypeAlias = str | int | float | Estimate | None


def cell_to_json(cell: Cell) -> Any:
    """A cell as plain JSON (an :class:`Estimate` becomes ``{"value", "stderr"}``)."""
    return cell.to_dict() if isinstance(cell, Estimate) else cell


@dataclass(frozen=True, slots=True)
class Section:
    """One table of a report.

    ``key`` is a stable identifier (HTML anchor, JSON key); ``digits`` the decimals floats and
    estimates are shown with (one number for all columns, or one per column); ``note`` a
    sentence under the title saying what the numbers are. Every row must have one cell per
    column.
    """

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    source: SectionSource = "measured"
    digits: int | tuple[int, ...] = 1

    def __post_init__(self) -> None:
        if isinstance(self.digits, tuple) and len(self.digits) != len(self.columns):
            raise ValueError(
                f"section {self.key!r}: {len(self.digits)} digits for {len(self.columns)} columns"
            )
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"section {self.key!r}: row {i} has {len(row)} cells for {len(self.columns)} columns"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": list(self.columns),
            "rows": [[cell_to_json(c) for c in row] for row in self.rows],
            "note": self.note,
            "source": self.source,
            "digits": list(self.digits) if isinstance(self.digits, tuple) else self.digits,
        }

    def digits_of(self, column: int) -> int:
        """Decimals for the cells of column ``column`` (0-based)."""
        return self.digits[column] if isinstance(self.digits, tuple) else self.digits

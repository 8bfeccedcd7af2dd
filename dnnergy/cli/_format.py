"""Plain-text tables for the CLI (rich), number formatting with SI prefixes."""

from __future__ import annotations

from typing import Iterable, Sequence

from rich.console import Console
from rich.table import Table

__all__ = ["si", "energy", "render_table", "console"]

console = Console(highlight=False, soft_wrap=False, width=200)


def si(value: float, digits: int = 3) -> str:
    """``724_406_816 -> '724M'``, ``0.000123 -> '123u'``; plain for 0."""
    if value == 0:
        return "0"
    prefixes = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")]
    for scale, prefix in prefixes:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{prefix}"
    return f"{value:.{digits}g}"


def energy(value: float, unit: str) -> str:
    """An energy with its unit: pJ values become joules with an SI prefix (``2.1e6 pJ -> '2.1uJ'``)."""
    if unit == "pJ" and value:
        return si(value * 1e-12) + "J"
    return si(value)


def render_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], footer: Sequence[object] | None = None) -> Table:
    """A rich Table with right-aligned numeric columns and an optional totals row."""
    table = Table(title=title, show_footer=footer is not None, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i < 2 else "right", footer=str(footer[i]) if footer else "")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table

"""The CLI's text output (rich): ``render`` turns report tables into text, numbers formatted with SI prefixes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from ..report.tables import Cell
    from ..report.tables import Table as ReportTable

__all__ = ["si", "energy", "render", "render_table", "console"]

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


#: Units whose cells show the unit themselves (``"2.1uJ"``, ``"3.8%"``), so their headers drop it.
_SHOWN_IN_CELLS = ("pJ", "%")


def _cell(value: Cell, unit: str) -> str:
    """One cell as text: empty for None, pJ as joules with an SI prefix, percent with one decimal, other numbers SI."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "pJ":
        return energy(value, unit)
    if isinstance(value, float) and abs(value) < 1000:
        return f"{value:.3g}"  # fractions and small measures read plainly (0.5, 0.0559), not as 500m
    return si(value)


def render(table: ReportTable) -> Table:
    """The one place report tables become text: a rich Table of ``table`` with every number formatted.

    Numbers get SI prefixes (``235200 -> '235k'``; floats below 1,000 stay plain, ``0.5``),
    pJ energies become joules (``2.1e6 -> '2.1uJ'``) and percentages keep one decimal
    (``80.7 -> '80.7%'``); the
    headers of those columns drop their ``" (pJ)"``/``" (%)"``. When the other columns
    with a unit all share one (``"@DRAM (MAC-normalized)"``), it moves from their headers
    to the end of the title (``", in MAC-normalized"``).
    """
    units = table.units
    others = {unit for unit in units if unit and unit not in _SHOWN_IN_CELLS}
    moved = others if len(others) == 1 else set()
    headers = [column[: -len(f" ({unit})")] if unit and (unit in _SHOWN_IN_CELLS or unit in moved) else column
               for column, unit in zip(table.columns, units)]
    title = table.title + "".join(f", in {unit}" for unit in moved)
    rows = [[_cell(value, unit) for value, unit in zip(row, units)] for row in table.rows]
    footer = [_cell(value, unit) for value, unit in zip(table.footer, units)] if table.footer is not None else None
    return render_table(title, headers, rows, footer)

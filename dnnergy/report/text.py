"""Report tables as strings: numbers formatted once for every front end (CLI, ``str()``, HTML).

:func:`format_table` turns a :class:`~dnnergy.report.tables.Table` of plain values into
strings: SI prefixes (``235200 -> '235k'``), pJ as joules (``2.1e6 pJ -> '2.1uJ'``),
percentages with one decimal (``'80.7%'``); the headers of those columns drop their unit,
and a unit shared by all other unit columns moves to the title. :func:`text_table` lays
the strings out as a plain monospace table (what ``str(report)`` shows).
"""

from __future__ import annotations

from dataclasses import dataclass

from .tables import Cell, Table

__all__ = ["si", "energy", "format_cell", "Formatted", "format_table", "text_table", "top_rows"]

#: Units whose cells show the unit themselves (``"2.1uJ"``, ``"3.8%"``), so their headers drop it.
_SHOWN_IN_CELLS = ("pJ", "%")


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


def format_cell(value: Cell, unit: str) -> str:
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


@dataclass(frozen=True, slots=True)
class Formatted:
    """A table as strings: ``title``, ``headers``, ``rows`` and ``footer`` (None without totals)."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    footer: tuple[str, ...] | None


def format_table(table: Table) -> Formatted:
    """``table`` with every number formatted and units moved out of headers that no longer need them.

    Example: a column ``"total (pJ)"`` with 2.1e6 becomes header ``"total"`` and cell
    ``"2.1uJ"``; when every other unit column shares one unit (``"@DRAM (MAC-normalized)"``),
    it moves from the headers to the end of the title (``", in MAC-normalized"``).
    """
    units = table.units
    others = {unit for unit in units if unit and unit not in _SHOWN_IN_CELLS}
    moved = others if len(others) == 1 else set()
    headers = tuple(column[: -len(f" ({unit})")] if unit and (unit in _SHOWN_IN_CELLS or unit in moved) else column
                    for column, unit in zip(table.columns, units))
    title = table.title + "".join(f", in {unit}" for unit in moved)
    rows = tuple(tuple(format_cell(value, unit) for value, unit in zip(row, units)) for row in table.rows)
    footer = tuple(format_cell(value, unit) for value, unit in zip(table.footer, units)) if table.footer is not None else None
    return Formatted(title, headers, rows, footer)


def top_rows(table: Table, column: str, n: int) -> tuple[Table, int]:
    """``table`` keeping only the ``n`` rows largest in ``column`` (in their original order), and how many were left out.

    The footer (totals over all rows) is kept. Example: rows with MACs 5, 9, 1 and ``n=2``
    keep the rows with 5 and 9 and leave out 1.
    """
    index = table.columns.index(column)
    ranked = sorted(range(len(table.rows)), key=lambda i: -(table.rows[i][index] or 0))
    keep = sorted(ranked[:n])
    return Table(table.title, table.columns, [table.rows[i] for i in keep], table.footer), len(table.rows) - len(keep)


def text_table(table: Table, note: str = "") -> str:
    """A plain monospace table: title, header, a rule, the rows, the footer after a rule, then ``note`` if any.

    The first two columns (names) are left-aligned, the rest right-aligned. Example: a
    table ``"fc"`` with columns ``("layer", "MACs")`` and one row ``("fc1", 235200)`` gives
    ``"fc\\nlayer  MACs\\n-----  ----\\nfc1    235k"``.
    """
    formatted = format_table(table)
    lines = [formatted.headers, *formatted.rows, *([formatted.footer] if formatted.footer else [])]
    widths = [max(len(line[i]) for line in lines) for i in range(len(formatted.headers))]

    def row(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [formatted.title, row(formatted.headers), rule, *map(row, formatted.rows)]
    if formatted.footer:
        out += [rule, row(formatted.footer)]
    if note:
        out.append(note)
    return "\n".join(out)

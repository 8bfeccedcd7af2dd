"""The CLI's text output (rich): ``render`` turns report tables into text that fits the terminal, numbers with SI prefixes."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions, ConsoleOptions, Group
from rich.table import Table
from rich.text import Text

from ..report.text import energy, format_table, si

if TYPE_CHECKING:
    from ..report.tables import Table as ReportTable

__all__ = ["si", "energy", "render", "render_table", "console", "output_width", "Rendered"]

#: Width of tables written to a file or a pipe without ``$COLUMNS``: wide enough that they never fold.
PIPE_WIDTH = 200

#: Words of text cells longer than this may fold onto the next line when a table is narrow.
WORD_FOLD = 16


def output_width() -> int | None:
    """Columns of the CLI's output: ``$COLUMNS`` when set, else the terminal's (None: rich follows it), else :data:`PIPE_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else PIPE_WIDTH


class _Console(Console):
    """A rich Console whose width is :func:`output_width` at each print (``$COLUMNS`` may change in-process)."""

    @property
    def size(self) -> ConsoleDimensions:
        measured = super().size
        return ConsoleDimensions(output_width() or measured.width, measured.height)


console = _Console(highlight=False, soft_wrap=False)


def render_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]], footer: Sequence[object] | None = None,
                 text: Sequence[bool] = (), widths: Sequence[int | None] = ()) -> Table:
    """A rich Table: text columns (``text[i]`` true; by default the first two) left-aligned, numeric ones right-aligned,
    an optional totals row. A column with a width (``widths[i]``) keeps it, wrapping its header at spaces and folding
    longer words; the others share what is left (rich wraps them only when the table is wider than the console)."""
    text = tuple(text) or tuple(i < 2 for i in range(len(columns)))
    widths = tuple(widths) or (None,) * len(columns)
    table = Table(title=title, show_footer=footer is not None, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if text[i] else "right", footer=str(footer[i]) if footer else "",
                         overflow="fold", width=widths[i])
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


class Rendered:
    """A report table ready to print: its cells formatted, laid out at print time to fit the console's width.

    When the whole table fits (text columns may wrap), it prints as one table. When it
    cannot, its columns are folded into several tables printed one under the other, each
    repeating the first (name) column, as pandas folds a wide frame; no line is wider
    than the console. The table's notes (legend, units) follow, wrapped to the width.
    """

    def __init__(self, table: ReportTable):
        self.formatted = format_table(table)
        self.notes = table.notes
        self.text = tuple(all(row[i] is None or isinstance(row[i], str) for row in table.rows) if i else True
                          for i in range(len(table.columns)))

    @property
    def title(self) -> str:
        """The title as printed (a unit shared by the columns is appended: ``"..., in MAC-normalized"``)."""
        return self.formatted.title

    def _table(self, columns: Sequence[int], title: str | None, key_width: int, width: int) -> Table:
        """The table of ``columns``: at its natural width when that fits in ``width``, else numbers and names
        at their narrowest (:meth:`_least`) and the other text columns sharing the rest."""
        f = self.formatted
        natural = sum(max(cell_len(text) for text in self._texts(i, header=True)) + 3 for i in columns) + 1
        widths = [None if natural <= width or (i and self.text[i]) else self._least(i, key_width) for i in columns]
        return render_table(title, [f.headers[i] for i in columns], [[row[i] for i in columns] for row in f.rows],
                            [f.footer[i] for i in columns] if f.footer is not None else None,
                            [self.text[i] for i in columns], widths)

    def _texts(self, i: int, header: bool = False) -> list[str]:
        """The cells of column ``i`` (with the footer; and the header when ``header``)."""
        f = self.formatted
        return ([f.headers[i]] if header else []) + [row[i] for row in f.rows] + ([f.footer[i]] if f.footer is not None else [])

    def _least(self, i: int, key_width: int) -> int:
        """The narrowest column ``i`` can get: its widest number, header word or (text) word up to
        :data:`WORD_FOLD`; the name column up to ``key_width``. Longer words fold onto the next line."""
        words = [cell_len(word) for text in self._texts(i) for word in (text.split() if i and self.text[i] else [text])]
        least = max([*words, *(cell_len(word) for word in self.formatted.headers[i].split())], default=1)
        return min(least, key_width if i == 0 else WORD_FOLD) if self.text[i] else least

    def blocks(self, width: int) -> list[Table]:
        """The tables to print ``width`` columns wide: the whole table, or its columns folded into several."""
        key_width = max(12, width // 3)
        fits = lambda columns: sum(self._least(i, key_width) + 3 for i in columns) + 1 <= width  # noqa: E731  (3: a border, two spaces)
        everything = list(range(len(self.formatted.headers)))
        if fits(everything):
            return [self._table(everything, self.title, key_width, width)]
        chunks: list[list[int]] = [[0]]
        for i in everything[1:]:
            if len(chunks[-1]) > 1 and not fits(chunks[-1] + [i]):
                chunks.append([0])
            chunks[-1].append(i)
        return [self._table(chunk, self.title if n == 0 else "(continued)", key_width, width) for n, chunk in enumerate(chunks)]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[object]:
        yield Group(*self.blocks(options.max_width), *(Text(note) for note in self.notes))


def render(table: ReportTable) -> Rendered:
    """``table`` as rich output: cells and headers formatted by :func:`dnnergy.report.text.format_table`, fitted to the width.

    Numbers get SI prefixes (``235200 -> '235k'``; floats below 1,000 stay plain, ``0.5``),
    pJ energies become joules (``2.1e6 -> '2.1uJ'``) and percentages keep one decimal
    (``80.7 -> '80.7%'``); the
    headers of those columns drop their ``" (pJ)"``/``" (%)"``. When the other columns
    with a unit all share one (``"@DRAM (MAC-normalized)"``), it moves from their headers
    to the end of the title (``", in MAC-normalized"``). Too wide a table folds into
    several (see :class:`Rendered`); the table's notes print under it.
    """
    return Rendered(table)

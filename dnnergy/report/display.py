"""How results show themselves: ``str()`` is a compact text table, ``_repr_html_`` (Jupyter) the full HTML table.

The ``__str__`` and ``_repr_html_`` methods of :class:`~dnnergy.energy.EnergyReport`,
:class:`~dnnergy.workload.Workload`, :class:`~dnnergy.metrics.Point`,
:class:`~dnnergy.compress.Record` and the :class:`~dnnergy.explore.tradeoff.Sweep` that
:func:`~dnnergy.explore.tradeoff` returns call :func:`text` and :func:`html` here, which
build the report tables (:mod:`dnnergy.report.tables`): text keeps the top :data:`TOP`
layers (a note counts the others) and drops empty columns, HTML keeps every row and column.
"""

from __future__ import annotations

from typing import Any

from .tables import Table, budget_lines, energy_table, points_table, record_table, share_lines, summary_table
from .text import top_rows

__all__ = ["text", "html", "TOP"]

#: Layers ``str()`` shows (the largest by energy or MACs, in execution order).
TOP = 8


def _select(table: Table, keep: tuple[str, ...]) -> Table:
    """``table`` with only the columns named in ``keep`` (in the table's order)."""
    index = [i for i, column in enumerate(table.columns) if column in keep]
    pick = lambda cells: tuple(cells[i] for i in index)  # noqa: E731
    return Table(table.title, pick(table.columns), [pick(row) for row in table.rows],
                 pick(table.footer) if table.footer is not None else None)


def _filled(table: Table) -> Table:
    """``table`` without the columns that are empty in every row (a point measured without latency has no latency)."""
    if not table.rows:
        return table
    lines = [*table.rows, *([table.footer] if table.footer is not None else [])]
    return _select(table, tuple(c for i, c in enumerate(table.columns) if any(line[i] not in (None, "") for line in lines)))


def _tables(obj: Any, compact: bool) -> tuple[Table, list[str]]:
    """The table that shows ``obj`` and the lines to print under it."""
    from ..compress.record import Record
    from ..energy import EnergyReport
    from ..explore.pareto import pareto_front
    from ..metrics import Point
    from ..workload import Workload
    from .records import plotted

    if isinstance(obj, EnergyReport):
        table, notes = energy_table(obj, per=obj.batch), share_lines(obj)
        if compact:  # data-type columns only: the level split is in the notes
            table = _select(table, tuple(c for c in table.columns if not c.startswith("@")))
            table, hidden = top_rows(table, table.columns[-2], TOP)
            notes = ([f"... and {hidden} more layers (top {TOP} by energy shown)"] if hidden else []) + notes
        return table, notes
    if isinstance(obj, Workload):
        table, hidden = summary_table(obj), 0
        if compact:
            table, hidden = top_rows(table, "MACs", TOP)
        return table, [f"... and {hidden} more layers (top {TOP} by MACs shown)"] if hidden else []
    if isinstance(obj, Record):
        return record_table(obj), budget_lines(obj)
    if isinstance(obj, Point):
        at = f" at strength {obj.strength:g}" if obj.strength is not None else ""
        return points_table([obj], f"{obj.label or 'point'}{at}"), []
    if isinstance(obj, list) and all(isinstance(p, Point) for p in obj):
        label = next((p.label for p in obj if p.label), "sweep")
        front = pareto_front(plotted(obj))
        return points_table(obj, f"{label}: {len(obj)} points; * = Pareto front (energy, validation accuracy)", front), []
    raise TypeError(f"display: cannot show a {type(obj).__name__}")


def text(obj: Any) -> str:
    """A compact plain-text table of ``obj`` (see the module docstring)."""
    from .text import text_table

    table, notes = _tables(obj, compact=True)
    return text_table(_filled(table), "\n".join(notes))


def html(obj: Any) -> str:
    """The full HTML table of ``obj``, with its notes as paragraphs (escaped)."""
    from html import escape

    from .html import html_table

    table, notes = _tables(obj, compact=False)
    return html_table(table) + "".join(f"<p>{escape(line)}</p>" for line in notes)

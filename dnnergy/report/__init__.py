"""Views of results for people: per-layer breakdowns, report tables of plain values, and plots."""

from .breakdown import layer_breakdown
from .plots import plot_breakdown, plot_history, plot_tradeoff
from .tables import (
    Table,
    budget_lines,
    energy_table,
    points_table,
    record_table,
    share_lines,
    summary_table,
    unsupported_lines,
    zoo_table,
)

__all__ = ["layer_breakdown", "plot_breakdown", "plot_tradeoff", "plot_history", "Table", "summary_table", "energy_table", "zoo_table",
           "record_table", "points_table", "unsupported_lines", "share_lines", "budget_lines"]

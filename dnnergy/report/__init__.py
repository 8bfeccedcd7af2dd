"""Views of results for people: per-layer breakdown tables and plots."""

from .breakdown import layer_breakdown
from .plots import plot_breakdown, plot_tradeoff

__all__ = ["layer_breakdown", "plot_breakdown", "plot_tradeoff"]

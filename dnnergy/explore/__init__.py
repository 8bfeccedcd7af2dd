"""Searches and sweeps over compressed models: trade-off curves, Pareto fronts, budget searches, neuron-elimination plans.

Everything here produces or reads :class:`~dnnergy.metrics.Point` records, and runs
registered methods by name on a :class:`~dnnergy.compress.CompressionContext`.
"""

from ..metrics import Point
from .elimination import Search, elimination_search, elimination_sweep
from .executors import LocalExecutor, RayExecutor, as_executor
from .netadapt import Adaptation, Budget, History, netadapt_search, resource_objective
from .pareto import dominates, pareto_front
from .strongest import Strongest, largest_within, strongest
from .tradeoff import best_layer, layer_curves, tradeoff

__all__ = [
    "Point",
    "tradeoff",
    "layer_curves",
    "best_layer",
    "LocalExecutor",
    "RayExecutor",
    "as_executor",
    "pareto_front",
    "dominates",
    "strongest",
    "largest_within",
    "Strongest",
    "elimination_sweep",
    "elimination_search",
    "Search",
    "netadapt_search",
    "resource_objective",
    "Budget",
    "History",
    "Adaptation",
]

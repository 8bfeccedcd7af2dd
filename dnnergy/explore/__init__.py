"""Trade-off sweeps of compression strength and Pareto fronts (energy vs accuracy and friends)."""

from .pareto import dominates, pareto_front
from .tradeoff import LocalExecutor, TradeoffPoint, best_layer, layer_curves, measure, tradeoff

__all__ = ["TradeoffPoint", "LocalExecutor", "measure", "tradeoff", "layer_curves", "best_layer", "pareto_front", "dominates"]

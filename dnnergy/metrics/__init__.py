"""How a model is scored: resource objectives (energy, MACs, latency), the latency timer, and ``Point``.

It sits between ``energy`` and ``compress``, so a compression :class:`~dnnergy.compress.Record`
and an :mod:`~dnnergy.explore` sweep describe models with the same :class:`Point` and the
same objectives.
"""

from .latency import measure_latency, model_latency
from .latency_table import LatencyCheck, LatencyTable
from .objectives import (EnergyObjective, LatencyObjective, LayerwiseObjective, MacsObjective, WeightsObjective,
                         energy_objective, macs_objective)
from .point import Point, model_bytes, model_counts

__all__ = [
    "Point",
    "model_counts",
    "model_bytes",
    "EnergyObjective",
    "MacsObjective",
    "WeightsObjective",
    "LatencyObjective",
    "LatencyTable",
    "LatencyCheck",
    "LayerwiseObjective",
    "energy_objective",
    "macs_objective",
    "measure_latency",
    "model_latency",
]

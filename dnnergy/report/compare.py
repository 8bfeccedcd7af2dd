"""Models side by side in energy, MACs and weights: seed 004's lightweight models, and whatever else is asked for.

Seed 004 compares AlexNet with the lightweight designs (SqueezeNet, GoogLeNet, MobileNet,
ShuffleNet) by MACs and weights; their energy on one hardware tells a different story
(SqueezeNet has 49x fewer weights than AlexNet but only about 2.3x less energy on Eyeriss,
and more MACs). :func:`compare_models` estimates each; :func:`comparison_table` sets them
out with every measure also relative to the first model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..energy import EnergyReport
from ..workload import Workload
from .tables import Table

__all__ = ["LIGHTWEIGHT_MODELS", "ModelCost", "model_cost", "compare_models", "comparison_table"]

#: Seed 004's lightweight-model comparison, as zoo names (AlexNet first: the reference of the ratios).
LIGHTWEIGHT_MODELS = ("alexnet", "squeezenet1_0", "googlenet", "mobilenet_v1", "shufflenet")


@dataclass(frozen=True, slots=True)
class ModelCost:
    """One model's energy per image (in ``unit``), MACs and parameter weights per image, and whether its densities
    were measured (``profiled``) or every tensor was taken as dense."""

    name: str
    energy: float
    unit: str
    macs: int
    weights: int
    profiled: bool = False


def model_cost(workload: Workload, report: EnergyReport) -> ModelCost:
    """The :class:`ModelCost` of an estimated workload, per image."""
    batch = workload.batch
    profiled = any(layer.w_stats or layer.i_stats for layer in workload)
    return ModelCost(workload.name, report.total / batch, report.unit, workload.macs // batch, workload.weights, profiled)


def compare_models(workloads: Sequence[Workload], hardware: str, dataflow: str) -> list[ModelCost]:
    """Estimate each workload on ``hardware`` (a preset or YAML path) under ``dataflow``: one :class:`ModelCost` each,
    per image. Trace them at batch 1 (``trace``'s default shapes-only pass is fast; shapes are all it needs)."""
    from ..energy import estimate

    return [model_cost(workload, estimate(workload, hardware, dataflow)) for workload in workloads]


def comparison_table(costs: Sequence[ModelCost], title: str) -> Table:
    """One row per model: energy per image, MACs and weights, and each as a multiple of the first model's (the ratios).

    Example: AlexNet (724M MACs, 61.0M weights) then SqueezeNet 1.0 (819M MACs, 1.24M
    weights) gives SqueezeNet the ratios 1.13 (MACs) and 0.0204 (weights).
    """
    if not costs:
        raise ValueError("comparison_table: no models to compare")
    units = {cost.unit for cost in costs}
    if len(units) > 1:
        raise ValueError(f"comparison_table: energies in several units {sorted(units)}; estimate all on one hardware")
    first = costs[0]

    def ratio(value: float, reference: float) -> float | None:
        return value / reference if reference else None

    rows = [(cost.name, "measured" if cost.profiled else "dense", cost.energy, ratio(cost.energy, first.energy), cost.macs,
             ratio(cost.macs, first.macs), cost.weights, ratio(cost.weights, first.weights)) for cost in costs]
    unit = first.unit
    columns = ("model", "densities", f"energy ({unit})", "energy ratio", "MACs", "MAC ratio", "weights", "weight ratio")
    return Table(f"{title} (ratios to {first.name})", columns, rows)

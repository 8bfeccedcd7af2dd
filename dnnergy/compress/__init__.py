"""Compression methods: each takes a model (+ data, + an energy function) and returns a new model and a record.

Unstructured pruning keeps its state in :class:`Masks` (``masks``); methods live one per
module (``magnitude``, ``obd``, ``eap``) and share the least-squares layer reconstruction
(``reconstruct``) and the resource objectives (``objectives``). See docs/compression.md.
"""

from .eap import EAPConfig, energy_aware_prune, layer_energies, select_by_output_error
from .magnitude import iterative_magnitude_prune, magnitude_prune
from .masks import (
    PRUNABLE_MODULES,
    LayerSparsity,
    Masks,
    PruneStep,
    PruningRecord,
    lowest_score_masks,
    prunable_parameters,
    weight_sparsity,
)
from .objectives import EnergyObjective, LayerwiseObjective, MacsObjective, energy_objective, macs_objective
from .obd import hessian_diagonal, obd_prune, obd_saliency
from .reconstruct import input_gram, input_rows, least_squares, output_error, pruning_error, set_weight_rows, weight_rows

__all__ = [
    # mask state and records
    "Masks",
    "LayerSparsity",
    "PruneStep",
    "PruningRecord",
    "PRUNABLE_MODULES",
    "prunable_parameters",
    "weight_sparsity",
    "lowest_score_masks",
    # least-squares reconstruction
    "input_rows",
    "input_gram",
    "weight_rows",
    "set_weight_rows",
    "least_squares",
    "output_error",
    "pruning_error",
    # methods
    "magnitude_prune",
    "iterative_magnitude_prune",
    "hessian_diagonal",
    "obd_saliency",
    "obd_prune",
    "EAPConfig",
    "energy_aware_prune",
    "select_by_output_error",
    "layer_energies",
    # objectives
    "LayerwiseObjective",
    "EnergyObjective",
    "MacsObjective",
    "energy_objective",
    "macs_objective",
]

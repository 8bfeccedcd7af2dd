"""Compression methods: each takes a model (+ data, + an energy function) and returns a new model and a record.

Unstructured pruning keeps its state in :class:`Masks` (``masks``); methods live one per
module (``magnitude``, ``obd``, ``eap``, ``structured``, ``eliminate``, ...) and share the
least-squares layer reconstruction (``reconstruct``), physical channel removal
(``removal``) and the resource objectives (``objectives``). See docs/compression.md and
docs/compression-structured.md.
"""

from .activation import ActivationPruning, activation_pruning_sweep, prune_activations
from .balanced import balanced_masks, simd_masks
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
from .eliminate import (
    INPUTS,
    EliminationSearch,
    EliminationSweep,
    eliminate_neurons,
    eliminate_plan,
    elimination_search,
    elimination_sweep,
    representative_neurons,
)
from .obd import hessian_diagonal, obd_prune, obd_saliency
from .reconstruct import input_gram, input_rows, least_squares, output_error, pruning_error, set_weight_rows, weight_rows
from .removal import ChannelSurgeon, InputSubsetLinear, StructuredRecord, channel_groups, load_pruned, prune_channels, replay, save_pruned
from .snapea import EarlyTermination, early_termination, with_early_termination
from .sparse import SparseLinear, measure_latency, sparsify_linear
from .structured import Criterion, StructuredConfig, prune_structured

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
    "balanced_masks",
    "simd_masks",
    # structured pruning with physical removal
    "Criterion",
    "StructuredConfig",
    "prune_structured",
    "prune_channels",
    "ChannelSurgeon",
    "channel_groups",
    "StructuredRecord",
    "replay",
    "save_pruned",
    "load_pruned",
    # neuron elimination (seed 002)
    "representative_neurons",
    "eliminate_neurons",
    "eliminate_plan",
    "elimination_sweep",
    "elimination_search",
    "EliminationSweep",
    "EliminationSearch",
    "INPUTS",
    "InputSubsetLinear",
    # activation-side savings and sparse execution
    "ActivationPruning",
    "prune_activations",
    "activation_pruning_sweep",
    "EarlyTermination",
    "early_termination",
    "with_early_termination",
    "SparseLinear",
    "sparsify_linear",
    "measure_latency",
    # objectives
    "LayerwiseObjective",
    "EnergyObjective",
    "MacsObjective",
    "energy_objective",
    "macs_objective",
]

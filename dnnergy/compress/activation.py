"""Activation pruning at inference (Cnvlutin, Albericio et al., ISCA 2016; seed 001).

Cnvlutin skips multiplications by zero activations; zeroing the *small* activations as
well makes more of them zero (seed 001: 1.37x speed-up, 1.52x with activation pruning,
at no accuracy loss on ImageNet with per-layer thresholds). Here every ``nn.ReLU`` (or
the named ones) is replaced by :class:`ActivationPruning`, ``y = x if x > t else 0``,
which for ``t = 0`` is the ReLU itself. Because :func:`dnnergy.trace` with
``measure=True`` records the input density of every layer, the estimator's sparsity
model (zero gating and DRAM coding) prices the extra zeros with no further work: pass an
energy objective such as ``energy_objective(images)`` to :func:`activation_pruning_sweep`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserInputError

__all__ = ["ActivationPruning", "prune_activations", "ActivationPoint", "activation_pruning_sweep"]


class ActivationPruning(nn.Module):
    """ReLU that also zeroes activations at or below ``threshold``: ``F.threshold(x, threshold, 0)``.

    Units: ``threshold`` is in the activation's own units (>= 0). Example:
    ``ActivationPruning(0.5)(tensor([-1., 0.2, 0.5, 0.7]))`` is ``[0, 0, 0, 0.7]``.
    """

    def __init__(self, threshold: float):
        super().__init__()
        if not isinstance(threshold, (int, float)) or not math.isfinite(threshold) or threshold < 0:
            raise UserInputError(f"ActivationPruning: threshold must be a finite number >= 0 (got {threshold!r})")
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        return F.threshold(x, self.threshold, 0.0)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"


def prune_activations(model: nn.Module, threshold: float | Mapping[str, float]) -> nn.Module:
    """A copy of ``model`` whose ReLU modules zero activations ``<= threshold``.

    ``threshold`` is one value for every ``nn.ReLU`` module (or :class:`ActivationPruning`
    already inserted), or a mapping from module path to value for some of them. ReLUs
    called functionally (``torch.relu`` in ``forward``) cannot be replaced; a model with no
    ReLU module raises :class:`UserInputError`. State dict keys are unchanged (ReLU has no
    parameters). Example: ``prune_activations(lenet300, 0.1)`` replaces ``relu``.
    """
    pruned = copy.deepcopy(model)
    relus = {name: m for name, m in pruned.named_modules() if isinstance(m, (nn.ReLU, ActivationPruning)) and name}
    if not relus:
        raise UserInputError(f"{type(model).__name__}: no nn.ReLU modules to prune after (functional ReLUs cannot be replaced)")
    if isinstance(threshold, Mapping):
        unknown = set(threshold) - set(relus)
        if unknown:
            raise UserInputError(f"prune_activations: no ReLU modules named {sorted(unknown)}; ReLUs: {sorted(relus)}")
        chosen = dict(threshold)
    else:
        chosen = {name: threshold for name in relus}
    for name, value in chosen.items():
        parent, _, attr = name.rpartition(".")
        setattr(pruned.get_submodule(parent) if parent else pruned, attr, ActivationPruning(value))
    return pruned


@dataclass(frozen=True, slots=True)
class ActivationPoint:
    """One threshold of :func:`activation_pruning_sweep`: accuracy (fraction) and energy (energy_fn's unit)."""

    threshold: float
    accuracy: float
    energy: float

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise ValueError(f"ActivationPoint: threshold must be >= 0 (got {self.threshold!r})")
        if not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"ActivationPoint: accuracy must be in [0, 1] (got {self.accuracy!r})")
        if not math.isfinite(self.energy):
            raise ValueError(f"ActivationPoint: energy must be finite (got {self.energy!r})")


def activation_pruning_sweep(model: nn.Module, thresholds: Sequence[float], evaluate_fn: Callable[[nn.Module], float],
                             energy_fn: Callable[[nn.Module], float]) -> tuple[ActivationPoint, ...]:
    """Accuracy and energy of ``model`` with every ReLU pruned at each threshold (0 = the model itself).

    ``energy_fn`` should measure activations on real data, e.g.
    ``dnnergy.compress.energy_objective(images)``, which traces with ``measure=True`` so
    the new zeros lower the gated MACs and the coded DRAM traffic.
    """
    return tuple(ActivationPoint(float(t), float(evaluate_fn(m)), float(energy_fn(m)))
                 for t in thresholds for m in [prune_activations(model, float(t))])

"""Activation pruning at inference (Cnvlutin, Albericio et al., ISCA 2016; seed 001).

Cnvlutin skips multiplications by zero activations; zeroing the *small* activations as
well makes more of them zero (seed 001: 1.37x speed-up, 1.52x with activation pruning,
at no accuracy loss on ImageNet with per-layer thresholds). Here every ``nn.ReLU`` (or
the named ones) is replaced by :class:`ActivationPruning`, ``y = x if x > t else 0``,
which for ``t = 0`` is the ReLU itself. Because :func:`dnnergy.trace` with
``measure=True`` records the input density of every layer, the estimator's sparsity
model (zero gating and DRAM coding) prices the extra zeros with no further work.

Registered as the method ``activation``: it walks a schedule of increasing thresholds
and keeps the largest whose validation accuracy stays within the budget (no
retraining, as Cnvlutin). Sweep thresholds with ``dnnergy.explore.tradeoff(model,
context, "activation", thresholds)``.
"""

from __future__ import annotations

import copy
import math
from typing import Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method
from .edits import register_module, replace_module
from .record import Step
from .schedule import schedule_of

__all__ = ["ActivationPruning", "prune_activations", "activation"]


@register_module("activation_pruning")
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
    parameters); each replacement is in the copy's edit log, so it saves and reloads.
    Example: ``prune_activations(lenet300, 0.1)`` replaces ``relu``.
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
        replace_module(pruned, name, "activation_pruning", threshold=float(value))
    return pruned


def _thresholds(threshold: float | tuple[float, ...]) -> tuple[float, ...]:
    return schedule_of(threshold, "activation", "threshold", high=math.inf)


@register_method("activation", strength="threshold", check=_thresholds)
def activation(model: nn.Module, context: CompressionContext, *,
               threshold: float | tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5)) -> Outcome:
    """Albericio et al. 2016 (Cnvlutin): every ReLU also zeroes activations at or below a threshold (no retraining).

    ``threshold`` (activation units, >= 0): one value, or an increasing schedule walked
    until validation accuracy leaves the budget (the last threshold within it is kept).
    The extra zeros gate MACs and shrink coded DRAM traffic in the energy estimate.
    """
    schedule = _thresholds(threshold)
    steps, kept = [], None
    for i, value in enumerate(schedule):
        accuracy = context.evaluate(prune_activations(model, value))
        accepted = context.within_budget(accuracy)
        steps.append(Step(i, "", float(value), accuracy, accepted))
        if not accepted:
            break
        kept = float(value)
    if kept is None:
        return Outcome(model, "no threshold within the accuracy budget", steps)
    return Outcome(prune_activations(model, kept), f"threshold {kept:g} on every ReLU", steps, {"threshold": kept})

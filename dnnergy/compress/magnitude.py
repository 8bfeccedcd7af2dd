"""Magnitude pruning (Han, Pool, Tran and Dally, "Learning both Weights and Connections", NeurIPS 2015).

The weights with the smallest ``|w|`` are set to zero, either per layer (every prunable
tensor loses the same fraction) or with one global threshold over all prunable tensors
(layers with many small weights lose more). Han et al. alternate pruning and
retraining: the registered method ``magnitude`` walks a schedule of increasing
sparsities with fine-tuning after each step (:func:`~dnnergy.compress.schedule.prune_on_schedule`).
Published result: LeNet-300-100 from 267K to 22K weights (12x) at 1.59 % error.
"""

from __future__ import annotations

from typing import Literal, Sequence

from torch import nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method
from .schedule import prune_on_schedule, schedule_check, schedule_of
from .selection import lowest_score_masks, prunable_parameters
from .transforms import Masks

__all__ = ["magnitude_prune", "magnitude"]

Scope = Literal["layer", "global"]


def magnitude_prune(
    model: nn.Module,
    sparsity: float,
    *,
    scope: Scope = "layer",
    layers: Sequence[str] | None = None,
    masks: Masks | None = None,
) -> Masks:
    """Zero the ``round(sparsity * n)`` smallest-magnitude weights of ``model`` in place.

    ``sparsity`` is the fraction of zero weights wanted (in [0, 1]), counted per tensor
    (``scope="layer"``) or over all selected tensors (``scope="global"``); weights already
    zero count as pruned. ``layers`` restricts pruning to some module paths or parameter
    names (default: every Linear/Conv weight). Returns the attached :class:`Masks` (pass
    ``masks`` to tighten an existing set); call ``.remove()`` to make it permanent.
    Example: ``Linear`` weights ``[[0.3, -0.1], [0.2, 0.05]]`` at sparsity 0.5 keep 0.3 and 0.2.
    """
    masks = masks if masks is not None else Masks(model)
    masks.update(_magnitude_keep(model, sparsity, scope, layers))
    return masks


def _magnitude_keep(model: nn.Module, sparsity: float, scope: Scope, layers: Sequence[str] | None):
    params = prunable_parameters(model, layers)
    if not params:
        raise UserInputError(f"magnitude pruning: {type(model).__name__} has no prunable Linear/Conv weights")
    return lowest_score_masks({name: p.detach().abs() for name, p in params.items()}, sparsity, scope)


@register_method("magnitude", strength="sparsity", check=schedule_check("magnitude"))
def magnitude(model: nn.Module, context: CompressionContext, *, sparsity: float | tuple[float, ...] = (0.5, 0.75, 0.9, 0.95),
              scope: Scope = "layer", layers: tuple[str, ...] = ()) -> Outcome:
    """Han et al. 2015: zero the smallest weights along a sparsity schedule, fine-tuning after each step.

    ``sparsity``: a fraction of zero weights, or a non-decreasing schedule of them; the
    loop stops at the first step whose validation accuracy falls below the budget and
    keeps the step before. ``scope``: ``"layer"`` (the same fraction of every tensor) or
    ``"global"`` (one threshold over all of them). ``layers``: module paths to prune
    (default every Linear/Conv weight).
    """
    selected = list(layers) or None
    schedule = schedule_of(sparsity, "magnitude")
    return prune_on_schedule(model, context, schedule, lambda m, s: _magnitude_keep(m, s, scope, selected), selected)

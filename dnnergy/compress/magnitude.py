"""Magnitude pruning (Han, Pool, Tran and Dally, "Learning both Weights and Connections for
Efficient Neural Networks", NeurIPS 2015).

Weights with the smallest absolute values are set to zero, either per layer (every
prunable tensor loses the same fraction) or with one global threshold over all
prunable tensors (layers with many small weights lose more). Han et al. alternate
pruning and retraining: :func:`iterative_magnitude_prune` follows a schedule of
increasing sparsities with masked fine-tuning after each step; its published result is
LeNet-300-100 from 267K to 22K weights (12x) at 1.59 % error.
"""

from __future__ import annotations

import copy
from typing import Callable, Literal, Sequence

from torch import nn

from ..errors import UserInputError
from .masks import Masks, PruneStep, PruningRecord, lowest_score_masks, prunable_parameters, rollback, snapshot, weight_sparsity

__all__ = ["magnitude_prune", "iterative_magnitude_prune"]

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
    params = prunable_parameters(model, layers)
    if not params:
        raise UserInputError(f"magnitude_prune: {type(model).__name__} has no prunable Linear/Conv weights")
    keep = lowest_score_masks({name: p.detach().abs() for name, p in params.items()}, sparsity, scope)
    masks = masks if masks is not None else Masks(model)
    masks.update(keep)
    return masks


def iterative_magnitude_prune(
    model: nn.Module,
    schedule: Sequence[float],
    *,
    fine_tune: Callable[[nn.Module, Masks], object] | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
    energy_fn: Callable[[nn.Module], float] | None = None,
    scope: Scope = "layer",
    layers: Sequence[str] | None = None,
    min_accuracy: float | None = None,
) -> tuple[nn.Module, PruningRecord]:
    """Han et al.'s prune / retrain loop over a ``schedule`` of increasing sparsities.

    For each sparsity (a fraction in [0, 1], e.g. ``(0.5, 0.75, 0.9)``) the smallest
    weights are masked (:func:`magnitude_prune`), then ``fine_tune(model, masks)``
    retrains with the masks fixed (e.g. ``lambda m, k: dnnergy.data.fine_tune(m, data,
    k)``) and ``evaluate(model)`` (accuracy, a fraction) is recorded. ``energy_fn`` (any
    ``model -> float``) is measured before and after. With ``min_accuracy`` (a fraction,
    needs ``evaluate``) the loop stops at the first step whose accuracy after
    fine-tuning falls below it and keeps the previous step's model (that step is recorded
    as not accepted). The input model is not changed; returns the pruned copy (masks
    made permanent) and a :class:`PruningRecord`.
    """
    if min_accuracy is not None and evaluate is None:
        raise UserInputError("iterative_magnitude_prune: min_accuracy needs an evaluate function")
    if not schedule or any(not 0.0 <= s <= 1.0 for s in schedule):
        raise UserInputError(f"iterative_magnitude_prune: schedule must be non-empty sparsities in [0, 1] (got {list(schedule)})")
    if any(b < a for a, b in zip(schedule, schedule[1:])):
        raise UserInputError(f"iterative_magnitude_prune: schedule must not decrease (got {list(schedule)})")
    pruned = copy.deepcopy(model)
    acc0 = evaluate(pruned) if evaluate else None
    e0 = energy_fn(pruned) if energy_fn else None
    masks = Masks(pruned, reversible=False)
    steps = []
    accuracy = acc0
    for i, sparsity in enumerate(schedule):
        saved = snapshot(pruned, masks)
        magnitude_prune(pruned, sparsity, scope=scope, layers=layers, masks=masks)
        if fine_tune is not None:
            fine_tune(pruned, masks)
            masks.apply()
        step_accuracy = evaluate(pruned) if evaluate else None
        accepted = min_accuracy is None or step_accuracy >= min_accuracy
        steps.append(PruneStep(i, "", masks.sparsity(), step_accuracy, accepted, fine_tune is not None))
        if not accepted:  # undo this step and stop
            masks = rollback(pruned, masks, saved)
            break
        accuracy = step_accuracy
    chosen = list(masks)
    masks.remove()
    record = PruningRecord(
        method="magnitude",
        layers=weight_sparsity(pruned, chosen),
        steps=tuple(steps),
        accuracy_before=acc0,
        accuracy_after=accuracy,
        energy_before=e0,
        energy_after=energy_fn(pruned) if energy_fn else None,
        energy_unit=getattr(energy_fn, "unit", ""),
    )
    return pruned, record

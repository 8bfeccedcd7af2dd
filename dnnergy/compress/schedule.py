"""The prune / retrain loop of unstructured pruning, for any way of choosing which weights go.

Han et al. (NeurIPS 2015) alternate pruning and retraining along a schedule of
increasing sparsities; LeCun et al.'s Optimal Brain Damage iterates the same way with
another score; load-balanced (ESE) and SIMD-aligned (Scalpel) masks only change *which*
weights a given sparsity removes. :func:`prune_on_schedule` is that loop once: for each
sparsity it tightens the model's masks to ``keep_masks(model, sparsity)``, fine-tunes
with the context's policy (through the masks), measures validation accuracy and stops at
the first step below the context's budget, rolling that step back.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from torch import Tensor, nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, require_positive
from .record import Step
from .selection import weight_sparsity
from .transforms import Masks, rollback, snapshot

__all__ = ["schedule_of", "schedule_check", "prune_on_schedule"]

KeepMasks = Callable[[nn.Module, float], Mapping[str, Tensor]]


def schedule_of(value: float | Sequence[float], method: str, name: str = "sparsity", high: float = 1.0) -> tuple[float, ...]:
    """One value or a schedule of them as a non-decreasing tuple of numbers in ``[0, high]`` (a clear error otherwise).

    The strengths of the schedule-based methods: sparsities (fractions, ``high=1``) or
    activation thresholds (``high=inf``). Example: ``schedule_of(0.9, "magnitude") == (0.9,)``.
    """
    schedule = (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else tuple(value)
    if not schedule or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= high for s in schedule):
        what = "a fraction in [0, 1]" if high == 1.0 else "a number >= 0" if high == math.inf else f"a number in [0, {high}]"
        raise UserInputError(f"{method}: {name} must be {what} or a schedule of them (got {value!r})")
    if any(b < a for a, b in zip(schedule, schedule[1:])):
        raise UserInputError(f"{method}: the {name} schedule must not decrease: give an increasing schedule such as 0.5,0.9 (got {list(schedule)})")
    return tuple(float(s) for s in schedule)


def schedule_check(method: str, *positive: str) -> Callable[..., None]:
    """The ``check`` of a schedule-based method: its sparsity schedule, its ``scope`` (if it has one) and the
    parameters named in ``positive`` (ints >= 1). Example: ``register_method("simd", check=schedule_check("simd", "width"))``."""

    def check(*, sparsity: float | Sequence[float], scope: str = "layer", **params: object) -> None:
        schedule_of(sparsity, method)
        if scope not in ("layer", "global"):
            raise UserInputError(f"{method}: scope must be 'layer' or 'global' (got {scope!r})")
        require_positive(method, **{name: params[name] for name in positive})

    return check


def prune_on_schedule(model: nn.Module, context: CompressionContext, schedule: Sequence[float], keep_masks: KeepMasks,
                      layers: Sequence[str] | None = None) -> Outcome:
    """Prune ``model`` in place step by step along ``schedule``; keep the last step within the budget.

    ``keep_masks(model, sparsity)`` returns ``{parameter name: keep mask}`` for that
    sparsity (masks only shrink). Each step: tighten the masks, fine-tune (the context's
    policy, pruned weights held at zero), evaluate on validation; a step below
    ``context.floor()`` is undone and ends the loop. The masks stay attached to the
    returned model, so a later stage of a chain keeps them. Steps record the overall
    sparsity of the masked weights (a fraction) and the validation accuracy.
    """
    masks = Masks(model, reversible=False)
    steps: list[Step] = []
    kept: tuple[int, float] | None = None
    for i, sparsity in enumerate(schedule):
        saved = snapshot(model)
        masks.update(keep_masks(model, sparsity))
        tuned = context.fine_tune(model)
        accuracy = context.evaluate(model)
        accepted = context.within_budget(accuracy)
        steps.append(Step(i, "", masks.sparsity(), accuracy, accepted, tuned))
        if not accepted:
            rollback(model, saved)
            break
        kept = (i, sparsity)
    layers_now = weight_sparsity(model, layers)
    summary = ("no step within the accuracy budget" if kept is None else
               f"sparsity {kept[1]:.3f} (step {kept[0] + 1} of {len(schedule)})")
    return Outcome(model, summary, steps, {"layers": {r.name: r.sparsity for r in layers_now}})

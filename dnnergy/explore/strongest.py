"""The strongest setting that keeps the accuracy budget: a binary search over a grid of strengths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from torch import nn

from ..compress import CompressionContext, Result, get_method
from ..errors import UserInputError

__all__ = ["largest_within", "strongest", "Strongest"]

T = TypeVar("T")


def largest_within(grid: Sequence[float], trial: Callable[[float], tuple[float, T]], floor: float) -> tuple[tuple[float, T] | None, int]:
    """The largest strength of an ascending ``grid`` whose ``trial(strength) -> (accuracy, payload)`` reaches ``floor``.

    Binary search: assumes accuracy falls as strength rises, so it runs about
    ``log2(len(grid)) + 1`` trials. Returns ``((strength, payload) or None, trials run)``.
    Example: accuracies 0.9, 0.8, 0.7 on grid (0.1, 0.2, 0.3) with floor 0.75 give 0.2 after 2 trials.
    """
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise UserInputError(f"largest_within: the grid must be strictly increasing (got {list(grid)})")
    lo, hi, best, runs = -1, len(grid), None, 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        accuracy, payload = trial(grid[mid])
        runs += 1
        if accuracy >= floor:
            lo, best = mid, (grid[mid], payload)
        else:
            hi = mid
    return best, runs


@dataclass(frozen=True, eq=False)
class Strongest:
    """The outcome of :func:`strongest`: the strength chosen (``None`` if none kept the budget), its result, trials run.

    Example: when ``structured`` keeps the budget at ratio 0.5 but not at 0.75,
    ``strongest(model, context, "structured", (0.25, 0.5, 0.75))`` gives
    ``Strongest(strength=0.5, result=<the ratio-0.5 Result>, trials=2)`` (a binary search, see
    :func:`largest_within`); when no ratio keeps it, ``Strongest(None, None, trials)``.
    """

    strength: float | None
    result: Result | None
    trials: int


def strongest(model: nn.Module, context: CompressionContext, method: str, grid: Sequence[float], *,
              params: Mapping[str, Any] | None = None) -> Strongest:
    """Run ``method`` at the largest strength of ``grid`` whose validation accuracy stays within the context's budget.

    Each trial runs the method at one strength (its registered strength parameter, with
    ``params``) *without* a budget of its own, then checks the result's validation
    accuracy against the budget measured from ``model``. Example: the largest channel
    ratio of ``(0.25, 0.5, 0.75)`` that ``structured`` with ``criterion="reconstruction"``
    can remove.
    """
    spec = get_method(method)
    if spec.strength is None:
        raise UserInputError(f"strongest: method {method!r} has no strength parameter to search")
    context.require("max_accuracy_drop", "strongest")
    before = context.measure(model, label="before")
    budget = context.with_reference(before.val_accuracy)
    free = context.replace(max_accuracy_drop=None, reference_accuracy=None)

    def trial(strength: float) -> tuple[float, Result]:
        result = spec.apply(model, free, {**(params or {}), spec.strength: strength}, before=before)
        return result.record.after.val_accuracy, result

    best, runs = largest_within(list(grid), trial, budget.floor())
    return Strongest(best[0], best[1], runs) if best else Strongest(None, None, runs)

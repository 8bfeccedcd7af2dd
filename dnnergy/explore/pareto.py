"""Pareto fronts of trade-off points (e.g. low energy and high accuracy)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Sequence, TypeVar

from ..errors import UserInputError

__all__ = ["dominates", "pareto_front"]

P = TypeVar("P")


def _value(point: Any, key: str) -> float:
    try:
        value = point[key] if isinstance(point, Mapping) else getattr(point, key)
    except (KeyError, AttributeError):
        raise UserInputError(f"pareto_front: point {point!r:.80} has no field {key!r}") from None
    value = float(value)
    if math.isnan(value):
        raise UserInputError(f"pareto_front: field {key!r} is NaN in point {point!r:.80}")
    return value


def _signed(point: Any, minimize: Sequence[str], maximize: Sequence[str]) -> tuple[float, ...]:
    """The objectives as a tuple where smaller is better for every entry."""
    return tuple(_value(point, k) for k in minimize) + tuple(-_value(point, k) for k in maximize)


def dominates(a: Any, b: Any, minimize: Sequence[str] = ("energy",), maximize: Sequence[str] = ("accuracy",)) -> bool:
    """True when ``a`` is at least as good as ``b`` in every objective and strictly better in one.

    Example: ``{"energy": 1, "accuracy": 0.9}`` dominates ``{"energy": 2, "accuracy": 0.9}``.
    """
    sa, sb = _signed(a, minimize, maximize), _signed(b, minimize, maximize)
    return all(x <= y for x, y in zip(sa, sb)) and any(x < y for x, y in zip(sa, sb))


def pareto_front(
    points: Sequence[P], minimize: Sequence[str] = ("energy",), maximize: Sequence[str] = ("accuracy",)
) -> list[P]:
    """The points no other point dominates, in their input order.

    Points are objects with the named attributes (e.g. :class:`~dnnergy.metrics.Point`) or
    mappings. Equal points do not dominate each other, so duplicates on the front are
    all kept. Example: energies/accuracies (1, 0.8), (2, 0.9), (3, 0.85) give the first two.
    """
    if isinstance(minimize, str) or isinstance(maximize, str):
        raise UserInputError("pareto_front: minimize and maximize must be sequences of field names, e.g. ('energy',)")
    if not minimize and not maximize:
        raise UserInputError("pareto_front: name at least one objective to minimize or maximize")
    signed = [_signed(p, minimize, maximize) for p in points]
    order = sorted(range(len(points)), key=lambda i: signed[i])
    front: list[int] = []
    # Sorted lexicographically, a point can only be dominated by one before it; check those on the front.
    for i in order:
        s = signed[i]
        if not any(all(x <= y for x, y in zip(signed[j], s)) and signed[j] != s for j in front):
            front.append(i)
    return [points[i] for i in sorted(front)]

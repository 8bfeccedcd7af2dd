"""What pruning acts on and how much of it is zero: prunable parameters, zero counts, lowest-score keep masks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Iterable, Literal

import torch
from torch import Tensor, nn

from ..errors import UserInputError

__all__ = ["PRUNABLE_MODULES", "LayerSparsity", "prunable_parameters", "weight_sparsity", "lowest_score_masks"]

#: Module types whose ``weight`` is pruned by default (biases and norm layers are not).
PRUNABLE_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, slots=True)
class LayerSparsity:
    """Zero count of one weight tensor: ``numel`` elements of which ``zeros`` are exactly 0.

    Example: ``LayerSparsity("fc1.weight", 8, 6)`` has ``.nonzeros == 2`` and ``.sparsity == 0.75`` (a fraction).
    """

    name: str
    numel: int
    zeros: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"LayerSparsity: name must be a non-empty string (got {self.name!r})")
        if not isinstance(self.numel, int) or self.numel < 0:
            raise ValueError(f"LayerSparsity {self.name!r}: numel must be a non-negative int (got {self.numel!r})")
        if not isinstance(self.zeros, int) or not 0 <= self.zeros <= self.numel:
            raise ValueError(f"LayerSparsity {self.name!r}: zeros must be an int in [0, numel={self.numel}] (got {self.zeros!r})")

    @property
    def nonzeros(self) -> int:
        """Elements that are not zero."""
        return self.numel - self.zeros

    @property
    def sparsity(self) -> float:
        """Fraction of zero elements, in [0, 1] (0.0 for an empty tensor)."""
        return self.zeros / self.numel if self.numel else 0.0


def prunable_parameters(model: nn.Module, names: Iterable[str] | None = None) -> dict[str, nn.Parameter]:
    """The parameters pruning acts on, by name: the ``weight`` of every Linear/Conv module.

    ``names`` selects a subset, either parameter names (``"fc1.weight"``) or module paths
    (``"fc1"``); an unknown name raises :class:`UserInputError` listing the valid ones.
    Example: for LeNet-300-100 the result has keys ``fc1.weight``, ``fc2.weight``, ``fc3.weight``.
    """
    found = {
        f"{path}.weight" if path else "weight": module.weight
        for path, module in model.named_modules()
        if isinstance(module, PRUNABLE_MODULES) and isinstance(getattr(module, "weight", None), nn.Parameter)
    }
    if names is None:
        return found
    params = dict(model.named_parameters())
    chosen: dict[str, nn.Parameter] = {}
    for name in names:
        key = name if name in params else f"{name}.weight"
        if key not in params:
            raise UserInputError(f"no parameter or prunable module named {name!r}; prunable: {sorted(found)}")
        chosen[key] = params[key]
    return chosen


def weight_sparsity(model: nn.Module, names: Iterable[str] | None = None) -> tuple[LayerSparsity, ...]:
    """Measured zeros of the prunable weights (no masks needed), one record per parameter.

    Example: a ``Linear(4, 2)`` whose weight has 3 zeros gives
    ``(LayerSparsity("weight", 8, 3),)`` with ``sparsity == 0.375``.
    """
    return tuple(
        LayerSparsity(name, p.numel(), int((p.detach() == 0).sum())) for name, p in prunable_parameters(model, names).items()
    )


def lowest_score_masks(
    scores: Mapping[str, Tensor], sparsity: float, scope: Literal["layer", "global"] = "layer"
) -> dict[str, Tensor]:
    """Keep masks that drop the ``round(sparsity * n)`` lowest-scoring entries.

    ``scope="layer"`` drops ``round(sparsity * numel)`` entries of every tensor;
    ``scope="global"`` drops ``round(sparsity * total)`` entries of all tensors together
    (one threshold). Ties are broken by position (earlier entries are dropped first), so
    the count is exact. Scores are any non-negative importance (``|w|`` for magnitude
    pruning, OBD saliency). Example: scores ``[3, 1, 2, 0]`` at sparsity 0.5 keep
    ``[True, False, True, False]``.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise UserInputError(f"sparsity must be in [0, 1] (got {sparsity})")
    if scope not in ("layer", "global"):
        raise UserInputError(f"scope must be 'layer' or 'global' (got {scope!r})")
    if scope == "layer":
        return {name: _drop_lowest(score.detach().reshape(-1), round(sparsity * score.numel())).reshape(score.shape)
                for name, score in scores.items()}
    flat = torch.cat([s.detach().reshape(-1).to(torch.float64) for s in scores.values()]) if scores else torch.zeros(0)
    keep = _drop_lowest(flat, round(sparsity * flat.numel()))
    out, start = {}, 0
    for name, score in scores.items():
        out[name] = keep[start:start + score.numel()].reshape(score.shape)
        start += score.numel()
    return out


def _drop_lowest(flat: Tensor, count: int) -> Tensor:
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if count > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:count]] = False
    return keep

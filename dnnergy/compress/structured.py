"""Structured pruning: remove whole filters, channels and neurons, chosen by norm, reconstruction error or energy.

Three ways to choose what goes (each returns a physically smaller model and a
:class:`~dnnergy.compress.removal.StructuredRecord`):

* ``l1`` / ``l2`` -- the filters with the smallest norm (Li et al., ICLR 2017; He et al.,
  IJCAI 2018); every group loses ``round(ratio * channels)`` channels, scored once on
  the original weights (Li et al.'s "independent" strategy).
* ``reconstruction`` -- ThiNet (Luo et al., ICCV 2017): group by group, on calibration
  data, greedily remove the channels whose joint contribution to the next layers'
  outputs is smallest; optionally refit those layers by least squares
  (:func:`~dnnergy.compress.reconstruct.least_squares`).
* ``energy`` -- energy saved per accuracy lost: repeatedly try removing ``step`` of
  each group's channels (the lowest-L1 ones), keep the trial with the largest
  ``(energy before - energy after) / max(accuracy lost, tolerance)`` and stop at
  ``energy_target`` of the original energy or when no trial stays within
  ``max_drop``. ``energy_fn`` is any ``model -> float`` (modelled energy, MACs,
  measured latency), in the spirit of energy-aware pruning (Yang et al., CVPR 2017)
  and NetAdapt (Yang et al., ECCV 2018).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .importance import consumer_columns, norm_importance, reconstruction_importance
from .reconstruct import input_gram, least_squares
from .removal import ChannelGroup, ChannelSurgeon, StructuredRecord, calibration_inputs

__all__ = ["Criterion", "StructuredConfig", "prune_structured", "lowest_channels"]


class Criterion(str, Enum):
    """How structured pruning chooses the channels to remove."""

    L1 = "l1"  #: smallest sum of |w| per filter
    L2 = "l2"  #: smallest L2 norm per filter
    RECONSTRUCTION = "reconstruction"  #: smallest contribution to the next layers' outputs (ThiNet)
    ENERGY = "energy"  #: largest energy saved per accuracy lost, greedily


@dataclass(frozen=True, slots=True)
class StructuredConfig:
    """Parameters of :func:`prune_structured`.

    ``ratio`` (l1, l2, reconstruction) is the fraction of each group's channels removed;
    ``ignore`` names modules whose groups are never pruned (the output layer never is);
    ``reconstruct`` refits the consumers by least squares (reconstruction only);
    ``samples`` caps the calibration samples used. Energy criterion: ``step`` is the
    fraction of a group removed per trial, ``energy_target`` the stopping energy as a
    fraction of the original, ``max_drop`` the largest accepted accuracy drop (absolute,
    0.02 = 2 points) and ``tolerance`` the accuracy loss below which a trial counts as free.
    """

    criterion: Criterion = Criterion.L1
    ratio: float = 0.5
    ignore: tuple[str, ...] = ()
    reconstruct: bool = False
    samples: int = 512
    step: float = 0.125
    energy_target: float = 0.5
    max_drop: float = 0.02
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "criterion", Criterion(self.criterion))
        except ValueError as exc:
            raise ValueError(f"StructuredConfig: criterion must be one of {[c.value for c in Criterion]} (got {self.criterion!r})") from exc
        object.__setattr__(self, "ignore", tuple(self.ignore))
        for name in ("ratio", "energy_target", "max_drop"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"StructuredConfig: {name} must be in [0, 1] (got {value!r})")
        if not isinstance(self.step, (int, float)) or not 0.0 < self.step < 1.0:
            raise ValueError(f"StructuredConfig: step must be in (0, 1) (got {self.step!r})")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise ValueError(f"StructuredConfig: samples must be a positive int (got {self.samples!r})")
        if not isinstance(self.tolerance, (int, float)) or not self.tolerance > 0:
            raise ValueError(f"StructuredConfig: tolerance must be > 0 (got {self.tolerance!r})")


def lowest_channels(scores: Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores, ties broken by position, sorted ascending.

    Example: scores ``[3, 1, 2, 1]`` and count 2 give ``[1, 3]``.
    """
    return sorted(int(i) for i in torch.argsort(scores, stable=True)[:count])


def _count(group: ChannelGroup, ratio: float) -> int:
    return min(round(ratio * group.size), group.size - 1)


def _by_norm(surgeon: ChannelSurgeon, config: StructuredConfig) -> None:
    p = 1.0 if config.criterion is Criterion.L1 else 2.0
    plan = {g.root: lowest_channels(norm_importance(g, p), _count(g, config.ratio)) for g in surgeon.groups(config.ignore)}
    for root, indices in plan.items():
        if indices:
            surgeon.remove(root, indices)


def _by_reconstruction(surgeon: ChannelSurgeon, config: StructuredConfig, x: Tensor) -> None:
    for root in [g.root for g in surgeon.groups(config.ignore)]:
        group = surgeon.group(root)
        count = _count(group, config.ratio)
        if not count:
            continue
        grams = {c.name: input_gram(surgeon.model, c.name, x) for c in group.consumers()}
        indices = lowest_channels(reconstruction_importance(group, grams), count)
        refits = {}
        if config.reconstruct:
            removed = set(indices)
            for member in group.consumers():
                cols, roots = consumer_columns(member)
                keep = torch.ones(grams[member.name].shape[-1], dtype=torch.bool)
                keep[cols[torch.tensor([int(r) in removed for r in roots], dtype=torch.bool)]] = False
                weight = member.module.weight.detach().reshape(member.module.weight.shape[0], -1)
                refits[member.name] = least_squares(grams[member.name][0], weight, keep)[:, keep]
        surgeon.remove(root, indices)
        modules = dict(surgeon.model.named_modules())
        with torch.no_grad():
            for name, weight in refits.items():
                modules[name].weight.copy_(weight.reshape(modules[name].weight.shape))


def _by_energy(surgeon: ChannelSurgeon, config: StructuredConfig, energy_fn: Callable[[nn.Module], float],
               evaluate_fn: Callable[[nn.Module], float]) -> dict[str, float]:
    base_energy, base_accuracy = float(energy_fn(surgeon.model)), float(evaluate_fn(surgeon.model))
    energy, accuracy = base_energy, base_accuracy
    while energy > config.energy_target * base_energy:
        best: tuple[float, str, list[int], float, float] | None = None
        for group in surgeon.groups(config.ignore):
            count = max(1, round(config.step * group.size))
            if count >= group.size:
                continue
            indices = lowest_channels(norm_importance(group, 1.0), count)
            trial = ChannelSurgeon(copy.deepcopy(surgeon.model), surgeon.inputs)
            trial.remove(group.root, indices)
            trial_energy, trial_accuracy = float(energy_fn(trial.model)), float(evaluate_fn(trial.model))
            if base_accuracy - trial_accuracy > config.max_drop or trial_energy >= energy:
                continue
            score = (energy - trial_energy) / max(accuracy - trial_accuracy, config.tolerance)
            if best is None or score > best[0]:
                best = (score, group.root, indices, trial_energy, trial_accuracy)
        if best is None:
            break
        _, root, indices, energy, accuracy = best
        surgeon.remove(root, indices)
    return {"energy_before": base_energy, "energy_after": energy, "accuracy_before": base_accuracy, "accuracy_after": accuracy}


def prune_structured(model: nn.Module, example: Any, config: StructuredConfig | None = None, *, data: Any = None,
                     energy_fn: Callable[[nn.Module], float] | None = None,
                     evaluate_fn: Callable[[nn.Module], float] | None = None, **overrides) -> tuple[nn.Module, StructuredRecord]:
    """Remove whole channels/filters/neurons of ``model`` and return a smaller copy and its record.

    ``example`` is an input tensor or shape (for the dependency graph); ``config`` (or
    keyword overrides of :class:`StructuredConfig` fields) picks the criterion. ``data``
    (input tensor, ``(inputs, labels)``, TensorDataset or Dataset) is the calibration set
    of the ``reconstruction`` criterion; ``energy_fn`` (``model -> float``, any unit) and
    ``evaluate_fn`` (``model -> accuracy`` in [0, 1]) drive the ``energy`` criterion.
    Residual, concat, flatten and depthwise couplings are handled by Torch-Pruning's
    dependency graph. Units: channels (Conv) or neurons (Linear). Example:
    ``prune_structured(lenet300, (1, 784), ratio=0.5)`` leaves fc1 with 150 and fc2 with
    50 outputs (fc3, the output layer, keeps 10), i.e. 784*150 + 150*50 + 50*10 = 125,600
    weights instead of 266,200.
    """
    config = config or StructuredConfig()
    if not isinstance(config, StructuredConfig):
        raise UserInputError(f"prune_structured: config must be a StructuredConfig (got {type(config).__name__})")
    try:
        config = dataclasses.replace(config, **overrides)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"prune_structured: {exc}") from exc
    surgeon = ChannelSurgeon(copy.deepcopy(model), example)
    info: dict[str, Any] = {"criterion": config.criterion.value}
    if config.criterion in (Criterion.L1, Criterion.L2):
        info["ratio"] = config.ratio
        _by_norm(surgeon, config)
    elif config.criterion is Criterion.RECONSTRUCTION:
        if data is None:
            raise UserInputError("prune_structured: criterion 'reconstruction' needs calibration data (data=...)")
        info.update(ratio=config.ratio, reconstruct=config.reconstruct)
        _by_reconstruction(surgeon, config, calibration_inputs(data, config.samples))
    else:
        if energy_fn is None or evaluate_fn is None:
            raise UserInputError("prune_structured: criterion 'energy' needs energy_fn (model -> float) and evaluate_fn (model -> accuracy)")
        info.update(_by_energy(surgeon, config, energy_fn, evaluate_fn))
    if not all(math.isfinite(v) for v in info.values() if isinstance(v, float)):
        raise UserInputError(f"prune_structured: energy_fn/evaluate_fn returned a non-finite value ({info})")
    return surgeon.model, surgeon.record(f"structured.{config.criterion.value}", info)

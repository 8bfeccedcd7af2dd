"""Structured pruning: remove whole filters, channels and neurons, chosen by norm, reconstruction error or energy.

Registered as the method ``structured``, which returns a physically smaller model
(fine-tuned with the context's policy). Three ways to choose what goes:

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
  ``energy_target`` of the original energy or when no trial stays within the
  context's accuracy budget. The energy is the context's objective (modelled energy,
  MACs, measured latency), in the spirit of energy-aware pruning (Yang et al., CVPR 2017)
  and NetAdapt (Yang et al., ECCV 2018).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method
from .importance import consumer_columns, norm_importance, reconstruction_importance
from .reconstruct import input_gram, least_squares
from .record import Step
from .removal import ChannelGroup, ChannelSurgeon

__all__ = ["Criterion", "StructuredConfig", "structured", "lowest_channels"]


class Criterion(str, Enum):
    """How structured pruning chooses the channels to remove."""

    L1 = "l1"  #: smallest sum of |w| per filter
    L2 = "l2"  #: smallest L2 norm per filter
    RECONSTRUCTION = "reconstruction"  #: smallest contribution to the next layers' outputs (ThiNet)
    ENERGY = "energy"  #: largest energy saved per accuracy lost, greedily


@dataclass(frozen=True, slots=True)
class StructuredConfig:
    """Parameters of structured pruning (the keyword parameters of the method ``structured``).

    ``ratio`` (l1, l2, reconstruction) is the fraction of each group's channels removed;
    ``ignore`` names modules whose groups are never pruned (the output layer never is);
    ``reconstruct`` refits the consumers by least squares (reconstruction only);
    ``samples`` caps the calibration samples used. Energy criterion: ``step`` is the
    fraction of a group removed per trial, ``energy_target`` the stopping energy as a
    fraction of the original and ``tolerance`` the accuracy loss below which a trial
    counts as free; the accuracy budget is the context's.
    """

    criterion: Criterion = Criterion.L1
    ratio: float = 0.5
    ignore: tuple[str, ...] = ()
    reconstruct: bool = False
    samples: int = 512
    step: float = 0.125
    energy_target: float = 0.5
    tolerance: float = 1e-3

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "criterion", Criterion(self.criterion))
        except ValueError as exc:
            raise UserInputError(f"StructuredConfig: criterion must be one of {[c.value for c in Criterion]} (got {self.criterion!r})") from exc
        object.__setattr__(self, "ignore", tuple(self.ignore))
        for name in ("ratio", "energy_target"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise UserInputError(f"StructuredConfig: {name} must be in [0, 1] (got {value!r})")
        if not isinstance(self.step, (int, float)) or not 0.0 < self.step < 1.0:
            raise UserInputError(f"StructuredConfig: step must be in (0, 1) (got {self.step!r})")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise UserInputError(f"StructuredConfig: samples must be a positive int (got {self.samples!r})")
        if not isinstance(self.tolerance, (int, float)) or not self.tolerance > 0:
            raise UserInputError(f"StructuredConfig: tolerance must be > 0 (got {self.tolerance!r})")


def lowest_channels(scores: Tensor, count: int) -> list[int]:
    """Indices of the ``count`` lowest scores, ties broken by position, sorted ascending.

    Example: scores ``[3, 1, 2, 1]`` and count 2 give ``[1, 3]``.
    """
    return sorted(int(i) for i in torch.argsort(scores, stable=True)[:count])


def _count(group: ChannelGroup, ratio: float) -> int:
    return min(round(ratio * group.size), group.size - 1)


def _by_norm(surgeon: ChannelSurgeon, config: StructuredConfig) -> list[Step]:
    p = 1.0 if config.criterion is Criterion.L1 else 2.0
    groups = surgeon.groups(config.ignore)
    plan = {g.root: (lowest_channels(norm_importance(g, p), _count(g, config.ratio)), g.size) for g in groups}
    steps = []
    for root, (indices, size) in plan.items():
        if indices:
            surgeon.remove(root, indices)
            steps.append(Step(len(steps), root, len(indices) / size))
    return steps


def _by_reconstruction(surgeon: ChannelSurgeon, config: StructuredConfig, x: Tensor) -> list[Step]:
    steps = []
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
        steps.append(Step(len(steps), root, count / group.size))
        modules = dict(surgeon.model.named_modules())
        with torch.no_grad():
            for name, weight in refits.items():
                modules[name].weight.copy_(weight.reshape(modules[name].weight.shape))
    return steps


def _by_energy(surgeon: ChannelSurgeon, config: StructuredConfig, context: CompressionContext,
               energy_fn: Callable[[nn.Module], float]) -> list[Step]:
    # Many accept decisions: taken on the selection split, the budget on validation stays unseen.
    context = context.with_selection_reference(surgeon.model)
    energy, accuracy = float(energy_fn(surgeon.model)), context.selection_accuracy(surgeon.model)
    target, floor, steps = config.energy_target * energy, context.selection_floor(), []
    while energy > target:
        best: tuple[float, str, list[int], float, float] | None = None
        for group in surgeon.groups(config.ignore):
            count = max(1, round(config.step * group.size))
            if count >= group.size:
                continue
            indices = lowest_channels(norm_importance(group, 1.0), count)
            trial = ChannelSurgeon(copy.deepcopy(surgeon.model), surgeon.inputs)
            trial.remove(group.root, indices)
            trial_energy, trial_accuracy = float(energy_fn(trial.model)), context.selection_accuracy(trial.model)
            if trial_accuracy < floor or trial_energy >= energy:
                continue
            score = (energy - trial_energy) / max(accuracy - trial_accuracy, config.tolerance)
            if best is None or score > best[0]:
                best = (score, group.root, indices, trial_energy, trial_accuracy)
        if best is None:
            break
        _, root, indices, energy, accuracy = best
        if not math.isfinite(energy):
            raise UserInputError(f"structured: the energy objective returned a non-finite value ({energy})")
        size = surgeon.group(root).size
        surgeon.remove(root, indices)
        steps.append(Step(len(steps), root, len(indices) / size, accuracy))
    return steps


def _config(criterion: str | None, ratio: float | None, ignore: tuple[str, ...], reconstruct: bool, samples: int,
            step: float, energy_target: float, tolerance: float) -> StructuredConfig:
    """The config of the method's parameters: ``criterion`` defaults to l1 with a ``ratio``, else energy."""
    chosen = criterion or (Criterion.L1 if ratio is not None else Criterion.ENERGY)
    return StructuredConfig(chosen, 0.5 if ratio is None else ratio, tuple(ignore), reconstruct, samples, step,
                            energy_target, tolerance)


@register_method("structured", strength="ratio", check=_config)
def structured(model: nn.Module, context: CompressionContext, *, criterion: str | None = None, ratio: float | None = None,
               ignore: tuple[str, ...] = (), reconstruct: bool = False, samples: int = 512, step: float = 0.125,
               energy_target: float = 0.5, tolerance: float = 1e-3) -> Outcome:
    """Remove whole channels, filters and neurons (physically), chosen by norm, reconstruction error or energy.

    ``criterion``: ``"l1"``/``"l2"`` (smallest filters, Li et al. 2017), ``"reconstruction"``
    (ThiNet; ``reconstruct`` refits the next layers by least squares on ``samples``
    training images) or ``"energy"`` (greedy: the removal of ``step`` of a group with the
    most energy saved per accuracy lost, within the budget, until ``energy_target`` of the
    original energy). Default: ``"l1"`` when a ``ratio`` (fraction of each group's
    channels removed) is given, else ``"energy"``. ``ignore``: modules never pruned.
    Residual, concat, flatten and depthwise couplings come from Torch-Pruning's dependency
    graph. The model is fine-tuned afterwards with the context's policy.
    """
    config = _config(criterion, ratio, ignore, reconstruct, samples, step, energy_target, tolerance)
    surgeon = ChannelSurgeon(model, context.examples[:1])
    first = len(surgeon.edits)
    if config.criterion in (Criterion.L1, Criterion.L2):
        steps = _by_norm(surgeon, config)
    elif config.criterion is Criterion.RECONSTRUCTION:
        steps = _by_reconstruction(surgeon, config, context.calibration(config.samples))
    else:
        context.require("max_accuracy_drop", "structured (criterion 'energy')")
        steps = _by_energy(surgeon, config, context, context.require("energy", "structured (criterion 'energy')"))
    tuned = context.fine_tune(surgeon.model)
    removed: dict[str, int] = {}
    for edit in surgeon.edits[first:]:
        removed[edit.module] = removed.get(edit.module, 0) + len(edit.data["indices"])
    what = f"ratio {config.ratio:g}" if config.criterion is not Criterion.ENERGY else "energy"
    summary = f"criterion {config.criterion.value} ({what}): {sum(removed.values())} channels removed in {len(removed)} group(s)"
    return Outcome(surgeon.model, summary + (", fine-tuned" if tuned else ""), steps,
                   {"criterion": config.criterion.value, "removed": removed})

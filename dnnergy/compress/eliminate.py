"""Neuron elimination without retraining (Zhang, Davoodi and Hu; seed 002, Algorithms 1 and 2).

For a hidden layer with ``n`` neurons whose activations on ``K`` calibration samples form
``X`` (n x K, the input of the next layer), keep ``p`` representative neurons and refit
the next layer so that it reproduces its pre-activations from them alone:

1. Algorithm 2: ``X = U S V^T``; QR with column pivoting of ``U_p^T`` (the first ``p``
   left singular vectors), ``U_p^T P = Q R``; the first ``p`` pivots are the neurons kept
   (Chan, "Rank revealing QR factorizations", 1987).
2. Eq. 6: ``W_p = argmin ||W_p X_p - W X||_F`` (closed-form least squares; the next
   layer's bias is kept as it is), then the other ``n - p`` neurons are removed
   physically: the layer has ``p`` outputs and the next layer ``p`` inputs.
3. Algorithm 1: sweep ``p`` down from ``rank(X)``, recording accuracy and energy, until
   the accuracy drop exceeds a threshold.

With ``p = rank(X)`` the next layer's pre-activations are reproduced exactly (up to
round-off) on the calibration samples. Works for a Linear layer followed by a Linear
layer (also through ``flatten``) and, as an extension, for a Conv2d layer followed by an
ungrouped Conv2d (a neuron is then a channel and ``X`` is channels x (samples * positions)).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import scipy.linalg
import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .importance import consumer_columns
from .reconstruct import input_rows, least_squares, output_error
from .removal import ChannelSurgeon, Coupled, StructuredRecord, calibration_inputs

__all__ = ["representative_neurons", "activation_matrix", "eliminate_neurons", "elimination_sweep",
           "EliminationPoint", "EliminationSweep"]


def representative_neurons(x: Tensor | np.ndarray, p: int) -> tuple[int, ...]:
    """Algorithm 2: the ``p`` neurons (rows of ``x``, n x K) chosen by QR with column pivoting of ``U_p^T``, in pivot order.

    Example: for ``x = [[1, 0], [2, 0], [0, 1]]`` and ``p = 2`` the pivots are rows 1
    and 2 (row 1 dominates the first singular vector, row 2 spans the second).
    """
    x = np.asarray(x.detach().cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    if x.ndim != 2 or not 1 <= p <= min(x.shape):
        raise UserInputError(f"representative_neurons: need a 2-D activation matrix and 1 <= p <= {min(x.shape) if x.ndim == 2 else '?'} (got shape {x.shape}, p={p})")
    u = np.linalg.svd(x, full_matrices=False)[0]
    _, _, pivots = scipy.linalg.qr(u[:, :p].T, mode="economic", pivoting=True)
    return tuple(int(i) for i in pivots[:p])


@dataclass(frozen=True, slots=True)
class _Layer:
    """What elimination needs about one layer: its consumer, their rows and Gram, and X."""

    consumer: Coupled
    neurons: int
    x: np.ndarray  # n x samples
    gram: Tensor  # consumer input Gram, K x K
    weight: Tensor  # consumer weight rows, M x K
    columns: list[Tensor]  # consumer columns of each neuron


def _inspect(model: nn.Module, layer: str, data: Any, example: Any, samples: int | None) -> tuple[ChannelSurgeon, _Layer]:
    x_in = calibration_inputs(data, samples)
    surgeon = ChannelSurgeon(copy.deepcopy(model), example if example is not None else x_in[:1])
    group = surgeon.group(layer)
    consumers, producers = group.consumers(), group.producers()
    if len(consumers) != 1 or [m.name for m in producers] != [layer]:
        raise UserInputError(f"{layer}: neuron elimination needs a layer whose outputs feed exactly one Linear/Conv layer and no "
                             f"residual (consumers {[m.name for m in consumers]}, coupled producers {[m.name for m in producers]})")
    consumer = consumers[0]
    module = consumer.module
    if not (isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)):
        raise UserInputError(f"{consumer.name}: neuron elimination refits Linear or ungrouped Conv2d layers (got {type(module).__name__})")
    captured: list[Tensor] = []
    handle = module.register_forward_pre_hook(lambda mod, args: captured.append(args[0].detach().to(torch.float64)))
    surgeon.model.eval()
    try:
        with torch.no_grad():
            surgeon.model(x_in)
    finally:
        handle.remove()
    inputs = torch.cat(captured)
    rows = input_rows(module, inputs)[0]
    cols, roots = consumer_columns(consumer)
    columns = [cols[roots == r] for r in range(group.size)]
    if isinstance(module, nn.Linear):  # a neuron's samples: its input feature(s) on every calibration input
        flat = inputs.reshape(-1, module.in_features)
        x = torch.stack([flat[:, c].reshape(-1) for c in columns])
    else:  # a channel's samples: every (image, position)
        order = torch.tensor(consumer.indices)[torch.argsort(torch.tensor(consumer.roots))]
        x = inputs.transpose(0, 1).reshape(inputs.shape[1], -1)[order]
    weight = module.weight.detach().reshape(module.weight.shape[0], -1).to(torch.float64)
    return surgeon, _Layer(consumer, group.size, x.numpy(), rows.T @ rows, weight, columns)


def _apply(surgeon: ChannelSurgeon, info: _Layer, layer: str, kept: Sequence[int]) -> float:
    """Remove the other neurons and refit the consumer (Eq. 6); returns the residual ``||W_p X_p - W X||_F^2``."""
    keep = torch.zeros(info.gram.shape[0], dtype=torch.bool)
    for neuron in kept:
        keep[info.columns[neuron]] = True
    refit = least_squares(info.gram, info.weight, keep)
    residual = float(output_error(info.gram, info.weight, refit).sum())
    removed = sorted(set(range(info.neurons)) - set(kept))
    if removed:
        surgeon.remove(layer, removed)
    module = dict(surgeon.model.named_modules())[info.consumer.name]
    with torch.no_grad():
        module.weight.copy_(refit[:, keep].reshape(module.weight.shape).to(module.weight.dtype))
    return residual


def activation_matrix(model: nn.Module, layer: str, data: Any, *, example: Any = None, samples: int | None = 1024) -> Tensor:
    """``X`` (neurons x samples, float64): the outputs of ``layer`` as seen by the next layer on ``data``.

    For a conv layer a "neuron" is a channel and its samples are all (image, position)
    pairs. Example: LeNet-300-100's ``fc1`` on 1,000 images gives a 300 x 1000 matrix.
    """
    return torch.from_numpy(_inspect(model, layer, data, example, samples)[1].x)


def eliminate_neurons(model: nn.Module, layer: str, data: Any, p: int, *, example: Any = None,
                      samples: int | None = 1024) -> tuple[nn.Module, StructuredRecord]:
    """Keep ``p`` representative neurons of ``layer`` (Algorithm 2), refit the next layer (Eq. 6), remove the rest.

    ``data`` is the calibration set (input tensor, ``(inputs, labels)``, TensorDataset or
    Dataset; the first ``samples`` inputs). Returns a physically smaller copy and its
    :class:`~dnnergy.compress.removal.StructuredRecord` (``info`` holds ``p``, the kept
    neurons and the residual ``||W_p X_p - W X||_F^2`` in squared pre-activation units,
    summed over the calibration samples). No retraining. Example:
    ``eliminate_neurons(lenet300, "fc1", digits_images, 40)`` gives ``fc1: Linear(784, 40)``
    and ``fc2: Linear(40, 100)``.
    """
    surgeon, info = _inspect(model, layer, data, example, samples)
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= info.neurons:
        raise UserInputError(f"{layer}: p must be an int in [1, {info.neurons}] (got {p!r})")
    p = int(p)
    if p > info.x.shape[1]:
        raise UserInputError(f"{layer}: p={p} exceeds the {info.x.shape[1]} calibration samples; pass more data")
    kept = sorted(representative_neurons(info.x, p))
    residual = _apply(surgeon, info, layer, kept)
    return surgeon.model, surgeon.record("eliminate", {"layer": layer, "p": p, "kept": kept, "residual": residual})


@dataclass(frozen=True, slots=True)
class EliminationPoint:
    """One configuration of Algorithm 1: ``p`` neurons kept, its accuracy (fraction), energy (energy_fn's unit) and residual."""

    p: int
    accuracy: float
    energy: float | None
    residual: float

    def __post_init__(self) -> None:
        if not isinstance(self.p, int) or self.p < 1:
            raise ValueError(f"EliminationPoint: p must be a positive int (got {self.p!r})")
        if not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"EliminationPoint: accuracy must be in [0, 1] (got {self.accuracy!r})")
        if self.energy is not None and not math.isfinite(self.energy):
            raise ValueError(f"EliminationPoint: energy must be finite or None (got {self.energy!r})")
        if not self.residual >= 0.0:
            raise ValueError(f"EliminationPoint: residual must be >= 0 (got {self.residual!r})")


@dataclass(frozen=True, slots=True)
class EliminationSweep:
    """Algorithm 1's record: the layer, ``rank(X)``, the unpruned baseline and one point per ``p`` tried (descending)."""

    layer: str
    neurons: int
    rank: int
    accuracy: float
    energy: float | None
    points: tuple[EliminationPoint, ...]

    def best(self, threshold: float) -> EliminationPoint | None:
        """The point with the fewest neurons whose accuracy drop is at most ``threshold``."""
        ok = [pt for pt in self.points if self.accuracy - pt.accuracy <= threshold]
        return min(ok, key=lambda pt: pt.p) if ok else None

    def to_records(self) -> list[dict]:
        """One flat dict per point (layer, p, accuracy, energy, residual, accuracy drop)."""
        return [{"layer": self.layer, "p": pt.p, "accuracy": pt.accuracy, "energy": pt.energy, "residual": pt.residual,
                 "accuracy_drop": self.accuracy - pt.accuracy} for pt in self.points]


def elimination_sweep(model: nn.Module, layer: str, data: Any, evaluate_fn: Callable[[nn.Module], float],
                      energy_fn: Callable[[nn.Module], float] | None = None, *, threshold: float = 0.02, step: int = 1,
                      example: Any = None, samples: int | None = 1024) -> EliminationSweep:
    """Algorithm 1: for ``p = rank(X), rank(X) - step, ...`` eliminate down to ``p`` neurons and record the trade-off.

    Stops after the first ``p`` whose accuracy drop (``evaluate_fn(original) -
    evaluate_fn(simplified)``, absolute fraction) exceeds ``threshold`` (that point is
    recorded) or at ``p = 1``. ``energy_fn`` is any ``model -> float``. The SVD of ``X``
    is computed once. Rebuild a chosen point with :func:`eliminate_neurons` (same data, its ``p``).
    """
    if not isinstance(step, int) or step < 1:
        raise UserInputError(f"elimination_sweep: step must be a positive int (got {step!r})")
    surgeon, info = _inspect(model, layer, data, example, samples)
    base_accuracy = float(evaluate_fn(model))
    base_energy = float(energy_fn(model)) if energy_fn else None
    u, singular, _ = np.linalg.svd(info.x, full_matrices=False)
    rank = int((singular > singular.max(initial=0.0) * max(info.x.shape) * np.finfo(np.float64).eps).sum())  # numpy's matrix_rank
    points = []
    for p in range(rank, 0, -step):  # Algorithm 1
        kept = sorted(int(i) for i in scipy.linalg.qr(u[:, :p].T, mode="economic", pivoting=True)[2][:p])
        trial = ChannelSurgeon(copy.deepcopy(surgeon.model), surgeon.inputs)
        residual = _apply(trial, info, layer, kept)
        point = EliminationPoint(p, float(evaluate_fn(trial.model)), float(energy_fn(trial.model)) if energy_fn else None, residual)
        points.append(point)
        if base_accuracy - point.accuracy > threshold:
            break
    return EliminationSweep(layer, info.neurons, rank, base_accuracy, base_energy, tuple(points))

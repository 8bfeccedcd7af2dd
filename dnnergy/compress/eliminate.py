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
   the accuracy drop exceeds a threshold. The sweep, its energy-guided extension to
   several layers and the registered method ``eliminate`` live in
   :mod:`dnnergy.explore.elimination`; they build models with :class:`PlanBuilder`.

With ``p = rank(X)`` the next layer's pre-activations are reproduced exactly (up to
round-off) on the calibration samples. Works for a Linear layer followed by a Linear
layer (also through ``flatten``) and, as an extension, for a Conv2d layer followed by an
ungrouped Conv2d (a neuron is then a channel and ``X`` is channels x (samples * positions)).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .importance import consumer_columns
from .reconstruct import input_rows, least_squares, output_error
from .removal import ChannelSurgeon, InputSubsetLinear, calibration_inputs

__all__ = ["INPUTS", "representative_neurons", "activation_matrix", "eliminate_neurons", "eliminate_plan", "PlanBuilder"]


def representative_neurons(x: Tensor | np.ndarray, p: int) -> tuple[int, ...]:
    """Algorithm 2: the ``p`` neurons (rows of ``x``, n x K) chosen by QR with column pivoting of ``U_p^T``, in pivot order.

    Example: for ``x = [[1, 0], [2, 0], [0, 1]]`` and ``p = 2`` the pivots are rows 1
    and 2 (row 1 dominates the first singular vector, row 2 spans the second).
    """
    x = np.asarray(x.detach().cpu().numpy() if isinstance(x, Tensor) else x, dtype=np.float64)
    if x.ndim != 2 or not 1 <= p <= min(x.shape):
        raise UserInputError(f"representative_neurons: need a 2-D activation matrix and 1 <= p <= {min(x.shape) if x.ndim == 2 else '?'} (got shape {x.shape}, p={p})")
    return _pivots(_left_singular(x)[0], p)


def _left_singular(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U, s)`` of ``x = U S V^T`` (n x K) without forming ``V``: for a wide ``x`` (a conv channel's samples
    are every image and position, K >> n) through the n x n factor ``R`` of ``x^T = Q R``, since
    ``x = R^T Q^T`` has the same left singular vectors and values as ``R^T``."""
    if x.shape[1] > 2 * x.shape[0]:
        x = np.linalg.qr(x.T, mode="r").T
    u, singular, _ = np.linalg.svd(x, full_matrices=False)
    return u, singular


def _pivots(u: np.ndarray, p: int) -> tuple[int, ...]:
    """Steps 3-5 of Algorithm 2 on the left singular vectors ``u``: the first ``p`` pivots of QR of ``U_p^T``."""
    import scipy.linalg  # here, not at import: scipy is slow to import and only this search needs it

    return tuple(int(i) for i in scipy.linalg.qr(u[:, :p].T, mode="economic", pivoting=True)[2][:p])


#: Plan key for the model's input features (read by the Linear layer that takes the flattened input).
INPUTS = "inputs"


@dataclass(frozen=True, slots=True)
class _Layer:
    """What elimination needs about one set of neurons: who shrinks, who is refitted, its Gram and X."""

    key: str  # a layer name, or INPUTS
    shrink: str  # the module that loses outputs (or, for INPUTS, input features)
    consumer: str  # the module refitted by Eq. 6
    neurons: int
    x: np.ndarray  # n x samples
    gram: Tensor  # consumer input Gram, K x K
    weight: Tensor  # consumer weight rows, M x K
    columns: list[Tensor]  # consumer columns of each neuron


def _capture(model: nn.Module, modules: Sequence[nn.Module], x_in: Tensor) -> list[Tensor]:
    """The (float64) input of each of ``modules`` on ``x_in``, one eval forward pass."""
    captured: dict[int, Tensor] = {}

    def hook(i: int) -> Callable:
        def record(module: nn.Module, args: tuple) -> None:  # returns None: the input is left as it is
            captured.setdefault(i, args[0].detach().to(torch.float64))
        return record

    handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(modules)]
    model.eval()
    try:
        with torch.no_grad():
            model(x_in)
    finally:
        for handle in handles:
            handle.remove()
    return [captured[i] for i in range(len(modules))]


def _input_layer(model: nn.Module, x_in: Tensor) -> tuple[str, nn.Linear, Tensor]:
    """The one Linear layer that reads the flattened model input, and its input features (samples x features)."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    seen = _capture(model, [m for _, m in linears], x_in)
    flat = x_in.detach().reshape(len(x_in), -1).to(torch.float64)
    readers = [(n, m) for (n, m), x in zip(linears, seen) if x.shape == flat.shape and torch.equal(x, flat)]
    if len(readers) != 1:
        raise UserInputError(f"{INPUTS}: input-feature elimination needs exactly one Linear layer that reads the flattened "
                             f"model input (found {[n for n, _ in readers]})")
    name, module = readers[0]
    features = module.features if isinstance(module, InputSubsetLinear) else torch.arange(flat.shape[1])
    return name, module, flat[:, features]


def _inspect(surgeon: ChannelSurgeon, key: str, x_in: Tensor) -> _Layer:
    if key == INPUTS:
        name, module, rows = _input_layer(surgeon.model, x_in)
        weight = module.weight.detach().to(torch.float64)
        return _Layer(key, name, name, rows.shape[1], rows.T.numpy(), rows.T @ rows, weight,
                      [torch.tensor([j]) for j in range(rows.shape[1])])
    group = surgeon.group(key)
    consumers, producers = group.consumers(), group.producers()
    if len(consumers) != 1 or [m.name for m in producers] != [key]:
        raise UserInputError(f"{key}: neuron elimination needs a layer whose outputs feed exactly one Linear/Conv layer and no "
                             f"residual (consumers {[m.name for m in consumers]}, coupled producers {[m.name for m in producers]})")
    consumer = consumers[0]
    module = consumer.module
    if not (isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)):
        raise UserInputError(f"{consumer.name}: neuron elimination refits Linear or ungrouped Conv2d layers (got {type(module).__name__})")
    inputs = _capture(surgeon.model, [module], x_in)[0]
    if isinstance(module, InputSubsetLinear):
        inputs = inputs.reshape(len(inputs), -1)[:, module.features]
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
    return _Layer(key, key, consumer.name, group.size, x.numpy(), rows.T @ rows, weight, columns)


def _apply(surgeon: ChannelSurgeon, info: _Layer, kept: Sequence[int]) -> float:
    """Remove the other neurons and refit the consumer (Eq. 6); returns the residual ``||W_p X_p - W X||_F^2``."""
    keep = torch.zeros(info.gram.shape[0], dtype=torch.bool)
    for neuron in kept:
        keep[info.columns[neuron]] = True
    refit = least_squares(info.gram, info.weight, keep)
    residual = float(output_error(info.gram, info.weight, refit).sum())
    removed = sorted(set(range(info.neurons)) - set(kept))
    if removed:
        (surgeon.remove_inputs if info.key == INPUTS else surgeon.remove)(info.shrink, removed)
    module = surgeon.model.get_submodule(info.consumer)
    with torch.no_grad():
        module.weight.copy_(refit[:, keep].reshape(module.weight.shape).to(module.weight.dtype))
    return residual


def _check_p(info: _Layer, p: Any) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= info.neurons:
        raise UserInputError(f"{info.key}: p must be an int in [1, {info.neurons}] (got {p!r})")
    if p > info.x.shape[1]:
        raise UserInputError(f"{info.key}: p={p} exceeds the {info.x.shape[1]} calibration samples; pass more data")
    return int(p)


def _surgeon(model: nn.Module, data: Any, example: Any, samples: int | None) -> tuple[ChannelSurgeon, Tensor]:
    x_in = calibration_inputs(data, samples)
    return ChannelSurgeon(copy.deepcopy(model), example if example is not None else x_in[:1]), x_in


def activation_matrix(model: nn.Module, layer: str, data: Any, *, example: Any = None, samples: int | None = 1024) -> Tensor:
    """``X`` (neurons x samples, float64): the outputs of ``layer`` as seen by the next layer on ``data``.

    For a conv layer a "neuron" is a channel and its samples are all (image, position)
    pairs; for ``layer="inputs"`` the neurons are the model's input features. Example:
    LeNet-300-100's ``fc1`` on 1,000 images gives a 300 x 1000 matrix.
    """
    surgeon, x_in = _surgeon(model, data, example, samples)
    return torch.from_numpy(_inspect(surgeon, layer, x_in).x)


def eliminate_plan(model: nn.Module, data: Any, plan: Mapping[str, int], *, example: Any = None,
                   samples: int | None = 1024) -> tuple[nn.Module, dict[str, Any]]:
    """Eliminate neurons in several layers: ``plan`` maps layer names (or ``"inputs"``) to the ``p`` kept.

    Layers are simplified from the input side on (``"inputs"`` first, then module order),
    each by Algorithm 2 + Eq. 6 on the activations of the network simplified so far, so a
    refit also absorbs the error of the layers before it. ``"inputs"`` is an extension of
    seed 002 (whose layer 0 is the input layer): the Linear layer reading the flattened
    model input keeps ``p`` representative input features and becomes an
    :class:`~dnnergy.compress.removal.InputSubsetLinear`. Returns a physically smaller copy
    (its edit log lists the removals) and plain data: the plan, the neurons each key had
    (``sizes``), the kept neurons and the residual ``||W_p X_p - W X||_F^2`` per key
    (squared pre-activation units, summed over the calibration samples). Example:
    ``eliminate_plan(lenet300, images, {"inputs": 200, "fc1": 40, "fc2": 30})``.
    """
    surgeon, x_in = _surgeon(model, data, example, samples)
    sizes, kept_all, residuals = {}, {}, {}
    for key in _plan_order(surgeon.model, plan):
        info = _inspect(surgeon, key, x_in)
        sizes[key] = info.neurons
        kept_all[key] = sorted(representative_neurons(info.x, _check_p(info, plan[key])))
        residuals[key] = _apply(surgeon, info, kept_all[key])
    return surgeon.model, {"plan": dict(plan), "sizes": sizes, "kept": kept_all, "residual": residuals}


def _plan_order(model: nn.Module, plan: Mapping[str, int]) -> list[str]:
    names = [n for n, _ in model.named_modules()]
    if INPUTS in names:
        raise UserInputError(f"{type(model).__name__} has a module named {INPUTS!r}, which elimination plans use for the input features")
    unknown = [k for k in plan if k != INPUTS and k not in names]
    if unknown:
        raise UserInputError(f"{type(model).__name__}: no prunable Conv/Linear layer named {unknown[0]!r}")
    return sorted(plan, key=lambda k: -1 if k == INPUTS else names.index(k))


def eliminate_neurons(model: nn.Module, layer: str, data: Any, p: int, *, example: Any = None,
                      samples: int | None = 1024) -> tuple[nn.Module, dict[str, Any]]:
    """Keep ``p`` representative neurons of ``layer`` (Algorithm 2), refit the next layer (Eq. 6), remove the rest.

    ``data`` is the calibration set (input tensor, ``(inputs, labels)``, TensorDataset or
    Dataset; the first ``samples`` inputs). Returns a physically smaller copy and plain
    data (``kept`` neurons, ``residual``) as :func:`eliminate_plan`. No retraining. Example:
    ``eliminate_neurons(lenet300, "fc1", digits_images, 40)`` gives ``fc1: Linear(784, 40)``
    and ``fc2: Linear(40, 100)``.
    """
    pruned, info = eliminate_plan(model, data, {layer: p}, example=example, samples=samples)
    return pruned, {"layer": layer, "p": int(p), "kept": info["kept"][layer], "residual": info["residual"][layer]}


class PlanBuilder:
    """Builds eliminated models for plans (neurons kept per key) that share prefixes, reusing the common work.

    ``PlanBuilder(model, data, keys)`` checks every key (layer names and/or ``"inputs"``)
    can be eliminated; :attr:`keys` is their order of simplification (inputs first, then
    module order) and :attr:`sizes` their neuron counts. The model before simplifying key
    ``k`` depends only on the plan's earlier keys, so that model, and ``k``'s layer
    record with the left singular vectors of its ``X``, are cached by plan prefix; a key
    kept at its full size shares the model before it. ``x`` holds the calibration inputs.
    Example: ``PlanBuilder(lenet300, images, ["fc1"]).build([40])`` equals
    ``eliminate_neurons(lenet300, "fc1", images, 40)[0]``.
    """

    def __init__(self, model: nn.Module, data: Any, keys: Sequence[str], *, example: Any = None, samples: int | None = 1024):
        if not keys:
            raise UserInputError("neuron elimination: name at least one layer (or 'inputs')")
        original, self.x = _surgeon(model, data, example, samples)
        self.keys = _plan_order(original.model, dict.fromkeys(keys, 1))
        seeds = [_inspect(original, key, self.x) for key in self.keys]  # also checks that every key can be eliminated
        self.sizes = [info.neurons for info in seeds]
        self._models: dict[tuple[int, ...], tuple[ChannelSurgeon, float]] = {(): (original, 0.0)}
        self._layers = {tuple(self.sizes[:i]): (info, *_left_singular(info.x)) for i, info in enumerate(seeds)}

    def rank(self, i: int = 0) -> int:
        """``rank(X)`` of key ``i`` on the unsimplified model (numpy's ``matrix_rank`` tolerance)."""
        info, _, singular = self._layers[tuple(self.sizes[:i])]
        return int((singular > singular.max(initial=0.0) * max(info.x.shape) * np.finfo(np.float64).eps).sum())

    def build(self, ps: Sequence[int]) -> nn.Module:
        """The model with ``ps[i]`` neurons kept for ``keys[i]`` (Algorithm 2 + Eq. 6, key by key)."""
        for i in range(len(self.keys)):
            prefix = tuple(ps[: i + 1])
            if prefix in self._models:
                continue
            before, _ = self._models[prefix[:-1]]
            if prefix[:-1] not in self._layers:
                info = _inspect(before, self.keys[i], self.x)
                self._layers[prefix[:-1]] = (info, *_left_singular(info.x))
            info, u, _ = self._layers[prefix[:-1]]
            residual = 0.0
            if _check_p(info, ps[i]) < info.neurons:
                surgeon = ChannelSurgeon(copy.deepcopy(before.model), before.inputs)
                residual = _apply(surgeon, info, sorted(_pivots(u, ps[i])))
                before = surgeon
            self._models[prefix] = (before, residual)
        return self._models[tuple(ps)][0].model

    def residual(self, ps: Sequence[int]) -> float:
        """The Eq. 6 residual of the last key of a built plan (0 when it kept every neuron)."""
        return self._models[tuple(ps)][1]

    def keep_only(self, ps: Sequence[int]) -> None:
        """Forget cached prefixes that are not prefixes of ``ps`` (bounds memory)."""
        prefixes = {tuple(ps[:i]) for i in range(len(ps) + 1)}
        self._models = {k: v for k, v in self._models.items() if k in prefixes}
        self._layers = {k: v for k, v in self._layers.items() if k in prefixes}

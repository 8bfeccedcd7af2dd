"""Energy / accuracy / size / MACs / latency trade-offs of a compression method's strength.

A sweep is a list of independent tasks (the model, the method, one strength, the
evaluation and energy functions), run through an ``executor`` with a
``concurrent.futures``-style ``map(fn, iterable)``. The default runs them one after the
other in this process; a ``ProcessPoolExecutor`` (or a Ray-backed executor) works when
every input pickles (module-level functions or ``functools.partial``, not lambdas).

A *method* is any callable ``method(model, strength)`` that compresses ``model`` (a
private copy, so changing it in place is fine) and returns the compressed model, a
``(model, record)`` pair, or anything else (then the changed copy is used). Per-layer
sweeps call ``method(model, strength, layers=[name])``. Example:
``magnitude_prune`` (strength = sparsity) and
``functools.partial(obd_prune, inputs=x, targets=y)`` qualify as they are.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..errors import UserInputError
from ..workload import trace
from ..workload.tracer import example_inputs

__all__ = ["TradeoffPoint", "LocalExecutor", "measure", "tradeoff", "layer_curves", "best_layer"]


@dataclass(frozen=True, slots=True)
class TradeoffPoint:
    """One compressed model's costs and quality.

    ``energy`` in ``energy_unit`` (the energy function's); ``accuracy`` a fraction in
    [0, 1]; ``weights``/``nonzero_weights`` the parameter weights of MAC layers (all /
    non-zero); ``macs`` dense and ``nonzero_macs`` MACs whose weight and input are both
    non-zero (``Layer.nonzero_macs``), both for one sample; ``latency_s`` the median wall
    time in seconds of a forward pass at batch 1 on this CPU; ``size_bytes`` the dense
    storage of all parameters and buffers. ``layer`` is the layer a per-layer sweep
    compressed (``""`` for the whole model).
    """

    strength: float
    energy: float
    accuracy: float
    weights: int
    nonzero_weights: int
    macs: int
    nonzero_macs: float
    latency_s: float
    size_bytes: int
    layer: str = ""
    energy_unit: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"TradeoffPoint: accuracy must be a fraction in [0, 1] (got {self.accuracy})")
        for name in ("energy", "latency_s", "nonzero_macs"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"TradeoffPoint: {name} must be >= 0 (got {getattr(self, name)})")
        for name in ("weights", "nonzero_weights", "macs", "size_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"TradeoffPoint: {name} must be a non-negative int (got {value!r})")
        if self.nonzero_weights > self.weights:
            raise ValueError(f"TradeoffPoint: nonzero_weights ({self.nonzero_weights}) exceeds weights ({self.weights})")

    def to_dict(self) -> dict:
        """Plain data."""
        return asdict(self)


class LocalExecutor:
    """Runs tasks one after the other in this process (``concurrent.futures``-style ``map``)."""

    def map(self, fn: Callable, *iterables: Iterable) -> Iterable:
        return list(map(fn, *iterables))


def measure(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    energy_fn: Callable[[nn.Module], float],
    example_input: Any,
    *,
    strength: float = 0.0,
    layer: str = "",
    latency_runs: int = 5,
) -> TradeoffPoint:
    """All metrics of one model as a :class:`TradeoffPoint` (see its fields for units).

    ``example_input`` is a sample batch or shape; its first sample is used for the MAC
    counts and the batch-1 latency (one warm-up run, then the median of ``latency_runs``).
    """
    if not isinstance(latency_runs, int) or latency_runs < 1:
        raise UserInputError(f"measure: latency_runs must be a positive int (got {latency_runs!r})")
    inputs = tuple(t[:1] for t in example_inputs(example_input))
    workload = trace(model, inputs, measure=True)
    mac_layers = [layer for layer in workload.mac_layers() if layer.weight_is_param]
    nonzero_weights = sum(l.w_stats.nonzeros if l.w_stats else round(l.weights * l.w_density) for l in mac_layers)
    training = model.training
    model.eval()
    times = []
    with torch.no_grad():
        model(*inputs)
        for _ in range(latency_runs):
            start = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - start)
    model.train(training)
    return TradeoffPoint(
        strength=float(strength),
        energy=float(energy_fn(model)),
        accuracy=float(evaluate(model)),
        weights=sum(l.weights for l in mac_layers),
        nonzero_weights=int(nonzero_weights),
        macs=workload.macs,
        nonzero_macs=float(sum(l.nonzero_macs for l in workload.mac_layers())),
        latency_s=statistics.median(times),
        size_bytes=sum(t.numel() * t.element_size() for t in model.state_dict().values()),
        layer=layer,
        energy_unit=getattr(energy_fn, "unit", ""),
    )


@dataclass(frozen=True, slots=True)
class _Task:
    """One sweep point: everything a worker needs, picklable when its callables are."""

    model: nn.Module
    method: Callable
    strength: float
    layer: str
    evaluate: Callable
    energy_fn: Callable
    example_input: Any
    latency_runs: int


def _run(task: _Task) -> TradeoffPoint:
    model = copy.deepcopy(task.model)
    result = task.method(model, task.strength, layers=[task.layer]) if task.layer else task.method(model, task.strength)
    if isinstance(result, tuple) and result and isinstance(result[0], nn.Module):
        result = result[0]
    compressed = result if isinstance(result, nn.Module) else model
    return measure(compressed, task.evaluate, task.energy_fn, task.example_input, strength=task.strength, layer=task.layer,
                   latency_runs=task.latency_runs)


def _check_strengths(strengths: Sequence[float]) -> list[float]:
    values = [float(s) for s in strengths]
    if not values:
        raise UserInputError("tradeoff: strengths must list at least one value, e.g. (0.0, 0.5, 0.9)")
    return values


def tradeoff(
    model: nn.Module,
    method: Callable,
    strengths: Sequence[float],
    evaluate: Callable[[nn.Module], float],
    energy_fn: Callable[[nn.Module], float],
    *,
    example_input: Any,
    executor: Any = None,
    latency_runs: int = 5,
) -> list[TradeoffPoint]:
    """Compress a copy of ``model`` at each strength and measure it: one :class:`TradeoffPoint` each.

    ``strength`` means what the method makes of it (sparsity for magnitude/OBD pruning).
    ``evaluate(model)`` returns accuracy (fraction), ``energy_fn(model)`` energy (any
    ``model -> float``). ``executor`` has ``map(fn, tasks)`` (default
    :class:`LocalExecutor`). The input model is not changed. Example:
    ``tradeoff(net, magnitude_prune, [0, 0.5, 0.9], ev, energy_objective(x), example_input=x)``.
    """
    tasks = [_Task(model, method, s, "", evaluate, energy_fn, example_input, latency_runs) for s in _check_strengths(strengths)]
    return list((executor or LocalExecutor()).map(_run, tasks))


def layer_curves(
    model: nn.Module,
    method: Callable,
    strengths: Sequence[float],
    evaluate: Callable[[nn.Module], float],
    energy_fn: Callable[[nn.Module], float],
    *,
    example_input: Any,
    layers: Sequence[str],
    executor: Any = None,
    latency_runs: int = 5,
) -> dict[str, list[TradeoffPoint]]:
    """For each layer separately, sweep the strength with only that layer compressed (seed 002).

    Calls ``method(model, strength, layers=[layer])``; returns ``{layer: points}`` in the
    order of ``layers``. All (layer, strength) tasks go to ``executor`` at once.
    """
    if not layers:
        raise UserInputError("layer_curves: name at least one layer (module path such as 'fc1')")
    values = _check_strengths(strengths)
    tasks = [_Task(model, method, s, layer, evaluate, energy_fn, example_input, latency_runs) for layer in layers for s in values]
    points = list((executor or LocalExecutor()).map(_run, tasks))
    return {layer: points[i * len(values):(i + 1) * len(values)] for i, layer in enumerate(layers)}


def best_layer(curves: Mapping[str, Sequence[TradeoffPoint]], min_accuracy: float) -> tuple[str, TradeoffPoint] | None:
    """Which layer to simplify for a target accuracy: the lowest-energy point with ``accuracy >= min_accuracy``.

    Returns ``(layer, point)``, or ``None`` when no point reaches the accuracy. Ties go to
    the layer listed first. As in seed 002, the answer changes with the target accuracy.
    """
    best: tuple[str, TradeoffPoint] | None = None
    for layer, points in curves.items():
        for point in points:
            if point.accuracy >= min_accuracy and (best is None or point.energy < best[1].energy):
                best = (layer, point)
    return best

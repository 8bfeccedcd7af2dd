"""Resource objectives ``model -> float`` that steer compression, with a per-layer view.

Every compression method and sweep takes any callable ``model -> float`` with a ``unit``
(energy, MACs, measured latency). :class:`EnergyObjective` and :class:`MacsObjective` also
implement :class:`LayerwiseObjective`, ``by_module(model) -> {module path: value}``, which
energy-aware pruning uses to order layers; they trace the model with
``dnnergy.trace(..., measure=True)``, so pruned (zero) weights, zero activations of the
example input and the model's energy hints (bits, executed MACs) change the result.
:class:`LatencyObjective` measures wall-clock time on this CPU (NetAdapt's "empirical
measurements"). All are plain frozen dataclasses and pickle, so they can be shipped to
worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import nn

from ..errors import UserInputError
from ..workload import Workload, trace

__all__ = ["LayerwiseObjective", "EnergyObjective", "MacsObjective", "WeightsObjective", "LatencyObjective",
           "energy_objective", "macs_objective"]


@runtime_checkable
class LayerwiseObjective(Protocol):
    """A ``model -> float`` objective that can also split its value by module path.

    Minimal implementation::

        class Weights:
            unit = "weights"
            def __call__(self, model): return sum(self.by_module(model).values())
            def by_module(self, model): return {n: m.weight.count_nonzero().item()
                                                for n, m in model.named_modules() if isinstance(m, nn.Linear)}

    Example: the objectives of this module are layerwise, e.g.
    ``MacsObjective((1, 4), nonzero=False).by_module(nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 1)))``
    is ``{'0': 8.0, '2': 2.0}`` (MACs; ``isinstance(MacsObjective((1, 4)), LayerwiseObjective)`` is True).
    """

    unit: str

    def __call__(self, model: nn.Module) -> float: ...

    def by_module(self, model: nn.Module) -> dict[str, float]:
        """The objective's value per module path, in :attr:`unit` (summing to ``objective(model)``)."""
        ...


def _check_example(owner: str, example_input: Any) -> None:
    if example_input is None:
        raise UserInputError(f"{owner}: example_input is required (a tensor of real samples, or a shape such as (1, 1, 28, 28))")


def _sum_by_module(workload: Workload, values: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer in workload.layers:
        if layer.name in values:
            out[layer.module] = out.get(layer.module, 0.0) + values[layer.name]
    return out


#: Layer fields measured on real data that a batch-1 estimate borrows from the example batch.
_MEASURED = ("w_density", "i_density", "o_density", "mac_density", "w_stats", "i_stats", "o_stats")


@dataclass(frozen=True, slots=True, eq=False)
class EnergyObjective:
    """Estimated energy of one forward pass on ``example_input``, in the hardware's unit.

    ``example_input`` is a batch of real samples (preferred: measured activation zeros
    gate MACs and shrink coded DRAM traffic) or a shape (a random normal input);
    ``hardware`` a preset name (``"eyeriss"``: MAC-normalized, ``"horowitz45"``: pJ), a
    YAML path or a ``Hardware``; ``dataflow`` a registered dataflow name. The energy is
    for the whole example batch, or with ``per_image=True`` for classifying one image
    (batch-1 counts, so weights are fetched for that image alone) with the densities and
    zero runs measured on the whole batch. ``estimate_options`` are extra keyword
    arguments of :func:`dnnergy.energy.estimate` as ``(name, value)`` pairs.

    Example (``eyeriss``, MAC-normalized; the 2932 of ``nn.Linear(4, 2)`` is worked out in
    :class:`~dnnergy.energy.EnergyReport`):

    >>> import torch.nn as nn
    >>> objective = EnergyObjective((1, 4))
    >>> model = nn.Sequential(nn.Linear(4, 2))
    >>> objective.unit, objective(model), objective.by_module(model)
    ('MAC-normalized', 2932.0, {'0': 2932.0})
    >>> objective.report(model).by_level()["DRAM"], objective.workload(model).macs
    (2800.0, 8)
    >>> objective.price(objective.workload(model).with_all(w_bits=8)).total < 2932.0  # what-if: 8-bit weights
    True
    """

    example_input: Any
    hardware: Any = "eyeriss"
    dataflow: str = "row_stationary"
    estimate_options: tuple[tuple[str, Any], ...] = ()
    per_image: bool = False

    def __post_init__(self) -> None:
        _check_example("EnergyObjective", self.example_input)
        if not isinstance(self.dataflow, str) or not self.dataflow:
            raise UserInputError(f"EnergyObjective: dataflow must be a dataflow name (got {self.dataflow!r})")
        from ..energy import get_dataflow
        from ..hardware import Hardware, load_hardware

        get_dataflow(self.dataflow)  # an unknown name fails here, not after a model was trained
        if not isinstance(self.hardware, Hardware):
            load_hardware(self.hardware)

    @property
    def unit(self) -> str:
        """The hardware's energy unit (``"pJ"`` or ``"MAC-normalized"``)."""
        from ..hardware import Hardware, load_hardware

        hardware = self.hardware if isinstance(self.hardware, Hardware) else load_hardware(self.hardware)
        return hardware.unit

    def workload(self, model: nn.Module) -> Workload:
        """The workload this objective prices: ``model`` traced on the example input with measured
        densities (at batch 1 with those densities when ``per_image``)."""
        workload = trace(model, self.example_input, measure=True)
        if self.per_image:
            measured = {layer.name: layer for layer in workload.layers}
            single = trace(model, (1, *workload.input_shapes[0][1:]))
            workload = single.replace_layers({layer.name: {f: getattr(measured[layer.name], f) for f in _MEASURED}
                                              for layer in single.layers if layer.name in measured})
        return workload

    def price(self, workload: Workload):
        """The :class:`dnnergy.energy.EnergyReport` of ``workload`` on this objective's hardware,
        dataflow and estimate options, in :attr:`unit` (for what-if edits of :meth:`workload`)."""
        from ..energy import estimate

        return estimate(workload, self.hardware, self.dataflow, **dict(self.estimate_options))

    def _estimate(self, model: nn.Module):
        workload = self.workload(model)
        return workload, self.price(workload)

    def report(self, model: nn.Module):
        """The full :class:`dnnergy.energy.EnergyReport` of ``model`` on the example input."""
        return self._estimate(model)[1]

    def __call__(self, model: nn.Module) -> float:
        return self.report(model).total

    def by_module(self, model: nn.Module) -> dict[str, float]:
        """Energy per module path (the layers a module ran, summed), in :attr:`unit`."""
        workload, report = self._estimate(model)
        return _sum_by_module(workload, report.by_layer())


@dataclass(frozen=True, slots=True, eq=False)
class MacsObjective:
    """Multiply-accumulates of one forward pass on ``example_input`` (whole batch).

    ``nonzero=True`` counts only MACs whose weight and input are both non-zero
    (``Layer.nonzero_macs``: ``macs * w_density * i_density``, zeros assumed
    independent); ``nonzero=False`` counts dense MACs, which pruning does not change.

    Example: ``objective = MacsObjective((1, 4), nonzero=False)`` gives, for
    ``nn.Sequential(nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 1))``, ``objective(model) == 10.0``,
    ``objective.by_module(model) == {'0': 8.0, '2': 2.0}`` and ``objective.unit == "MACs"``.
    """

    example_input: Any
    nonzero: bool = True

    def __post_init__(self) -> None:
        _check_example("MacsObjective", self.example_input)

    @property
    def unit(self) -> str:
        """``"nonzero MACs"`` or ``"MACs"`` (multiply-accumulates)."""
        return "nonzero MACs" if self.nonzero else "MACs"

    def _values(self, model: nn.Module) -> tuple[Workload, dict[str, float]]:
        workload = trace(model, self.example_input, measure=self.nonzero)
        return workload, {layer.name: float(layer.nonzero_macs if self.nonzero else layer.macs) for layer in workload.mac_layers()}

    def __call__(self, model: nn.Module) -> float:
        return sum(self._values(model)[1].values())

    def by_module(self, model: nn.Module) -> dict[str, float]:
        """MACs per module path, in :attr:`unit`."""
        return _sum_by_module(*self._values(model))


@dataclass(frozen=True, slots=True, eq=False)
class WeightsObjective:
    """Weight parameters of the MAC layers (Conv, Linear; as :attr:`Point.weights`), traced on ``example_input``.

    ``nonzero=True`` counts only non-zero weights (so masks count); ``False`` counts
    every weight, which only a physical removal lowers. Example:
    ``WeightsObjective((1, 784), nonzero=False)(nn.Linear(784, 300)) == 235_200``; its ``.unit`` is
    ``"weights"`` and ``.by_module(nn.Sequential(nn.Linear(784, 300)))`` is ``{'0': 235200.0}``.
    """

    example_input: Any
    nonzero: bool = False

    def __post_init__(self) -> None:
        _check_example("WeightsObjective", self.example_input)

    @property
    def unit(self) -> str:
        """``"nonzero weights"`` or ``"weights"`` (a count)."""
        return "nonzero weights" if self.nonzero else "weights"

    def _values(self, model: nn.Module) -> tuple[Workload, dict[str, float]]:
        workload = trace(model, self.example_input, measure=self.nonzero)
        layers = [layer for layer in workload.mac_layers() if layer.weight_is_param]
        return workload, {layer.name: float(layer.weights * (layer.w_density if self.nonzero else 1.0)) for layer in layers}

    def __call__(self, model: nn.Module) -> float:
        return sum(self._values(model)[1].values())

    def by_module(self, model: nn.Module) -> dict[str, float]:
        """Weights per module path, in :attr:`unit`."""
        return _sum_by_module(*self._values(model))


def energy_objective(example_input: Any, hardware: Any = "eyeriss", dataflow: str = "row_stationary", *, per_image: bool = False,
                     **estimate_options) -> EnergyObjective:
    """An :class:`EnergyObjective`: ``objective(model)`` is the estimated energy in the hardware's unit.

    Example: ``energy_objective(images[:8], "eyeriss", "row_stationary")(model)`` traces
    ``model`` on 8 images with measured densities and returns ``estimate(...).total``;
    with ``per_image=True`` it is the energy of one image at batch 1 with those densities.
    """
    return EnergyObjective(example_input, hardware, dataflow, tuple(sorted(estimate_options.items())), per_image)


def macs_objective(example_input: Any, nonzero: bool = True) -> MacsObjective:
    """A :class:`MacsObjective`: ``objective(model)`` counts (non-zero) MACs.

    Example: ``macs_objective((1, 784), nonzero=False)(nn.Linear(784, 300)) == 235_200``.
    """
    return MacsObjective(example_input, nonzero)


@dataclass(frozen=True, slots=True, eq=False)
class LatencyObjective:
    """Measured wall-clock seconds of one forward pass on ``example_input`` on this CPU (median).

    ``example_input`` is a batch or a shape (batch 1 for a phone-like latency); the median
    of ``repeats`` timed calls after ``warmup`` untimed ones, under ``torch.inference_mode``
    (:func:`~dnnergy.metrics.latency.measure_latency`). Noisy on a shared machine: use it
    where the ranking matters more than the digits (NetAdapt-style budgets).

    Example: ``LatencyObjective((1, 4))(nn.Linear(4, 2))`` is a few microseconds, e.g. ``8e-06``
    (``.unit == "s"``, seconds).
    """

    example_input: Any
    repeats: int = 20
    warmup: int = 3

    def __post_init__(self) -> None:
        _check_example("LatencyObjective", self.example_input)

    @property
    def unit(self) -> str:
        """``"s"``: seconds."""
        return "s"

    def __call__(self, model: nn.Module) -> float:
        from .latency import model_latency

        return model_latency(model, self.example_input, repeats=self.repeats, warmup=self.warmup)

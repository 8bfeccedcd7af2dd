"""``Point``: one model's quality and costs, the unit of every trade-off, search and record.

A compression :class:`~dnnergy.compress.Record` stores the model before and after as
points; a sweep (:mod:`dnnergy.explore`) returns one point per strength; a search keeps
the points it decided on. :func:`model_counts` measures the counts of a point (weights,
non-zero weights, MACs, bytes) from one traced sample.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from torch import nn

from ..errors import UserInputError
from ..workload import trace
from ..workload.hints import HINTS_ATTRIBUTE
from ..workload.tracer import example_inputs

__all__ = ["Point", "model_counts", "model_bytes"]


@dataclass(frozen=True, slots=True)
class Point:
    """One model's quality and costs.

    * ``val_accuracy`` / ``test_accuracy``: top-1 fractions on the validation / test split
      (``None`` when not measured), over ``val_samples`` / ``test_samples`` images.
      Decisions use validation (:attr:`accuracy`); test accuracy is reported.
    * ``energy`` in ``energy_unit`` (the objective's: ``"MAC-normalized"``, ``"pJ"``, ...).
    * ``weights`` / ``nonzero_weights``: weight parameters of the MAC layers (all / non-zero).
    * ``macs`` (dense) and ``nonzero_macs`` (both operands non-zero), for one sample.
    * ``latency_s``: median batch-1 forward-pass seconds on this CPU.
    * ``model_bytes``: storage of parameters and buffers, each weight at its declared
      bitwidth (``w_bits`` hint) or its dtype's size.
    * Every measure is ``None`` when it was not measured (a search that only needs
      accuracy and energy leaves the counts out).
    * ``label`` / ``strength`` / ``layer``: what produced the point; ``info``: plain
      method-specific data (a plan, a residual).

    Example: ``point = Point(label="dense", val_accuracy=0.98, test_accuracy=0.975, energy=2932.0,
    energy_unit="MAC-normalized")`` has ``point.accuracy == 0.98`` (a fraction, not percent) and
    ``Point.from_dict(point.to_dict()) == point``; :meth:`CompressionContext.measure
    <dnnergy.compress.CompressionContext.measure>` fills every field from a model.
    """

    label: str = ""
    strength: float | None = None
    layer: str = ""
    val_accuracy: float | None = None
    val_samples: int = 0
    test_accuracy: float | None = None
    test_samples: int = 0
    energy: float | None = None
    energy_unit: str = ""
    weights: int | None = None
    nonzero_weights: int | None = None
    macs: int | None = None
    nonzero_macs: float | None = None
    latency_s: float | None = None
    model_bytes: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("val_accuracy", "test_accuracy"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"Point: {name} must be a fraction in [0, 1] or None (got {value!r})")
        for name in ("weights", "nonzero_weights", "macs", "model_bytes", "val_samples", "test_samples"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"Point: {name} must be a non-negative int{'' if name.endswith('samples') else ' or None'} "
                                 f"(got {value!r})")
        if None not in (self.nonzero_weights, self.weights) and self.nonzero_weights > self.weights:
            raise ValueError(f"Point: nonzero_weights ({self.nonzero_weights}) exceeds weights ({self.weights})")
        for name in ("energy", "latency_s", "nonzero_macs"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"Point: {name} must be a finite number >= 0 or None (got {value!r})")
        try:
            json.dumps(dict(self.info))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Point: info must be plain JSON data ({exc})") from None
        object.__setattr__(self, "info", dict(self.info))

    def __str__(self) -> str:
        """A compact text table (:func:`dnnergy.report.display.text`)."""
        from ..report.display import text

        return text(self)

    def _repr_html_(self) -> str:
        """The full HTML table, for Jupyter (:func:`dnnergy.report.display.html`)."""
        from ..report.display import html

        return html(self)

    @property
    def accuracy(self) -> float | None:
        """The validation accuracy: what searches and budgets decide on."""
        return self.val_accuracy

    def standard_error(self, split: str = "test") -> float | None:
        """Binomial standard error ``sqrt(p (1 - p) / n)`` of the ``"val"`` or ``"test"`` accuracy (a fraction).

        Example: 95 % on 1,000 test images has a standard error of 0.0069 (0.69 points).
        """
        if split not in ("val", "test"):
            raise UserInputError(f"Point.standard_error: split must be 'val' or 'test' (got {split!r})")
        p, n = getattr(self, f"{split}_accuracy"), getattr(self, f"{split}_samples")
        return None if p is None or not n else math.sqrt(p * (1 - p) / n)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Point":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`UserInputError`."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserInputError(f"Point: unknown fields {sorted(unknown)}")
        return cls(**dict(data))


def model_bytes(model: nn.Module) -> int:
    """Bytes to store ``model``'s parameters and buffers: each ``weight`` as its module's hints say it is
    stored (``w_coded_bits`` in all, e.g. a Deep-Compressed layer's coded indices and codebook; else
    ``w_bits`` per value, e.g. a 4-bit quantized layer), every other tensor at its dtype's size.

    Example: ``nn.Linear(4, 2)`` in float32 takes (8 + 2) * 4 = 40 bytes; with the hint
    ``w_coded_bits=20`` it takes ceil((20 + 2 * 32) / 8) = 11.
    """
    bits = 0
    for module in model.modules():
        hints = getattr(module, HINTS_ATTRIBUTE, None) or {}
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if name == "weight" and hints.get("w_coded_bits") is not None:
                bits += int(hints["w_coded_bits"])
            else:
                width = hints["w_bits"] if name == "weight" and hints.get("w_bits") else tensor.element_size() * 8
                bits += tensor.numel() * width
    return math.ceil(bits / 8)


def model_counts(model: nn.Module, example: Any) -> dict[str, int | float]:
    """Weights, non-zero weights, MACs, non-zero MACs (one sample) and bytes of ``model``, as :class:`Point` fields.

    ``example`` is a batch or a shape; its first sample is traced with ``measure=True``, so
    the non-zero counts see pruned weights and that sample's zero activations. Example:
    ``model_counts(nn.Linear(784, 300), (1, 784))["macs"] == 235_200``.
    """
    inputs = tuple(t[:1] for t in example_inputs(example))
    workload = trace(model, inputs, measure=True)
    layers = [layer for layer in workload.mac_layers() if layer.weight_is_param]
    nonzero = sum(layer.w_stats.nonzeros if layer.w_stats else round(layer.weights * layer.w_density) for layer in layers)
    return {
        "weights": sum(layer.weights for layer in layers),
        "nonzero_weights": int(nonzero),
        "macs": workload.macs,
        "nonzero_macs": float(sum(layer.nonzero_macs for layer in workload.mac_layers())),
        "model_bytes": model_bytes(model),
    }

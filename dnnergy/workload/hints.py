"""Energy hints a model carries: what its compression state means for the layer records.

A module may carry a plain dict ``module.dnnergy_hints`` whose keys are :class:`Layer`
fields in :data:`HINT_FIELDS`, e.g. ``{"w_bits": 4}`` on a quantized ``nn.Linear`` or
``{"w_density": 0.1}`` on a masked one. :func:`dnnergy.trace` applies them to every layer
the module runs, so the estimate prices bits, densities and executed MACs without the
user restating them. Weight transforms (:mod:`dnnergy.compress.transforms`) and methods
such as SnaPEA maintain these dicts; the tracer only reads them.

Rules: ``w_*`` hints apply to layers whose weight is a parameter; a field the trace
*measured* on real data (``trace(..., measure=True)`` measures densities) keeps the
measured value, because a measurement of the actual tensor is never less true than a
declaration; bits and ``mac_density`` are never measured, so their hints always apply.
"""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from ..errors import UserInputError
from .workload import Workload

__all__ = ["HINTS_ATTRIBUTE", "HINT_FIELDS", "MEASURED_FIELDS", "model_hints", "with_hints"]

#: Name of the module attribute holding a module's hints.
HINTS_ATTRIBUTE = "dnnergy_hints"

#: Layer fields a hint may set: bitwidths (bits per value), non-zero fractions, executed-MAC fraction.
HINT_FIELDS = frozenset({"w_bits", "i_bits", "o_bits", "w_density", "i_density", "o_density", "mac_density",
                         "w_coded_bits", "mult_density"})

#: Fields ``trace(measure=True)`` measures on real tensors; a measured value wins over a hint.
MEASURED_FIELDS = frozenset({"w_density", "i_density", "o_density"})


def model_hints(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module path: hints}`` of every module of ``model`` that carries non-empty hints, validated.

    Raises :class:`UserInputError` naming the module for an unknown field or a value
    of the wrong type (bits: positive int; densities: a fraction in [0, 1]). Example:
    a model whose ``fc1`` has ``dnnergy_hints = {"w_bits": 4}`` gives ``{"fc1": {"w_bits": 4}}``.
    """
    out = {}
    for path, module in model.named_modules():
        # the instance's or its class's attribute; plain getattr would go through nn.Module.__getattr__,
        # which formats an AttributeError for every module without hints (most of a trace's hint cost)
        hints = vars(module).get(HINTS_ATTRIBUTE) or getattr(type(module), HINTS_ATTRIBUTE, None)
        if not hints:
            continue
        if not isinstance(hints, Mapping):
            raise UserInputError(f"module {path or '<root>'!r}: {HINTS_ATTRIBUTE} must be a dict (got {type(hints).__name__})")
        for key, value in hints.items():
            _check(path, key, value)
        out[path] = dict(hints)
    return out


def _check(path: str, key: str, value: Any) -> None:
    where = f"module {path or '<root>'!r}: {HINTS_ATTRIBUTE}[{key!r}]"
    if key not in HINT_FIELDS:
        raise UserInputError(f"{where} is not a hint field; expected one of {', '.join(sorted(HINT_FIELDS))}")
    if key.endswith("_bits"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{where} must be a positive int number of bits (got {value!r})")
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise UserInputError(f"{where} must be a fraction in [0, 1] (got {value!r})")


def with_hints(workload: Workload, hints: Mapping[str, Mapping[str, Any]], *, measured: bool) -> Workload:
    """``workload`` with each layer's fields set from the hints of the module that ran it.

    ``hints`` is :func:`model_hints` output; ``measured`` says whether the workload's
    densities were measured on real data (then they are kept). ``w_*`` hints skip layers
    without a weight parameter. Example: hints ``{"fc1": {"w_bits": 4}}`` give layer
    ``fc1`` ``w_bits=4`` and leave every other layer as it was.
    """
    updates = {}
    for layer in workload.layers:
        fields = {key: value for key, value in hints.get(layer.module, {}).items()
                  if not (measured and key in MEASURED_FIELDS)
                  and not (key.startswith("w_") and not (layer.weights and layer.weight_is_param))}
        if fields:
            updates[layer.name] = fields
    return workload.replace_layers(updates) if updates else workload

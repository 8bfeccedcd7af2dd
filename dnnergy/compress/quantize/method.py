"""The registered method ``quantize``: one scheme, per-layer widths, calibration, optional QAT and width search.

:data:`SCHEMES` maps each scheme to its weight quantizer, the scheme of the activations
it quantizes and its default widths (the seeds' summary table, seed 004, after Sze et
al.); the first and last layers stay at full precision in the schemes the table marks
with ``*`` (ternary, ttq, bwn, xnor) unless ``keep_ends=False``. A quantized model carries its widths as energy hints (``w_bits`` from the
weight transforms, ``i_bits``/``o_bits`` from the activation quantizers), so ``trace``,
``estimate`` and ``dnnergy summary`` price them with nothing restated.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Literal, Mapping

from torch import Tensor, nn

from ...errors import UserInputError
from ..context import CompressionContext
from ..contract import Outcome, register_method, require_positive
from ..record import Step
from ..transforms import Transforms
from . import weights as wq
from .activations import execution_order, quantize_inputs

__all__ = ["Scheme", "SCHEMES", "SchemeSpec", "plan_widths", "quantize_model", "quantize"]

Scheme = Literal["uniform", "dfp", "log", "ternary", "ttq", "binary", "bwn", "bnn", "xnor"]

#: Activations at this width (or wider) are left in floating point: no input quantizer.
FULL = 32


@dataclass(frozen=True)
class SchemeSpec:
    """One scheme: how a weight tensor is quantized (``weights(parameter, tensor, bits, per_channel)``),
    which input scheme its activations use, the default weight and activation widths (``None`` for
    activations: full precision), whether the weight width is fixed and whether the first and last
    layers stay in float by default (the rows the seeds' table marks with ``*``)."""

    weights: Callable[[str, Tensor, int, bool], wq.Quantizer]
    inputs: str
    bits: int
    activation_bits: int | None
    fixed: bool = False
    keep_ends: bool = False


SCHEMES: Mapping[str, SchemeSpec] = {
    "uniform": SchemeSpec(lambda p, w, b, pc: wq.Uniform(p, w, b, per_channel=pc), "uniform", 8, 8),
    "dfp": SchemeSpec(lambda p, w, b, pc: wq.DynamicFixedPoint(p, w, b), "dfp", 8, 10),
    "log": SchemeSpec(lambda p, w, b, pc: wq.LogDomain(p, w, b), "log", 4, 4),
    "ternary": SchemeSpec(lambda p, w, b, pc: wq.Ternary(p, w), "uniform", 2, None, True, True),
    "ttq": SchemeSpec(lambda p, w, b, pc: wq.TrainedTernary(p, w), "uniform", 2, None, True, True),
    "binary": SchemeSpec(lambda p, w, b, pc: wq.Binary(p, w), "uniform", 1, None, True),
    "bwn": SchemeSpec(lambda p, w, b, pc: wq.BinaryWeights(p, w), "uniform", 1, None, True, True),
    "bnn": SchemeSpec(lambda p, w, b, pc: wq.Binary(p, w), "binary", 1, 1, True),
    "xnor": SchemeSpec(lambda p, w, b, pc: wq.BinaryWeights(p, w), "xnor", 1, 1, True, True),
}

#: Width of the first layer's input in the 1-bit-activation schemes: the image is not binarized
#: (Hubara et al. 2016 feed BNN's first layer 8-bit fixed-point pixels).
FIRST_INPUT_BITS = 8

#: Widths the mixed-precision search tries, widest first.
SEARCH_WIDTHS = (16, 12, 10, 8, 7, 6, 5, 4, 3, 2)


def _check(*, scheme: str, bits, activation_bits, per_channel: bool, qat: bool, search: bool, keep_ends: bool | None,
           calibration: int) -> None:
    if scheme not in SCHEMES:
        raise UserInputError(f"quantize: scheme must be one of {', '.join(SCHEMES)} (got {scheme!r})")
    spec = SCHEMES[scheme]
    values = bits.values() if isinstance(bits, Mapping) else [] if bits is None else [bits]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
            raise UserInputError(f"quantize: bits must be an int in [1, 16], a {{layer: bits}} mapping or none (got {bits!r})")
        if spec.fixed and value != spec.bits:
            raise UserInputError(f"quantize: scheme {scheme!r} has {spec.bits}-bit weights (got bits={value})")
        if not spec.fixed and value < 2:
            raise UserInputError(f"quantize: scheme {scheme!r} needs at least 2 bits (got bits={value}); use binary, bwn, bnn or xnor")
    if activation_bits is not None:
        if isinstance(activation_bits, bool) or not isinstance(activation_bits, int) or not (1 <= activation_bits <= 16 or activation_bits == FULL):
            raise UserInputError(f"quantize: activation_bits must be an int in [1, 16], {FULL} (full precision) or none (got {activation_bits!r})")
        fixed_inputs = scheme in ("bnn", "xnor")
        if fixed_inputs and activation_bits != 1:
            raise UserInputError(f"quantize: scheme {scheme!r} has 1-bit activations (got activation_bits={activation_bits})")
        if not fixed_inputs and activation_bits < 2:
            raise UserInputError(f"quantize: 1-bit activations are the bnn and xnor schemes (got activation_bits=1 with {scheme!r})")
    if per_channel and scheme != "uniform":
        raise UserInputError(f"quantize: per_channel applies to the uniform scheme (bwn and xnor scale per filter already; got {scheme!r})")
    if search and spec.fixed:
        raise UserInputError(f"quantize: search chooses widths of uniform, dfp or log quantization (got {scheme!r})")
    require_positive("quantize", calibration=calibration)


def plan_widths(order: list[str], scheme: str, bits: int | Mapping[str, int] | None, activation_bits: int | None, *,
                qat: bool = False, keep_ends: bool | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """``(weight bits, input bits)`` per layer path: which layers are quantized, and to what width.

    ``order`` is the model's Linear/Conv2d layers in execution order. Quantized: every layer
    (but the first and the last when ``keep_ends``; default: the scheme's, True for ternary,
    ttq, bwn and xnor), plus any layer ``bits`` names (a mapping overrides the default width
    of the layers it names). Input widths: the layer's weight width for uniform and log;
    for dfp ``bits + 2`` without QAT and ``bits`` with it (the seed's 8/10 and 8/8 rows); 1
    for bnn and xnor, except 8 for the first layer (the image); none (float) for the
    weight-only schemes; ``activation_bits`` overrides (``32``: leave inputs in float).
    Example: ``plan_widths(["fc1", "fc2", "fc3"], "ternary", None, None)`` is ``({"fc2": 2}, {})``.
    """
    spec = SCHEMES[scheme]
    keep_ends = spec.keep_ends if keep_ends is None else keep_ends
    named = dict(bits) if isinstance(bits, Mapping) else {}
    unknown = sorted(set(named) - set(order))
    if unknown:
        raise UserInputError(f"quantize: bits names {unknown}, which are not Linear/Conv2d layers of the model; layers: {order}")
    default = bits if isinstance(bits, int) else spec.bits
    chosen = order[1:-1] if keep_ends and len(order) > 2 else ([] if keep_ends else list(order))
    layers = [p for p in order if p in chosen or p in named]
    if not layers:
        raise UserInputError(f"quantize: no layer to quantize: the model has {len(order)} Linear/Conv2d layer(s) and "
                             "the first and last stay in float (keep_ends=False, or name layers in bits)")
    weight_bits = {p: named.get(p, default) for p in layers}
    if activation_bits is not None:
        inputs = {p: activation_bits for p in layers}
    elif spec.activation_bits is None:
        inputs = {}
    elif scheme == "dfp":
        inputs = {p: b if qat else b + 2 for p, b in weight_bits.items()}
    elif scheme in ("uniform", "log"):
        inputs = dict(weight_bits)
    else:
        inputs = {p: spec.activation_bits for p in layers}
    if spec.inputs in ("binary", "xnor") and order[0] in inputs:
        inputs[order[0]] = FIRST_INPUT_BITS
    return weight_bits, {p: b for p, b in inputs.items() if b < FULL}


def quantize_model(model: nn.Module, scheme: str, weight_bits: Mapping[str, int], input_bits: Mapping[str, int],
                   calibration: Tensor, *, per_channel: bool = False) -> nn.Module:
    """Quantize ``model`` in place: the inputs of the layers in ``input_bits`` (calibrated on ``calibration``
    images), then the weights of the layers in ``weight_bits`` (weight transforms, after any earlier ones).
    Inputs of more than 1 bit use the scheme's input grid (uniform for the 1-bit schemes' first layer)."""
    if scheme not in SCHEMES:
        raise UserInputError(f"quantize: scheme must be one of {', '.join(SCHEMES)} (got {scheme!r})")
    spec = SCHEMES[scheme]
    binary_inputs = {p: b for p, b in input_bits.items() if b == 1}
    if binary_inputs and spec.inputs not in ("binary", "xnor"):
        raise UserInputError(f"quantize: 1-bit activations are the bnn and xnor schemes (got {scheme!r})")
    wide = {p: b for p, b in input_bits.items() if b > 1}
    if wide:  # 1-bit schemes: the first layer's image is uniform (calibrated on the float model)
        quantize_inputs(model, wide, spec.inputs if spec.inputs not in ("binary", "xnor") else "uniform", calibration)
    if binary_inputs:
        quantize_inputs(model, binary_inputs, spec.inputs, calibration)
    transforms = Transforms.of(model)
    params = dict(model.named_parameters())
    for path, bits in weight_bits.items():
        name = f"{path}.weight"
        if name not in params:
            raise UserInputError(f"quantize: layer {path!r} has no weight parameter")
        transforms.add(spec.weights(name, params[name].detach(), int(bits), per_channel))
    return model


def _describe(widths: Mapping[str, int]) -> str:
    values = set(widths.values())
    return f"{values.pop()}" if len(values) == 1 else ", ".join(f"{p}:{b}" for p, b in widths.items())


@register_method("quantize", strength="bits", check=_check)
def quantize(model: nn.Module, context: CompressionContext, *, scheme: Scheme = "uniform",
             bits: int | dict[str, int] | None = None, activation_bits: int | None = None, per_channel: bool = False,
             qat: bool = False, search: bool = False, keep_ends: bool | None = None, calibration: int = 256) -> Outcome:
    """Quantize weights (and activations) with one scheme: uniform, dfp, log, ternary, ttq, binary, bwn, bnn or xnor.

    ``bits``: weight width of every quantized layer, or ``{layer: bits}`` for some of them
    (mixed precision; default: the scheme's, 8 for uniform and dfp, 4 for log, 2 for the
    ternary and 1 for the binary schemes). ``activation_bits``: width of the quantized
    layers' inputs (default: see :func:`plan_widths`; 32 = float). ``per_channel``: one
    uniform scale per output channel. ``keep_ends``: first and last layers stay in float
    (default: as the seeds' table, for ternary, ttq, bwn and xnor).
    ``calibration``: training images the activation ranges are measured on (post-training
    quantization). ``qat``: fine-tune with straight-through gradients afterwards.
    ``search``: lower each layer's width (weights and inputs) greedily, the step that saves
    the most energy first, while accuracy on the selection split (``select``, else validation) stays
    within the budget.
    """
    if qat and context.fine_tuning is None:
        raise UserInputError("quantize: qat needs a fine-tuning policy (the context's fine_tuning is None)")
    samples = context.calibration(calibration)
    order = execution_order(model, context.examples[:1])
    weight_bits, input_bits = plan_widths(order, scheme, bits, activation_bits, qat=qat, keep_ends=keep_ends)
    steps: list[Step] = []
    if search:
        weight_bits, input_bits, steps = _search(model, context, scheme, weight_bits, input_bits, activation_bits, samples, per_channel)
    quantized = quantize_model(model, scheme, weight_bits, input_bits, samples, per_channel=per_channel)
    if qat:
        context.fine_tune(quantized)
    accuracy = context.evaluate(quantized)
    within = context.within_budget(accuracy)
    steps.append(Step(len(steps), "", float(max(weight_bits.values())), accuracy, True, qat))
    activations = _describe(input_bits) if input_bits else "float"
    summary = (f"{scheme}: weights {_describe(weight_bits)} bit, activations {activations} on {', '.join(weight_bits)}"
               f"{' with QAT' if qat else ''}{'' if within else ' (outside the accuracy budget)'}")
    info = {"scheme": scheme, "weight_bits": weight_bits, "activation_bits": input_bits, "qat": qat, "within_budget": within}
    return Outcome(quantized, summary, steps, info)


def _search(model: nn.Module, context: CompressionContext, scheme: str, weight_bits: dict[str, int], input_bits: dict[str, int],
            activation_bits: int | None, samples: Tensor, per_channel: bool) -> tuple[dict, dict, list[Step]]:
    """Greedy mixed precision: each round lowers the one layer's width whose lowering (still within the budget on
    the selection split) gives the lowest energy; stops when no lowering stays within it. The final model's
    validation accuracy is then checked against the budget once (``info["within_budget"]``)."""
    context.require("max_accuracy_drop", "quantize with search")
    energy = context.require("energy", "quantize with search")
    context = context.with_selection_reference(model)  # many accept decisions: the selection split
    floor = context.selection_floor()
    tied = activation_bits is None and scheme in ("uniform", "log")  # inputs follow the weights' width
    steps: list[Step] = []
    while True:
        best = None
        for path, width in weight_bits.items():
            lower = next((w for w in SEARCH_WIDTHS if w < width), None)
            if lower is None:
                continue
            trial_w = {**weight_bits, path: lower}
            trial_i = {**input_bits, path: lower} if tied and path in input_bits else input_bits
            trial = quantize_model(copy.deepcopy(model), scheme, trial_w, trial_i, samples, per_channel=per_channel)
            accuracy = context.selection_accuracy(trial)
            accepted = accuracy >= floor
            steps.append(Step(len(steps), path, float(lower), accuracy, accepted))
            if accepted:
                cost = float(energy(trial))
                if best is None or cost < best[0]:
                    best = (cost, trial_w, trial_i)
        if best is None:
            return weight_bits, input_bits, steps
        _, weight_bits, input_bits = best

"""Activation quantization: a Linear or Conv2d that quantizes its input, inserted as a logged edit.

:class:`QuantizedLinear` and :class:`QuantizedConv2d` are ``nn.Linear`` / ``nn.Conv2d``
with the same parameters (same ``state_dict`` keys, plus two buffers ``input_scale`` and
``input_offset``) whose forward first rounds the input activations to ``input_bits``
bits. They replace a layer with :func:`~dnnergy.compress.edits.replace_module`
(registered as ``quantized_linear`` / ``quantized_conv2d``), so a saved model replays
them, and they hint ``i_bits`` to the energy model; :func:`quantize_inputs` also hints
``o_bits`` on the layer that produced those activations.

Input schemes (:data:`INPUT_SCHEMES`): ``uniform`` (affine, unsigned when the calibrated
inputs are >= 0, e.g. after a ReLU), ``dfp`` (signed fixed point, calibrated fractional
length), ``log`` (power-of-two levels), ``binary`` (BNN, Hubara et al. 2016: ``+1`` if
``x > 0`` else ``-1``) and ``xnor`` (XNOR-Net, Rastegari et al. 2016: ``beta sign(x)``
with ``beta = mean|x|`` per sample). NB: ``x > 0`` rather than ``x >= 0`` so that, after a
ReLU, the sign is that of the pre-activation (a ReLU output 0 means "negative").

Gradients are straight-through: the identity inside the representable range, zero
outside (``|x| <= 1`` for ``binary``, Hubara et al.'s hard tanh).

NB: the rounding runs outside :func:`dnnergy.trace`'s view (it is the producer's
output stage in hardware, fused with the write-back), so it is not priced as extra ALU
operations; at one operation per activation it is under 0.2 % of LeNet's MACs.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import _disable_current_modes

from ...errors import UserInputError
from ...workload.hints import HINTS_ATTRIBUTE
from ..edits import register_module, replace_module
from ..transforms import Transforms
from . import levels

__all__ = ["INPUT_SCHEMES", "InputQuantizer", "QuantizedLinear", "QuantizedConv2d", "quantize_inputs", "execution_order"]

#: Activation schemes and their fixed widths (``None``: the width is chosen).
INPUT_SCHEMES: Mapping[str, int | None] = {"uniform": None, "dfp": None, "log": None, "binary": 1, "xnor": 1}


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized values; backward: the gradient where ``inside``, else 0."""

    @staticmethod
    def forward(ctx, x: Tensor, quantized: Tensor, inside: Tensor) -> Tensor:
        ctx.save_for_backward(inside)
        return quantized

    @staticmethod
    def backward(ctx, grad: Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside.to(grad.dtype), None, None


class InputQuantizer:
    """Mix-in: quantize the input with ``input_scheme`` at ``input_bits`` bits, calibrated by :meth:`calibrate`.

    Buffers: ``input_scale`` and ``input_offset`` (uniform: scale and integer offset;
    dfp: step ``2**-fl``; log: ``2**top``; binary/xnor: unused). ``input_signed``: the
    uniform and log grids cover negative inputs too.
    """

    def _setup(self, input_scheme: str, input_bits: int, input_signed: bool) -> None:
        if input_scheme not in INPUT_SCHEMES:
            raise UserInputError(f"activation quantizer: scheme must be one of {', '.join(INPUT_SCHEMES)} (got {input_scheme!r})")
        fixed = INPUT_SCHEMES[input_scheme]
        if isinstance(input_bits, bool) or not isinstance(input_bits, int) or not 1 <= input_bits <= 16 or (fixed and input_bits != fixed):
            expected = f"{fixed}" if fixed else "an int in [2, 16]"
            raise UserInputError(f"activation quantizer ({input_scheme}): bits must be {expected} (got {input_bits!r})")
        if not fixed and input_bits < 2:
            raise UserInputError(f"activation quantizer ({input_scheme}): bits must be an int in [2, 16] (got {input_bits})")
        self.input_scheme, self.input_bits, self.input_signed = input_scheme, input_bits, bool(input_signed)
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("input_offset", torch.zeros(()))
        object.__setattr__(self, HINTS_ATTRIBUTE, {"i_bits": input_bits})

    def calibrate(self, inputs: Tensor) -> None:
        """Set the scale from sample inputs (calibration data): their range, max |x| or nothing (binary)."""
        x = inputs.detach().float()
        self.input_signed = bool(self.input_signed or (x.numel() and float(x.min()) < 0))
        bits, top = self.input_bits, float(x.abs().max()) if x.numel() else 0.0
        if self.input_scheme == "uniform":
            scale, offset = levels.affine_range(x.reshape(1, -1), bits)
            self.input_scale.fill_(float(scale)), self.input_offset.fill_(float(offset))
        elif self.input_scheme == "dfp":
            self.input_scale.fill_(2.0 ** -levels.fraction_length(top, bits))
        elif self.input_scheme == "log":
            self.input_scale.fill_(2.0 ** levels.log_exponent(top))

    def quantize_input(self, x: Tensor) -> Tensor:
        """``x`` on the input grid, with straight-through gradients (the rounding is invisible to ``trace``)."""
        with _disable_current_modes():
            quantized, inside = self._levels(x.detach())
        return _StraightThrough.apply(x, quantized, inside) if x.requires_grad else quantized

    def _levels(self, x: Tensor) -> tuple[Tensor, Tensor]:
        scheme, bits, scale = self.input_scheme, self.input_bits, self.input_scale
        if scheme == "uniform":
            offset = self.input_offset
            return levels.affine(x, bits, scale, offset), levels.affine_inside(x, bits, scale, offset)
        if scheme == "dfp":
            fl = -round(math.log2(float(scale)))
            return levels.fixed_point(x, bits, fl), levels.fixed_point_inside(x, bits, fl)
        if scheme == "log":
            top = round(math.log2(float(scale)))
            return levels.power_of_two(x, bits, top, signed=self.input_signed), levels.power_of_two_inside(x, top)
        signs = torch.where(x > 0, torch.ones_like(x), -torch.ones_like(x))
        if scheme == "binary":
            return signs, x.abs() <= 1.0
        beta = x.abs().reshape(len(x), -1).mean(dim=1).reshape(-1, *([1] * (x.dim() - 1)))  # xnor: one beta per sample
        return signs * beta, torch.ones_like(x, dtype=torch.bool)

    def _input_repr(self) -> str:
        return f"input={self.input_scheme}{self.input_bits}"


@register_module("quantized_linear")
class QuantizedLinear(InputQuantizer, nn.Linear):
    """``nn.Linear`` whose input is quantized first (see :class:`InputQuantizer`). Hint: ``i_bits``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, input_scheme: str = "uniform",
                 input_bits: int = 8, input_signed: bool = False):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._setup(input_scheme, input_bits, input_signed)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.quantize_input(x), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._input_repr()}"


@register_module("quantized_conv2d")
class QuantizedConv2d(InputQuantizer, nn.Conv2d):
    """``nn.Conv2d`` whose input is quantized first (see :class:`InputQuantizer`). Hint: ``i_bits``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int], stride: Sequence[int] = (1, 1),
                 padding: Sequence[int] | str = (0, 0), dilation: Sequence[int] = (1, 1), groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, input_scheme: str = "uniform", input_bits: int = 8, input_signed: bool = False):
        pad = padding if isinstance(padding, str) else tuple(padding)
        nn.Conv2d.__init__(self, in_channels, out_channels, tuple(kernel_size), tuple(stride), pad, tuple(dilation),
                           groups, bias, padding_mode)
        self._setup(input_scheme, input_bits, input_signed)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.quantize_input(x), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._input_repr()}"


def _layer_kwargs(module: nn.Module) -> tuple[str, dict[str, Any]]:
    """The registered kind and the plain constructor arguments that rebuild ``module`` with an input quantizer."""
    if type(module) in (nn.Linear, QuantizedLinear):
        return "quantized_linear", {"in_features": module.in_features, "out_features": module.out_features,
                                    "bias": module.bias is not None}
    if type(module) in (nn.Conv2d, QuantizedConv2d):
        padding = module.padding if isinstance(module.padding, str) else list(module.padding)
        return "quantized_conv2d", {"in_channels": module.in_channels, "out_channels": module.out_channels,
                                    "kernel_size": list(module.kernel_size), "stride": list(module.stride), "padding": padding,
                                    "dilation": list(module.dilation), "groups": module.groups, "bias": module.bias is not None,
                                    "padding_mode": module.padding_mode}
    raise UserInputError(f"activation quantization: only nn.Linear and nn.Conv2d layers take quantized inputs (got {type(module).__name__})")


def _forward_with_pre_hooks(model: nn.Module, example: Tensor, hooks: Mapping[nn.Module, Callable]) -> None:
    """One eval-mode, no-grad forward pass of ``model`` on ``example`` with forward pre-hooks attached
    (``{module: hook(module, inputs)}``); the hooks come off and the train/eval mode is restored afterwards."""
    handles = [module.register_forward_pre_hook(hook) for module, hook in hooks.items()]
    was = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(example)
    finally:
        model.train(was)
        for handle in handles:
            handle.remove()


def execution_order(model: nn.Module, example: Tensor, kinds: tuple[type, ...] = (nn.Linear, nn.Conv2d)) -> list[str]:
    """Paths of ``model``'s modules of ``kinds`` in the order a forward pass on ``example`` runs them (each once)."""
    order: list[str] = []
    paths = {id(m): p for p, m in model.named_modules() if isinstance(m, kinds) and p}

    def seen(module: nn.Module, _inputs) -> None:
        if paths[id(module)] not in order:
            order.append(paths[id(module)])

    _forward_with_pre_hooks(model, example, {m: seen for m in model.modules() if id(m) in paths})
    return order


def _record_inputs(model: nn.Module, paths: Sequence[str], samples: Tensor) -> dict[str, Tensor]:
    seen: dict[str, Tensor] = {}
    modules = dict(model.named_modules())
    _forward_with_pre_hooks(model, samples, {modules[p]: lambda mod, inputs, p=p: seen.__setitem__(p, inputs[0].detach())
                                             for p in paths})
    return seen


def quantize_inputs(model: nn.Module, widths: Mapping[str, int], scheme: str, calibration: Tensor) -> nn.Module:
    """Quantize the inputs of the layers ``widths`` names (``{path: bits}``) in place, calibrated on ``calibration``.

    Each layer becomes a :class:`QuantizedLinear`/:class:`QuantizedConv2d` (a logged
    ``replace_module`` edit) with the same weights and energy hints plus ``i_bits``; the
    scales come from the layer's inputs on the calibration images of the unquantized
    model. The layer run just before it (execution order) gets ``o_bits`` of the same
    width. NB: that is the producer only in a chain of layers (an MLP, LeNet); with
    branches the hint goes to the layer run last before, which may not be the producer.
    """
    order = execution_order(model, calibration[:1])
    unknown = sorted(set(widths) - set(order))
    if unknown:
        raise UserInputError(f"activation quantization: {unknown} are not Linear/Conv2d layers the model runs; layers: {order}")
    inputs = _record_inputs(model, list(widths), calibration)
    for path, bits in widths.items():
        old = model.get_submodule(path)
        kind, kwargs = _layer_kwargs(old)
        new = replace_module(model, path, kind, **kwargs, input_scheme=scheme, input_bits=int(bits),
                             input_signed=bool(float(inputs[path].min()) < 0))
        new.load_state_dict(old.state_dict(), strict=False)
        new.to(old.weight.device)
        new.calibrate(inputs[path])
        object.__setattr__(new, HINTS_ATTRIBUTE, {**(getattr(old, HINTS_ATTRIBUTE, None) or {}), "i_bits": int(bits)})
    transforms = Transforms.of(model, create=False)
    if transforms is not None:
        transforms.refresh(model)
    modules = dict(model.named_modules())
    for path, bits in widths.items():
        i = order.index(path)
        if i > 0:
            producer = modules[order[i - 1]]
            object.__setattr__(producer, HINTS_ATTRIBUTE, {**(getattr(producer, HINTS_ATTRIBUTE, None) or {}), "o_bits": int(bits)})
    return model

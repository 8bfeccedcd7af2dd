"""Code every layer's input feature map of a model on real images and compare with the entropy bound.

:func:`measure_fmaps` runs the model once under :func:`dnnergy.energy.profile` (which
records each layer's zero-run statistics for the estimator) and once with forward
pre-hooks that capture the input of every module holding a MAC layer. Each captured
tensor is quantized to ``bits``-bit dynamic fixed point (Ristretto:
:func:`~dnnergy.compress.quantize.levels.fraction_length` of the batch's ``max|x|``;
Eyeriss moves 16-bit fixed point) and coded for real by :mod:`.runlength`,
:mod:`.zero_flag` and :mod:`.delta`. :func:`fmap_table` turns the records into bytes
and ratios.

NB: quantization can round small non-zero activations to zero; the densities and coded
sizes here are those of the quantized tensor, while the estimator's ``estimate_bits``
use the float tensor's zeros, so the two agree exactly only when no value rounds to
zero (true of ReLU maps and images at 16 bits, checked per layer in the table).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import UserInputError
from .delta import delta, encode_delta
from .entropy import entropy_bits
from .runlength import EYERISS_RLC, RunLengthCode, encode_rlc
from .zero_flag import encode_zero_flag

__all__ = ["FmapCoding", "quantize_fixed", "measure_fmaps", "fmap_table"]


@dataclass(frozen=True, slots=True)
class FmapCoding:
    """Coded sizes, in bits, of one layer's input feature map (the whole batch, C order).

    ``rlc_bits``, ``zero_flag_bits``, ``delta_bits`` are the real encodings' lengths;
    ``entropy_bits`` is the order-0 empirical entropy bound of the quantized values and
    ``delta_entropy_bits`` that of their row-wise deltas; ``estimate_bits`` is what the
    estimator's ``"rlc"`` DRAM code charges from the profiled :class:`TensorStats`.
    """

    layer: str
    shape: tuple[int, ...]
    bits: int
    nonzeros: int
    rlc_bits: int
    zero_flag_bits: int
    delta_bits: int
    entropy_bits: float
    delta_entropy_bits: float
    estimate_bits: float

    @property
    def numel(self) -> int:
        """Elements of the feature map."""
        return math.prod(self.shape)

    @property
    def density(self) -> float:
        """Non-zero fraction of the quantized feature map, in [0, 1]."""
        return self.nonzeros / self.numel if self.numel else 1.0

    @property
    def raw_bits(self) -> int:
        """Uncoded size: ``numel * bits``."""
        return self.numel * self.bits

    @property
    def rlc_over_entropy(self) -> float:
        """Run-length coded size over the entropy bound (inf for a zero bound)."""
        return self.rlc_bits / self.entropy_bits if self.entropy_bits > 0 else math.inf


def quantize_fixed(x: torch.Tensor, bits: int) -> np.ndarray:
    """Integer codes of ``x`` in ``bits``-bit dynamic fixed point, as an int64 array of ``x``'s shape.

    ``fl = fraction_length(max|x|, bits)``, codes ``clip(round(x * 2**fl))``. Example: an
    image in [0, 1] at 16 bits has ``fl = 15``: 0.5 -> 16384, 1.0 -> 32767 (clipped).
    """
    from ..compress.quantize.levels import fixed_point, fraction_length  # lazily: compress is heavy

    values = x.detach().to(torch.float64)
    fl = fraction_length(float(values.abs().max()) if values.numel() else 0.0, bits)
    return torch.round(fixed_point(values, bits, fl) * 2.0**fl).to(torch.int64).numpy()


def _captured_inputs(model: nn.Module, images: torch.Tensor, modules: list[str]) -> dict[str, torch.Tensor]:
    """The first positional input of each named module during one forward pass of ``images``."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name in modules:
        def hook(_module, args, name=name):
            captured[name] = args[0].detach().clone()
        handles.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def measure_fmaps(model: nn.Module, images: torch.Tensor, *, bits: int = 16, code: RunLengthCode = EYERISS_RLC) -> list[FmapCoding]:
    """Code the input feature map of every MAC layer of ``model`` on the batch ``images``, in execution order.

    ``bits`` is the activations' fixed-point width (Eyeriss: 16); ``code`` the run-length
    field widths (its level width is replaced by ``bits``). The model is run as given
    (put it in eval mode first). A module that runs several MAC layers (e.g. attention)
    has no single input map: it is left out with a warning naming it.
    """
    from ..energy import RlcCode, profile  # lazily: the energy model imports this package

    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise UserInputError(f"measure_fmaps: images must be a float tensor of real data (got {type(images).__name__})")
    workload = profile(model, images)
    layers = [layer for layer in workload.layers if layer.is_mac and layer.module]
    uses = Counter(layer.module for layer in layers)
    shared = sorted(name for name, count in uses.items() if count > 1)
    if shared:
        warnings.warn(f"measure_fmaps: modules {shared} run several MAC layers; their inputs are not measured", stacklevel=2)
    layers = [layer for layer in layers if uses[layer.module] == 1]
    inputs = _captured_inputs(model, images, [layer.module for layer in layers])
    fields = code.with_level_bits(bits)
    records = []
    for layer in layers:
        q = quantize_fixed(inputs[layer.module], bits)
        stats = layer.i_stats
        records.append(FmapCoding(
            layer=layer.name,
            shape=tuple(q.shape),
            bits=bits,
            nonzeros=int(np.count_nonzero(q)),
            rlc_bits=encode_rlc(q, fields).nbits,
            zero_flag_bits=encode_zero_flag(q, bits).nbits,
            delta_bits=encode_delta(q, bits, code).nbits,
            entropy_bits=entropy_bits(q),
            delta_entropy_bits=entropy_bits(delta(q, bits)),
            estimate_bits=RlcCode(code).coded_bits(stats.numel, bits, stats.density, stats),
        ))
    return records


def fmap_table(records: list[FmapCoding]) -> pd.DataFrame:
    """One row per layer: density, raw and coded sizes in bytes (entropy bounds rounded up), and ratios."""
    rows = [{
        "layer": r.layer,
        "numel": r.numel,
        "density": r.density,
        "raw_B": -(-r.raw_bits // 8),
        "rlc_B": -(-r.rlc_bits // 8),
        "zero_flag_B": -(-r.zero_flag_bits // 8),
        "delta_B": -(-r.delta_bits // 8),
        "entropy_B": math.ceil(r.entropy_bits / 8),
        "delta_entropy_B": math.ceil(r.delta_entropy_bits / 8),
        "rlc/entropy": r.rlc_over_entropy,
        "estimate=rlc": r.estimate_bits == r.rlc_bits,
    } for r in records]
    return pd.DataFrame(rows)

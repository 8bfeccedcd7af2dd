"""Quantizer levels as pure functions of tensors: what each scheme rounds a value to.

Every function returns *dequantized* values (floats on the scheme's grid, in the
tensor's own units), so a quantized model runs in float32 exactly as the fixed-point or
binary hardware would compute it (fake quantization). Widths are in bits per value.

* :func:`affine_range`, :func:`affine` -- uniform affine quantization, ``b`` bits,
  ``x_q = round(x / scale) + offset`` clipped to ``[0, 2**b - 1]`` (seed 004:
  ``scale = (max x_f - min x_f) / (max x_q - min x_q)``), per tensor or per channel.
* :func:`fraction_length`, :func:`fixed_point` -- dynamic fixed point (Courbariaux et
  al. 2015; Gysel et al., Ristretto, 2016): a signed ``b``-bit integer times ``2**-fl``
  with a per-layer fractional length ``fl = b - il``, ``il = ceil(log2 max|x|) + 1``.
* :func:`log_exponent`, :func:`power_of_two` -- log-domain quantization (Miyashita, Lee
  and Murmann 2016): ``sign(x) * 2**clip(round(log2|x|))``, values below the smallest
  level flushed to zero, so a multiply becomes a shift.
* :func:`ternary` (TWN, Li and Liu 2016: ``delta = 0.7 mean|W|``, ``alpha`` the mean of
  the kept magnitudes), :func:`trained_ternary` (TTQ, Zhu et al. 2017: ``delta = t max|W|``
  and two learned scales), :func:`binary` (BinaryConnect, Courbariaux et al. 2015:
  ``+H`` if ``w >= 0`` else ``-H``), :func:`mean_abs` (BWN / XNOR-Net's per-filter
  ``alpha = mean|W_c|``, Rastegari et al. 2016).

NB: binary schemes keep exact zeros at zero (``sign(0) * H`` would undo pruning), so a
pruned binary layer has three values; the zero is the sparse format's, not the code's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["affine_range", "affine", "affine_inside", "fraction_length", "fixed_point", "fixed_point_inside", "log_exponent",
           "power_of_two", "power_of_two_inside",
           "ternary_threshold", "ternary", "trained_ternary", "binary", "mean_abs", "channel_view"]

#: TWN's threshold factor: ``delta = 0.7 * mean|W|`` (Li and Liu 2016, eq. 9).
TWN_FACTOR = 0.7


def channel_view(values: Tensor, per_channel: bool) -> Tensor:
    """``values`` as ``[channels, -1]`` (one row per output channel, dim 0) or ``[1, -1]`` per tensor."""
    return values.reshape(values.shape[0] if per_channel and values.dim() > 1 else 1, -1)


def _broadcast(stat: Tensor, like: Tensor) -> Tensor:
    """A per-row statistic of :func:`channel_view` shaped to broadcast against ``like``."""
    return stat.reshape(-1, *([1] * (like.dim() - 1))) if stat.numel() > 1 else stat.reshape(())


def affine_range(values: Tensor, bits: int, *, per_channel: bool = False) -> tuple[Tensor, Tensor]:
    """``(scale, offset)`` of ``bits``-bit uniform affine quantization of ``values``' range, widened to hold 0.

    ``scale = (hi - lo) / (2**bits - 1)`` with ``lo = min(min x, 0)``, ``hi = max(max x, 0)``;
    ``offset = round(-lo / scale)`` (the integer code of 0, so 0 is exact). A range of
    width 0 (all zeros) gets ``scale = 1``. Per channel: one pair per output channel
    (dim 0). Example: values in [-1, 3] at 2 bits: scale 4/3, offset 1, levels
    -4/3, 0, 4/3, 8/3.
    """
    rows = channel_view(values.detach(), per_channel)
    lo = rows.min(dim=1).values.clamp(max=0.0)
    hi = rows.max(dim=1).values.clamp(min=0.0)
    scale = (hi - lo) / (2 ** bits - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    offset = torch.round(-lo / scale)
    return _broadcast(scale, values), _broadcast(offset, values)


def affine(values: Tensor, bits: int, scale: Tensor, offset: Tensor) -> Tensor:
    """``(clip(round(x / scale) + offset, 0, 2**bits - 1) - offset) * scale``: the nearest of ``2**bits`` levels."""
    codes = torch.clamp(torch.round(values / scale) + offset, 0, 2 ** bits - 1)
    return (codes - offset) * scale


def affine_inside(values: Tensor, bits: int, scale: Tensor, offset: Tensor) -> Tensor:
    """Where :func:`affine` rounds without clipping: ``-1/2 <= x / scale + offset <= 2**bits - 1/2`` (the
    straight-through estimator's identity range). Example: scale 1, offset 0, 2 bits: [-0.5, 3.5]."""
    codes = values / scale + offset
    return (codes >= -0.5) & (codes <= 2 ** bits - 0.5)


def fraction_length(max_abs: float, bits: int) -> int:
    """Ristretto's fractional length: ``bits - il`` with integer length ``il = ceil(log2 max|x|) + 1`` (sign bit).

    A zero range keeps every bit for the fraction (``bits - 1``). Example:
    ``max|x| = 0.9`` at 8 bits: ``il = 0 + 1``, ``fl = 7`` (step 1/128, range [-1, 127/128]).
    """
    if not math.isfinite(max_abs):
        raise ValueError(f"fraction_length: max|x| must be finite (got {max_abs!r})")
    if max_abs <= 0:
        return bits - 1
    return bits - (math.ceil(math.log2(max_abs)) + 1)


def fixed_point(values: Tensor, bits: int, fl: int) -> Tensor:
    """Signed ``bits``-bit fixed point with ``fl`` fractional bits: ``clip(round(x 2**fl), -2**(b-1), 2**(b-1)-1) 2**-fl``."""
    step = 2.0 ** -fl
    return torch.clamp(torch.round(values / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * step


def fixed_point_inside(values: Tensor, bits: int, fl: int) -> Tensor:
    """Where :func:`fixed_point` rounds without clipping: ``-2**(b-1) - 1/2 <= x 2**fl <= 2**(b-1) - 1/2``."""
    codes = values * 2.0 ** fl
    return (codes >= -(2 ** (bits - 1)) - 0.5) & (codes <= 2 ** (bits - 1) - 0.5)


def log_exponent(max_abs: float) -> int:
    """The largest exponent of a power-of-two grid for values up to ``max_abs``: ``round(log2 max|x|)`` (0 for 0)."""
    return round(math.log2(max_abs)) if max_abs > 0 else 0


def power_of_two(values: Tensor, bits: int, top: int, *, signed: bool = True) -> Tensor:
    """Log-domain quantization (Miyashita et al. 2016, eq. 3): ``sign(x) 2**e`` with ``e = round(log2|x|)``.

    ``bits`` include a sign bit when ``signed``; the remaining ``n`` bits code zero and
    ``2**n - 1`` exponents ``top - 2**n + 2 .. top``. Exponents above ``top`` clip to it;
    below the smallest one the value is flushed to 0 (Miyashita's ``Clip`` with
    ``FSR = top + 1``). Example: 3 bits signed, ``top = 0``: levels 0, +-1/4, +-1/2, +-1.
    """
    n = bits - 1 if signed else bits
    if n < 1:
        raise ValueError(f"power_of_two: {bits} bits leave no exponent bits")
    bottom = top - 2 ** n + 2
    magnitude = values.abs() if signed else values.clamp(min=0.0)
    exponent = torch.round(torch.log2(magnitude.clamp(min=torch.finfo(values.dtype).tiny)))
    level = torch.exp2(exponent.clamp(max=top))
    level = torch.where((exponent >= bottom) & (magnitude > 0), level, torch.zeros_like(level))
    return torch.sign(values) * level if signed else level


def power_of_two_inside(values: Tensor, top: int) -> Tensor:
    """Where :func:`power_of_two` does not clip the exponent at ``top``: ``|x| < 2**(top + 1/2)``."""
    return values.abs() < 2.0 ** (top + 0.5)


def _nonzero_mean_abs(values: Tensor) -> float:
    nonzero = values[values != 0]
    return float(nonzero.abs().mean()) if nonzero.numel() else 0.0


def ternary_threshold(values: Tensor) -> tuple[float, float]:
    """TWN's ``(delta, alpha)``: ``delta = 0.7 mean|W|`` and ``alpha`` the mean ``|W|`` above ``delta``.

    Means over the non-zero weights (a pruned tensor's zeros are not weights). Example:
    ``[1, -2, 0.1, 3]``: mean 1.525, delta 1.0675, alpha (2 + 3) / 2 = 2.5.
    """
    delta = TWN_FACTOR * _nonzero_mean_abs(values)
    kept = values.abs()[values.abs() > delta]
    return delta, float(kept.mean()) if kept.numel() else 0.0


def ternary(values: Tensor, delta: float, alpha: float) -> Tensor:
    """``alpha * sign(w)`` where ``|w| > delta``, else 0 (TWN)."""
    return torch.where(values.abs() > delta, alpha * torch.sign(values), torch.zeros_like(values))


def trained_ternary(values: Tensor, delta: float, positive: float, negative: float) -> Tensor:
    """TTQ: ``positive`` where ``w > delta``, ``-negative`` where ``w < -delta``, else 0 (both scales >= 0)."""
    zero = torch.zeros_like(values)
    return torch.where(values > delta, zero + positive, torch.where(values < -delta, zero - negative, zero))


def mean_abs(values: Tensor, *, per_channel: bool) -> Tensor:
    """``mean|W|`` over the non-zero entries, per output channel (BWN / XNOR ``alpha``) or per tensor; 0 when none."""
    rows = channel_view(values.detach(), per_channel)
    nonzero = (rows != 0).sum(dim=1)
    mean = rows.abs().sum(dim=1) / nonzero.clamp(min=1)
    return _broadcast(mean, values)


def binary(values: Tensor, scale: Tensor | float) -> Tensor:
    """BinaryConnect's deterministic binarization ``+scale if w >= 0 else -scale``; exact zeros stay 0 (see NB above)."""
    signs = torch.where(values >= 0, torch.ones_like(values), -torch.ones_like(values))
    return torch.where(values == 0, torch.zeros_like(values), signs * scale)

"""Low-rank factorizations: a Linear or Conv2d layer becomes a chain of smaller, real layers.

* **Truncated SVD** of a Linear ``C -> M`` (Denton et al., NeurIPS 2014): ``W ~ U_r S_r V_r^T``
  becomes ``Linear(C, r, bias=False)`` then ``Linear(r, M)`` (:class:`SVDLinear`);
  ``r * (C + M)`` weights and MACs per input vector instead of ``C * M``.
* **Tucker-2** of a conv kernel ``(M, C, kh, kw)`` (Kim et al., ICLR 2016): ``W ~ G x_0 U_out
  x_1 U_in`` over the two channel modes becomes a 1x1 conv ``C -> R_in``, the core
  ``kh x kw`` conv ``R_in -> R_out`` (the original stride, padding, dilation) and a 1x1 conv
  ``R_out -> M`` (:class:`Tucker2Conv2d`).
* **CP** of a conv kernel (Lebedev et al., ICLR 2015): ``W ~ sum_r l_r a_r o b_r o c_r o d_r``
  becomes a 1x1 conv ``C -> R``, depthwise ``kh x 1`` and ``1 x kw`` convs over the ``R``
  channels and a 1x1 conv ``R -> M`` (:class:`CPConv2d`).

Each factor module is an ``nn.Sequential`` of ``nn.Linear``/``nn.Conv2d`` registered with
:func:`~dnnergy.compress.edits.register_module`, so ``replace_module`` logs it and
:func:`dnnergy.load` rebuilds it; ``dnnergy.trace`` counts its layers like any others. The
decompositions run in float64 with numpy (SVD) and ``tensorly`` (``partial_tucker``,
``parafac``; the optional extra ``dnnergy[lowrank]``) and return the kept fraction of the
kernel's squared norm, ``1 - ||W - W_hat||^2 / ||W||^2`` (for SVD: the kept squared
singular values over all of them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UserInputError
from .edits import register_module

__all__ = [
    "CPConv2d",
    "Factorization",
    "SVDLinear",
    "Tucker2Conv2d",
    "conv_geometry",
    "cp_conv",
    "energy_rank",
    "singular_values",
    "svd_linear",
    "tucker2_conv",
]


def _tensorly():
    try:
        import tensorly
        from tensorly.decomposition import parafac, partial_tucker
    except ImportError:
        raise UserInputError("Tucker-2 and CP decompositions need tensorly: pip install 'dnnergy[lowrank]'") from None
    return tensorly, partial_tucker, parafac


def _positive(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{owner}: {name} must be a positive int (got {value!r})")


def _pair(owner: str, name: str, value: Any, low: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= low for v in pair):
        raise UserInputError(f"{owner}: {name} must be an int or a pair of ints >= {low} (got {value!r})")
    return pair


@register_module("svd_linear")
class SVDLinear(nn.Sequential):
    """``Linear(C, M)`` at rank ``r``: ``Linear(C, r, bias=False)`` then ``Linear(r, M, bias)``.

    Weights and MACs per input vector: ``r * (C + M)``. Example: ``SVDLinear(784, 300, 20)``
    has 20 * 1084 = 21,680 weights instead of 235,200.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        _positive("SVDLinear", in_features=in_features, out_features=out_features, rank=rank)
        super().__init__(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features, bias=bias))
        self.rank = rank


@register_module("tucker2_conv2d")
class Tucker2Conv2d(nn.Sequential):
    """``Conv2d(C, M, k)`` at Tucker ranks ``(R_in, R_out)``: 1x1 ``C -> R_in``, ``k`` ``R_in -> R_out``, 1x1 ``R_out -> M``.

    The core conv keeps the original stride, padding and dilation; only the last conv has a
    bias. Weights: ``C*R_in + R_in*R_out*kh*kw + R_out*M``. Example: ``Tucker2Conv2d(20, 50,
    5, (8, 10))`` has 160 + 2,000 + 500 = 2,660 weights instead of 25,000.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], ranks: Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 bias: bool = True):
        _positive("Tucker2Conv2d", in_channels=in_channels, out_channels=out_channels)
        r_in, r_out = _pair("Tucker2Conv2d", "ranks", ranks, 1)
        kernel, stride = _pair("Tucker2Conv2d", "kernel_size", kernel_size, 1), _pair("Tucker2Conv2d", "stride", stride, 1)
        padding, dilation = _pair("Tucker2Conv2d", "padding", padding, 0), _pair("Tucker2Conv2d", "dilation", dilation, 1)
        super().__init__(nn.Conv2d(in_channels, r_in, 1, bias=False),
                         nn.Conv2d(r_in, r_out, kernel, stride, padding, dilation, bias=False),
                         nn.Conv2d(r_out, out_channels, 1, bias=bias))
        self.ranks = (r_in, r_out)


@register_module("cp_conv2d")
class CPConv2d(nn.Sequential):
    """``Conv2d(C, M, k)`` at CP rank ``R``: 1x1 ``C -> R``, depthwise ``kh x 1`` and ``1 x kw`` over ``R``, 1x1 ``R -> M``.

    Stride, padding and dilation are split between the two depthwise convs by axis; only
    the last conv has a bias. Weights: ``R * (C + kh + kw + M)``. Example: ``CPConv2d(20,
    50, 5, 16)`` has 16 * 80 = 1,280 weights instead of 25,000.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], rank: int,
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 bias: bool = True):
        _positive("CPConv2d", in_channels=in_channels, out_channels=out_channels, rank=rank)
        (kh, kw), (sh, sw) = _pair("CPConv2d", "kernel_size", kernel_size, 1), _pair("CPConv2d", "stride", stride, 1)
        (ph, pw), (dh, dw) = _pair("CPConv2d", "padding", padding, 0), _pair("CPConv2d", "dilation", dilation, 1)
        super().__init__(nn.Conv2d(in_channels, rank, 1, bias=False),
                         nn.Conv2d(rank, rank, (kh, 1), (sh, 1), (ph, 0), (dh, 1), groups=rank, bias=False),
                         nn.Conv2d(rank, rank, (1, kw), (1, sw), (0, pw), (1, dw), groups=rank, bias=False),
                         nn.Conv2d(rank, out_channels, 1, bias=bias))
        self.rank = rank


@dataclass(frozen=True, eq=False)
class Factorization:
    """A decomposed layer: the filled ``module``, its registered ``kind`` and plain ``kwargs`` (for
    ``replace_module``), its ``ranks`` and ``kept``, the fraction of the kernel's squared norm it keeps."""

    module: nn.Module
    kind: str
    kwargs: dict[str, Any]
    ranks: tuple[int, ...]
    kept: float

    @property
    def weights(self) -> int:
        """Weights of the chain (biases not counted)."""
        return sum(m.weight.numel() for m in self.module)


def singular_values(matrix: np.ndarray) -> np.ndarray:
    """Singular values of a 2-D array, largest first (float64)."""
    return np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)


def energy_rank(values: np.ndarray, keep: float) -> int:
    """The smallest rank whose singular ``values`` keep at least ``keep`` of their squared sum (at least 1).

    ``keep`` is a fraction in (0, 1]; a relative slack of 1e-9 absorbs rounding, so an
    exactly rank-r matrix gets r at ``keep=1``. Example: values (3, 2, 1) keep 9/14, 13/14
    and 14/14 of the energy: ``keep=0.9`` gives 2.
    """
    squared = np.asarray(values, dtype=np.float64) ** 2
    if not squared.sum() > 0:
        return 1
    ratio = np.cumsum(squared) / squared.sum()
    return int(min(np.searchsorted(ratio, keep - 1e-9) + 1, len(ratio)))


def _fit(original: np.ndarray, approx: np.ndarray) -> float:
    norm = float(np.sum(original ** 2))
    return 1.0 - float(np.sum((original - approx) ** 2)) / norm if norm > 0 else 1.0


def _kernel(module: nn.Module) -> np.ndarray:
    return module.weight.detach().cpu().double().numpy()


def _set(layer: nn.Module, weight: np.ndarray, like: torch.Tensor) -> None:
    layer.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(weight)).reshape(layer.weight.shape).to(like.dtype))


def _bias(target: nn.Module, source: nn.Module) -> None:
    if source.bias is not None:
        target.bias.data.copy_(source.bias.detach())


def svd_linear(linear: nn.Linear, rank: int) -> Factorization:
    """Truncated SVD of ``linear`` at ``rank``; the factors share ``sqrt(S)`` (balanced for fine-tuning).

    Exact when ``linear``'s weight has rank <= ``rank``. Example: ``svd_linear(nn.Linear(784, 300),
    20).weights == 21_680``.
    """
    if not isinstance(linear, nn.Linear):
        raise UserInputError(f"svd_linear expects an nn.Linear (got {type(linear).__name__})")
    _positive("svd_linear", rank=rank)
    w = _kernel(linear)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    r = min(rank, len(s))
    root = np.sqrt(s[:r])
    module = SVDLinear(linear.in_features, linear.out_features, r, linear.bias is not None)
    _set(module[0], root[:, None] * vt[:r], linear.weight)
    _set(module[1], u[:, :r] * root[None, :], linear.weight)
    _bias(module[1], linear)
    kept = float(np.sum(s[:r] ** 2) / np.sum(s ** 2)) if np.sum(s ** 2) > 0 else 1.0
    kwargs = {"in_features": linear.in_features, "out_features": linear.out_features, "rank": r,
              "bias": linear.bias is not None}
    return Factorization(module, "svd_linear", kwargs, (r,), kept)


def conv_geometry(conv: nn.Conv2d) -> dict[str, Any] | str:
    """The plain geometry (kernel, stride, padding, dilation, bias) of a decomposable conv, or why it is not one.

    Decomposable: ``nn.Conv2d`` with ``groups == 1``, integer padding and zero padding mode.
    """
    if not isinstance(conv, nn.Conv2d):
        return f"not an nn.Conv2d ({type(conv).__name__})"
    if conv.groups != 1:
        return f"grouped conv (groups={conv.groups})"
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        return f"padding {conv.padding!r} / mode {conv.padding_mode!r} (needs integer zero padding)"
    return {"kernel_size": list(conv.kernel_size), "stride": list(conv.stride), "padding": list(conv.padding),
            "dilation": list(conv.dilation), "bias": conv.bias is not None}


def _geometry(conv: nn.Conv2d, owner: str) -> dict[str, Any]:
    geometry = conv_geometry(conv)
    if isinstance(geometry, str):
        raise UserInputError(f"{owner}: cannot decompose this layer: {geometry}")
    return geometry


def tucker2_conv(conv: nn.Conv2d, ranks: Sequence[int], *, iterations: int = 100) -> Factorization:
    """Tucker-2 of ``conv``'s kernel at ``ranks = (R_in, R_out)`` (HOOI from the HOSVD, ``tensorly.partial_tucker``).

    Ranks above a mode's size are clipped to it. Exact when the kernel has multilinear rank
    <= ``(R_out, R_in)`` in its output and input channel modes.
    """
    geometry = _geometry(conv, "tucker2_conv")
    r_in, r_out = _pair("tucker2_conv", "ranks", ranks, 1)
    r_in, r_out = min(r_in, conv.in_channels), min(r_out, conv.out_channels)
    tl, partial_tucker, _ = _tensorly()
    w = _kernel(conv)
    with tl.backend_context("numpy"):
        (core, (u_out, u_in)), _ = partial_tucker(w, rank=[r_out, r_in], modes=[0, 1], init="svd", n_iter_max=iterations,
                                                  tol=1e-10)
        approx = tl.tenalg.multi_mode_dot(core, [u_out, u_in], modes=[0, 1])
    module = Tucker2Conv2d(conv.in_channels, conv.out_channels, ranks=(r_in, r_out), **geometry)
    _set(module[0], u_in.T, conv.weight)
    _set(module[1], core, conv.weight)
    _set(module[2], u_out, conv.weight)
    _bias(module[2], conv)
    kwargs = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "ranks": [r_in, r_out], **geometry}
    return Factorization(module, "tucker2_conv2d", kwargs, (r_in, r_out), _fit(w, approx))


def cp_conv(conv: nn.Conv2d, rank: int, *, iterations: int = 100, tol: float = 1e-7, seed: int = 0) -> Factorization:
    """CP of ``conv``'s kernel at ``rank`` (alternating least squares from an SVD start, ``tensorly.parafac``).

    ALS stops after ``iterations`` or when the reconstruction error changes by less than
    ``tol`` (absolute, on the error relative to the kernel's norm). ``seed`` fixes the random columns the SVD start adds when ``rank`` exceeds a mode's size.
    Recovers an exactly rank-``rank`` kernel (to ALS convergence).
    """
    geometry = _geometry(conv, "cp_conv")
    _positive("cp_conv", rank=rank, iterations=iterations)
    tl, _, parafac = _tensorly()
    w = _kernel(conv)
    with tl.backend_context("numpy"), warnings.catch_warnings():
        # a rank above a mode's size: the SVD start fills the extra columns at random (seeded), as intended
        warnings.filterwarnings("ignore", message="Trying to compute SVD with n_eigenvecs", category=UserWarning)
        cp = parafac(w, rank, init="svd", n_iter_max=iterations, tol=tol, random_state=seed)
        approx = tl.cp_to_tensor(cp)
    weights, (a_out, a_in, a_h, a_w) = cp
    module = CPConv2d(conv.in_channels, conv.out_channels, rank=rank, **geometry)
    _set(module[0], a_in.T, conv.weight)
    _set(module[1], a_h.T, conv.weight)
    _set(module[2], a_w.T, conv.weight)
    _set(module[3], a_out * weights[None, :], conv.weight)
    _bias(module[3], conv)
    kwargs = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "rank": rank, **geometry}
    return Factorization(module, "cp_conv2d", kwargs, (rank,), _fit(w, approx))

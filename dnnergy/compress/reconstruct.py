"""Closed-form least-squares reconstruction of a layer's output after removing weights.

A Linear or convolution layer computes, for every output neuron/filter ``m``, the dot
product of a weight row ``w`` (length K) with an input row ``x`` (an input vector, or an
unfolded conv patch of ``C/groups * R * S`` values). Stacking the input rows of a
calibration set gives ``X`` (rows x K) and the Gram matrix ``G = X^T X`` (K x K). When
the weights in a set ``S`` are removed, the remaining weights ``K`` that best preserve
the layer's output solve (Yang et al., CVPR 2017, Sec. 4.2 "locally fine-tuned with a
closed-form least-square solution")::

    min_{w'} ||X w' - X w||^2   subject to  w'_S = 0
    =>  G_KK w'_K = (G w)_K                                (normal equations)
    error = (w' - w)^T G (w' - w) = w^T G w - (G w)_K^T w'_K

Everything here works on ``G``, never on ``X``, so memory is K x K per layer (per
group for grouped convs) however many calibration images are used. Errors are sums of
squared output differences over all calibration rows (units: squared activations).

NB: the bias is not re-fitted; with a ReLU after the layer, preserving the pre-activation
output is a proxy for preserving the post-activation output.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserInputError

__all__ = [
    "input_rows",
    "input_gram",
    "weight_rows",
    "set_weight_rows",
    "least_squares",
    "output_error",
    "pruning_error",
]

_SUPPORTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _check_module(module: nn.Module, name: str = "") -> None:
    if not isinstance(module, _SUPPORTED):
        raise UserInputError(
            f"layer {name or type(module).__name__!r}: least-squares reconstruction supports Linear, Conv1d and Conv2d "
            f"(got {type(module).__name__})"
        )


def _groups(module: nn.Module) -> int:
    return getattr(module, "groups", 1)


def input_rows(module: nn.Module, x: Tensor) -> Tensor:
    """The layer's input as rows of ``X``, shape ``(groups, rows, K)``.

    Linear: ``rows = x.numel() / in_features`` input vectors, ``K = in_features``.
    Conv: the unfolded patches (``torch.nn.functional.unfold`` after the module's own
    padding), ``rows = N * E * F`` and ``K = C/groups * R * S``, in the order of
    ``weight.reshape(M, -1)``. Example: ``Conv2d(1, 2, 3)`` on a ``(1, 1, 5, 5)`` input
    gives ``(1, 9, 9)``: 3 x 3 output positions, 9 weights per filter.
    """
    _check_module(module)
    if isinstance(module, nn.Linear):
        return x.reshape(1, -1, module.in_features)
    if isinstance(module, nn.Conv1d):
        x = x.unsqueeze(-2)
        kernel, dilation, stride = (1, *module.kernel_size), (1, *module.dilation), (1, *module.stride)
    else:
        kernel, dilation, stride = module.kernel_size, module.dilation, module.stride
    pad = getattr(module, "_reversed_padding_repeated_twice", None)
    if pad is None:  # pragma: no cover - every torch ConvNd has it
        raise UserInputError(f"{type(module).__name__}: cannot determine padding")
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    if isinstance(module, nn.Conv1d):
        pad = [*pad, 0, 0]
    x = F.pad(x, list(pad), mode=mode)
    patches = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (N, C*R*S, L)
    g = module.groups
    k = patches.shape[1] // g
    return patches.transpose(1, 2).reshape(-1, g, k).transpose(0, 1)


def input_gram(model: nn.Module, layer: str, inputs: Iterable[Tensor] | Tensor, batch_size: int = 256) -> Tensor:
    """``G = X^T X`` of the input rows of ``model.<layer>`` over ``inputs``, float64 ``(groups, K, K)``.

    ``inputs`` is a tensor of model inputs (split into batches of ``batch_size``) or an
    iterable of batches. The model runs in eval mode under ``no_grad`` (its training flag
    is restored). Units: sums of products of input activations over all rows.
    """
    try:
        module = model.get_submodule(layer)
    except AttributeError as exc:
        raise UserInputError(f"model has no layer {layer!r}") from exc
    _check_module(module, layer)
    batches = inputs.split(batch_size) if isinstance(inputs, Tensor) else inputs
    gram: list[Tensor] = []

    def hook(mod, args):
        rows = input_rows(mod, args[0].detach()).to(torch.float64)
        update = rows.transpose(1, 2) @ rows
        if gram:
            gram[0] += update
        else:
            gram.append(update)

    handle = module.register_forward_pre_hook(hook)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
    finally:
        handle.remove()
        model.train(training)
    if not gram:
        raise UserInputError(f"layer {layer!r} never ran on the given inputs (empty inputs or unused layer)")
    return gram[0]


def weight_rows(module: nn.Module) -> Tensor:
    """The weight as ``(groups, M/groups, K)`` rows matching :func:`input_rows` (a copy)."""
    _check_module(module)
    g = _groups(module)
    return module.weight.detach().reshape(g, module.weight.shape[0] // g, -1).clone()


def set_weight_rows(module: nn.Module, rows: Tensor) -> None:
    """Write ``(groups, M/groups, K)`` rows back into ``module.weight`` in place."""
    _check_module(module)
    with torch.no_grad():
        module.weight.copy_(rows.reshape(module.weight.shape).to(module.weight.dtype))


def _solve_psd(a: Tensor, b: Tensor) -> Tensor:
    """Minimum-norm solution of ``a x = b`` for a symmetric PSD ``a`` (Cholesky; SVD when singular)."""
    if a.shape[-1] == 0:
        return b.new_zeros(b.shape)
    chol, info = torch.linalg.cholesky_ex(a)
    diag = torch.diagonal(chol, dim1=-2, dim2=-1)
    scale = torch.diagonal(a, dim1=-2, dim2=-1).amax().clamp_min(torch.finfo(a.dtype).tiny)
    if int(info) == 0 and bool((diag.square() > 1e-10 * scale).all()):
        return torch.cholesky_solve(b, chol)
    return torch.linalg.lstsq(a, b, rcond=1e-12, driver="gelsd").solution


def least_squares(gram: Tensor, weight: Tensor, keep: Tensor) -> Tensor:
    """Re-fit the kept weights of every row so the layer output changes least.

    ``gram`` is ``G = X^T X`` (K x K), ``weight`` the rows ``(M, K)``, ``keep`` a bool
    mask ``(M, K)`` (per row) or ``(K,)`` (the same columns for every row, as in neuron
    elimination). Returns ``w'`` ``(M, K)`` with ``w'[~keep] == 0`` minimising
    ``||X w' - X w||^2`` per row: the solution of ``G_KK w'_K = (G w)_K``, the
    minimum-norm one when ``G_KK`` is singular (equal to ``numpy.linalg.lstsq`` on the
    kept columns of ``X``). Computed in float64, returned in ``weight``'s dtype. A row
    that removed fewer weights than it kept is solved in the equivalent OBS form
    ``w'_K = w_K - H_KS H_SS^-1 w_S`` with ``H = G^-1`` (same unique solution when ``G``
    is positive definite, a much smaller solve). Example: ``G = I`` gives plain
    zeroing, ``w' = w * keep``.
    """
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        raise UserInputError(f"least_squares: gram must be square K x K (got {tuple(gram.shape)})")
    if weight.ndim != 2 or weight.shape[1] != gram.shape[0]:
        raise UserInputError(f"least_squares: weight must be (M, K={gram.shape[0]}) (got {tuple(weight.shape)})")
    keep = torch.as_tensor(keep, dtype=torch.bool, device=weight.device)
    if keep.shape not in (weight.shape, weight.shape[1:]):
        raise UserInputError(f"least_squares: keep must be (M, K) or (K,) = {tuple(weight.shape)} (got {tuple(keep.shape)})")
    g = gram.to(torch.float64)
    w = weight.detach().to(torch.float64)
    live = torch.diagonal(g) > 0  # dead inputs (always 0) get weight 0, as in the minimum-norm solution
    rhs = w @ g  # (G w)_k for every row, G symmetric
    out = torch.zeros_like(w)
    patterns, inverse = (keep.unsqueeze(0), torch.zeros(w.shape[0], dtype=torch.long)) if keep.ndim == 1 else torch.unique(
        keep, dim=0, return_inverse=True
    )
    h = _inverse(g[live][:, live]) if len(patterns) > 1 else None  # shared by every pattern that removed little
    position = torch.cumsum(live, 0) - 1  # index of a live input among the live ones
    for p, pattern in enumerate(patterns):
        rows = torch.nonzero(inverse == p).flatten()
        cols = torch.nonzero(pattern & live).flatten()
        if cols.numel() == 0:
            continue
        removed = torch.nonzero(~pattern & live).flatten()
        if h is not None and removed.numel() < cols.numel():
            # OBS form (Hassibi & Stork): w'_K = w_K - H_KS H_SS^-1 w_S with H = G^-1, an |S|-sized solve
            k, s_ = position[cols], position[removed]
            correction = h[k][:, s_] @ torch.linalg.solve(h[s_][:, s_], w[rows][:, removed].T)  # (|K|, rows)
            out[rows.unsqueeze(1), cols.unsqueeze(0)] = w[rows][:, cols] - correction.T
        else:
            solution = _solve_psd(g[cols][:, cols], rhs[rows][:, cols].T)  # (|K|, rows)
            out[rows.unsqueeze(1), cols.unsqueeze(0)] = solution.T
    return out.to(weight.dtype)


def _inverse(g: Tensor) -> Tensor | None:
    """``G^-1`` when ``G`` is safely positive definite (no tiny Cholesky pivot), else None."""
    if g.shape[0] == 0:
        return None
    chol, info = torch.linalg.cholesky_ex(g)
    pivots = torch.diagonal(chol).square()
    if int(info) or not bool((pivots > 1e-8 * torch.diagonal(g).amax()).all()):
        return None
    return torch.cholesky_inverse(chol)


def output_error(gram: Tensor, weight: Tensor, new_weight: Tensor) -> Tensor:
    """Per-row squared output change ``||X (w' - w)||^2 = d^T G d``, float64 ``(M,)``.

    Example: ``G = [[2, 0], [0, 1]]``, ``w = [1, 1]``, ``w' = [0, 1]`` gives ``2``.
    """
    d = new_weight.detach().to(torch.float64) - weight.detach().to(torch.float64)
    return ((d @ gram.to(torch.float64)) * d).sum(-1)


def pruning_error(gram: Tensor, weight: Tensor, keep: Tensor) -> Tensor:
    """Per-row output error left after removing ``~keep`` and re-fitting the rest, float64 ``(M,)``.

    Closed form ``w^T G w - (G w)_K^T w'_K`` (the Schur complement
    ``w_S^T (G_SS - G_SK G_KK^+ G_KS) w_S``); equals ``output_error(G, w, least_squares(G, w, keep))``.
    """
    refit = least_squares(gram, weight.to(torch.float64), keep)
    w = weight.detach().to(torch.float64)
    g = gram.to(torch.float64)
    return (((w @ g) * w).sum(-1) - ((w @ g) * refit).sum(-1)).clamp_min(0.0)

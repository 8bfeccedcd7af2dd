"""Hardware-aware fine-grained pruning: load-balanced (ESE) and SIMD-aligned (Scalpel) masks.

Both return keep masks (``True`` = kept) keyed by parameter name, the format of
:class:`~dnnergy.compress.transforms.Masks`; they do not
remove anything physically. A weight tensor is viewed as a matrix ``(M, K)``: one row per
output neuron/filter, ``K = in_features`` or ``C/groups * R * S``.

* Load-balance-aware pruning (Han et al., "ESE", FPGA 2017, Sec. 4): the rows are split
  among ``blocks`` processing elements and every PE's sub-matrix keeps the *same* number
  of non-zeros, so no PE waits for a busier one.
* SIMD-aware pruning (Yu et al., "Scalpel", ISCA 2017, Sec. 4.1): weights are pruned in
  aligned groups of ``width`` consecutive weights of a row (one SIMD load), chosen by the
  group's L2 norm, so the sparse format stores one index per group.

Registered as the methods ``balanced`` and ``simd``: the prune / retrain loop of
:func:`~dnnergy.compress.schedule.prune_on_schedule` with these masks.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Literal

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method
from .schedule import prune_on_schedule, schedule_check, schedule_of
from .selection import lowest_score_masks, prunable_parameters

__all__ = ["balanced_keep", "simd_keep", "balanced_masks", "simd_masks", "balanced", "simd"]

Layout = Literal["contiguous", "interleaved"]


def _check_sparsity(sparsity: float) -> None:
    if not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity <= 1.0:
        raise UserInputError(f"sparsity must be in [0, 1] (got {sparsity!r})")


def balanced_keep(weight: Tensor, sparsity: float, blocks: int, layout: Layout = "contiguous") -> Tensor:
    """ESE keep mask: every one of ``blocks`` row-blocks drops ``round(sparsity * block size)`` smallest ``|w|``.

    ``layout="contiguous"`` gives PE ``b`` rows ``b*M/blocks ... (b+1)*M/blocks - 1``;
    ``"interleaved"`` gives it rows ``b, b+blocks, b+2*blocks, ...`` (EIE/ESE's row
    interleaving). ``blocks`` must divide the number of rows M. Units: a bool mask of
    ``weight``'s shape. Example: a 4 x 2 weight, 2 blocks, sparsity 0.5 keeps exactly 2
    of the 4 weights in rows 0-1 and 2 of the 4 in rows 2-3.
    """
    _check_sparsity(sparsity)
    rows = weight.detach().reshape(weight.shape[0], -1)
    m, k = rows.shape
    if not isinstance(blocks, int) or blocks < 1 or m % blocks:
        raise UserInputError(f"blocks must be a positive int dividing the {m} rows (got {blocks!r})")
    if layout == "contiguous":
        per_block = rows.reshape(blocks, m // blocks * k)
    elif layout == "interleaved":
        per_block = rows.reshape(m // blocks, blocks, k).transpose(0, 1).reshape(blocks, -1)
    else:
        raise UserInputError(f"layout must be 'contiguous' or 'interleaved' (got {layout!r})")
    keep = lowest_score_masks({str(b): per_block[b].abs() for b in range(blocks)}, sparsity, scope="layer")
    stacked = torch.stack([keep[str(b)] for b in range(blocks)])
    if layout == "interleaved":
        stacked = stacked.reshape(blocks, m // blocks, k).transpose(0, 1)
    return stacked.reshape(weight.shape)


def simd_keep(weight: Tensor, sparsity: float, width: int) -> Tensor:
    """Scalpel keep mask: drop the ``round(sparsity * groups)`` aligned groups of ``width`` weights with the smallest L2 norm.

    Groups are ``row[g*width : (g+1)*width]`` of each row of the ``(M, K)`` view; when
    ``width`` does not divide K the last group of a row is shorter (NB: then the weight
    sparsity differs slightly from the group sparsity). Example: the row
    ``[3, 4, 0.1, 0.1]`` with width 2 and sparsity 0.5 keeps ``[T, T, F, F]``.
    """
    _check_sparsity(sparsity)
    if not isinstance(width, int) or width < 1:
        raise UserInputError(f"width must be a positive int (got {width!r})")
    rows = weight.detach().reshape(weight.shape[0], -1)
    m, k = rows.shape
    groups = -(-k // width)
    padded = torch.zeros(m, groups * width, dtype=rows.dtype)
    padded[:, :k] = rows
    norms = torch.linalg.vector_norm(padded.reshape(m, groups, width), dim=2)
    keep_groups = lowest_score_masks({"groups": norms}, sparsity, scope="layer")["groups"]
    return keep_groups.repeat_interleave(width, dim=1)[:, :k].reshape(weight.shape)


def balanced_masks(model: nn.Module, sparsity: float, blocks: int, names: Iterable[str] | None = None,
                   layout: Layout = "contiguous") -> dict[str, Tensor]:
    """:func:`balanced_keep` for every prunable weight (Linear/Conv) or the named ones.

    Returns ``{"fc1.weight": keep, ...}``; attach with ``Masks(model).update(...)``. A
    layer whose row count ``blocks`` does not divide raises :class:`UserInputError`
    naming it.
    """
    out = {}
    for name, param in prunable_parameters(model, names).items():
        try:
            out[name] = balanced_keep(param, sparsity, blocks, layout)
        except UserInputError as exc:
            raise UserInputError(f"{name}: {exc}") from exc
    return out


def simd_masks(model: nn.Module, sparsity: float, width: int, names: Iterable[str] | None = None) -> dict[str, Tensor]:
    """:func:`simd_keep` for every prunable weight (Linear/Conv) or the named ones: ``{"fc1.weight": keep, ...}``."""
    return {name: simd_keep(param, sparsity, width) for name, param in prunable_parameters(model, names).items()}


@register_method("balanced", strength="sparsity", check=schedule_check("balanced", "blocks"))
def balanced(model: nn.Module, context: CompressionContext, *, sparsity: float | tuple[float, ...] = (0.5, 0.75, 0.9),
             blocks: int = 4, layout: Layout = "contiguous", layers: tuple[str, ...] = ()) -> Outcome:
    """Han et al. (ESE, FPGA 2017): load-balance-aware pruning, every PE's rows keep the same number of weights.

    ``blocks`` processing elements share each layer's rows; by default the layers whose
    row count ``blocks`` does not divide are left dense (the record's ``info`` lists them),
    while naming such a layer in ``layers`` is an error. ``layout`` ``"contiguous"`` or
    ``"interleaved"`` rows per PE; ``sparsity`` a fraction or a schedule, with fine-tuning
    after each step.
    """
    params = prunable_parameters(model, list(layers) or None)
    selected = list(params) if layers else [n for n, p in params.items() if p.shape[0] % blocks == 0]
    schedule = schedule_of(sparsity, "balanced")
    outcome = prune_on_schedule(model, context, schedule, lambda m, s: balanced_masks(m, s, blocks, selected, layout), selected)
    dense = sorted(set(params) - set(selected))
    if not dense:
        return outcome
    return dataclasses.replace(outcome, summary=f"{outcome.summary}; {', '.join(dense)} left dense (rows not divisible by {blocks})",
                               info={**outcome.info, "dense": dense})


@register_method("simd", strength="sparsity", check=schedule_check("simd", "width"))
def simd(model: nn.Module, context: CompressionContext, *, sparsity: float | tuple[float, ...] = (0.5, 0.75, 0.9),
         width: int = 4, layers: tuple[str, ...] = ()) -> Outcome:
    """Yu et al. (Scalpel, ISCA 2017): prune aligned groups of ``width`` weights of a row (one SIMD load) by L2 norm.

    ``sparsity`` (a fraction of the groups, or a schedule), fine-tuning after each step.
    """
    selected = list(layers) or None
    schedule = schedule_of(sparsity, "simd")
    return prune_on_schedule(model, context, schedule, lambda m, s: simd_masks(m, s, width, selected), selected)

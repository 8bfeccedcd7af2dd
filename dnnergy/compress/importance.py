"""Channel importance for structured pruning: filter norms and output-reconstruction error.

Both work on a :class:`~dnnergy.compress.removal.ChannelGroup` (a root layer's output
channels plus every coupled layer) and return one score per root channel; the channels
with the lowest scores are removed first.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .removal import ChannelGroup, Coupled

__all__ = ["norm_importance", "consumer_columns", "contribution_gram", "greedy_removal_order", "reconstruction_importance"]


def norm_importance(group: ChannelGroup, p: float = 1.0) -> Tensor:
    """Sum over the group's filters of the L``p`` norm of each channel's filter (float64, one per channel).

    Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017) rank filters by
    ``sum |w|`` (p=1); He et al. (IJCAI 2018) by the L2 norm. A channel coupled across
    several filters (a residual stream, a depthwise conv) scores the sum of their norms.
    Units: the weights' own units. Example: a Linear with weight rows ``[3, -4]`` and
    ``[1, 0]`` scores ``[7, 1]`` for p=1 and ``[5, 1]`` for p=2.
    """
    scores = torch.zeros(group.size, dtype=torch.float64)
    for member in group.producers():
        weight = member.module.weight.detach().to(torch.float64)
        rows = weight[list(member.indices)].flatten(1)
        scores.index_add_(0, torch.tensor(member.roots), torch.linalg.vector_norm(rows, ord=p, dim=1))
    return scores


def consumer_columns(member: Coupled) -> tuple[Tensor, Tensor]:
    """Columns of ``weight.reshape(M, -1)`` fed by the group's channels, and the root channel of each.

    Linear: the input features themselves. Conv: input channel ``c`` feeds the ``R*S``
    columns ``c*R*S ... (c+1)*R*S - 1`` (the order of :func:`~dnnergy.compress.reconstruct.input_rows`).
    """
    module = member.module
    span = module.weight[0, 0].numel() if not isinstance(module, nn.Linear) else 1
    idx, roots = torch.tensor(member.indices), torch.tensor(member.roots)
    offsets = torch.arange(span)
    return (idx.unsqueeze(1) * span + offsets).reshape(-1), roots.repeat_interleave(span)


def contribution_gram(group: ChannelGroup, grams: Mapping[str, Tensor]) -> Tensor:
    """Gram matrix ``G[r, s] = sum_consumers <y_r, y_s>`` of the channels' contributions to the consumers' outputs.

    ``grams`` maps each consumer's name to its input Gram ``X^T X`` (``(1, K, K)`` or
    ``(K, K)``, from :func:`~dnnergy.compress.reconstruct.input_gram`). With consumer
    weight ``W`` (M x K) and the columns ``I_r`` of channel r, ``<y_r, y_s> =
    sum_m W[m, I_r] X^T X[I_r, I_s] W[m, I_s]^T``, i.e. ``P^T ((X^T X) * (W^T W)) P`` for the
    column-to-channel indicator ``P``. Removing a set T of channels without refitting
    changes the consumers' outputs by exactly ``1_T^T G 1_T`` (ThiNet, Luo et al., ICCV
    2017, Eq. 5, summed over consumers). Units: squared output units summed over samples.
    """
    gram = torch.zeros(group.size, group.size, dtype=torch.float64)
    for member in group.consumers():
        if getattr(member.module, "groups", 1) != 1:
            raise UserInputError(f"{member.name}: reconstruction importance needs ungrouped consumers (groups={member.module.groups})")
        if member.name not in grams:
            raise UserInputError(f"contribution_gram: no input Gram for consumer {member.name!r}")
        g = grams[member.name].to(torch.float64).reshape(-1, *grams[member.name].shape[-2:])[0]
        w = member.module.weight.detach().to(torch.float64).reshape(member.module.weight.shape[0], -1)
        cols, roots = consumer_columns(member)
        c = g[cols][:, cols] * (w[:, cols].T @ w[:, cols])
        indicator = torch.zeros(len(cols), group.size, dtype=torch.float64)
        indicator[torch.arange(len(cols)), roots] = 1.0
        gram += indicator.T @ c @ indicator
    return gram


def greedy_removal_order(gram: Tensor) -> list[int]:
    """ThiNet's greedy order: repeatedly remove the channel that least increases ``1_T^T G 1_T``.

    Example: ``G = diag(3, 1, 2)`` gives ``[1, 2, 0]``.
    """
    n = gram.shape[0]
    removed: list[int] = []
    cross = torch.zeros(n, dtype=gram.dtype)  # sum_{t in T} G[t, c]
    alive = torch.ones(n, dtype=torch.bool)
    for _ in range(n):
        cost = torch.where(alive, torch.diagonal(gram) + 2 * cross, torch.tensor(float("inf"), dtype=gram.dtype))
        best = int(torch.argmin(cost))
        removed.append(best)
        alive[best] = False
        cross += gram[best]
    return removed


def reconstruction_importance(group: ChannelGroup, grams: Mapping[str, Tensor]) -> Tensor:
    """Scores whose ascending order is ThiNet's greedy removal order (first removed scores 0)."""
    if not group.consumers():
        warnings.warn(f"{group.root}: group has no Conv/Linear consumer; all channels score 0", stacklevel=2)
        return torch.zeros(group.size, dtype=torch.float64)
    scores = torch.empty(group.size, dtype=torch.float64)
    for position, channel in enumerate(greedy_removal_order(contribution_gram(group, grams))):
        scores[channel] = position
    return scores

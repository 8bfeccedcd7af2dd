"""``profile``: measure the densities and zero runs of a model's weights and feature maps on real data."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..workload import Workload, trace

__all__ = ["profile"]


def profile(model: nn.Module, batch: Any, *, samples: int = 32, split: str = "test", name: str | None = None) -> Workload:
    """Trace ``model`` on real data, recording per layer the measured non-zero fraction and zero-run histogram.

    ``batch`` is an input tensor (or tuple of tensors), a dataset name known to
    :func:`dnnergy.data.load_dataset` (e.g. ``"digits"``), or a ``dnnergy.data.Dataset``;
    for a dataset the first ``samples`` images of ``split`` form the batch. Returns the
    :class:`Workload` of ``dnnergy.trace(model, batch, measure=True)``: every layer's
    ``w_density``/``i_density``/``o_density`` (fractions in [0, 1]) and
    ``w_stats``/``i_stats``/``o_stats`` describe the whole batch, which
    :func:`dnnergy.energy.estimate` then uses to gate MACs and price DRAM coding exactly.
    Counts (MACs, accesses) are for the whole batch.
    """
    if isinstance(batch, (torch.Tensor, tuple, list)):
        inputs = batch
    else:
        from ..data.datasets import Dataset, load_dataset  # lazily: energy does not depend on data otherwise

        dataset = load_dataset(batch) if isinstance(batch, str) else batch
        if not isinstance(dataset, Dataset):
            raise UserInputError(
                f"profile: batch must be a tensor, a dataset name or a Dataset (got {type(batch).__name__})"
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise UserInputError(f"profile: samples must be a positive int (got {samples!r})")
        images = dataset.split(split).tensors[0][:samples]
        if images.shape[0] == 0:
            raise UserInputError(f"profile: split {split!r} of dataset {dataset.name!r} is empty")
        inputs = images
    if isinstance(inputs, torch.Tensor) and not inputs.is_floating_point():
        raise UserInputError(f"profile: the batch must hold real data (a float tensor, got {inputs.dtype}), not a shape")
    return trace(model, inputs, name=name, measure=True)

"""``profile``: measure the densities and zero runs of a model's weights and feature maps on real data."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import UserInputError
from ..workload import Workload, trace

__all__ = ["profile"]


def _is_shape(batch: Any) -> bool:
    """A tuple/list of ints (one shape) or of tuples/lists of ints (one shape per input)."""

    def ints(value: Any) -> bool:
        return isinstance(value, (tuple, list)) and len(value) > 0 and all(
            isinstance(d, int) and not isinstance(d, bool) for d in value
        )

    return ints(batch) or (isinstance(batch, (tuple, list)) and len(batch) > 0 and all(map(ints, batch)))


def profile(model: nn.Module, batch: Any, *, samples: int = 32, split: str = "test", name: str | None = None) -> Workload:
    """Trace ``model`` on real data, recording per layer the measured non-zero fraction and zero-run histogram.

    ``batch`` is an input tensor (or tuple of tensors), a dataset name known to
    :func:`dnnergy.data.load_dataset` (e.g. ``"digits"``), or a ``dnnergy.data.Dataset``;
    for a dataset the first ``samples`` images of ``split`` form the batch. Returns the
    :class:`Workload` of ``dnnergy.trace(model, batch, measure=True)``: every layer's
    ``w_density``/``i_density``/``o_density`` (fractions in [0, 1]) and
    ``w_stats``/``i_stats``/``o_stats`` describe the whole batch, which
    :func:`dnnergy.energy.estimate` then uses to gate MACs and price DRAM coding exactly.
    Counts (MACs, accesses) are for the whole batch. A shape such as ``(1, 1, 28, 28)`` is
    refused (:class:`UserInputError`): densities of random inputs say nothing about the model.

    Example: ``w = profile(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU(), nn.Linear(10, 10)), "digits")``
    has ``w.batch == 32`` and ``w["1"].i_density`` about 0.51 (about half the 8x8 digit pixels are 0);
    ``estimate(w, "eyeriss")`` then prices the whole batch in MAC-normalized units (pJ on ``horowitz45``).
    """
    if _is_shape(batch):
        raise UserInputError(
            f"profile: batch {tuple(batch)!r} is a shape, not data; densities must be measured on real inputs: "
            "pass a tensor of real samples, a dataset name such as 'mnist', or a Dataset "
            "(for counts on a shape use dnnergy.trace)"
        )
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

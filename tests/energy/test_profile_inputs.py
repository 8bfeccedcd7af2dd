"""Inputs ``profile`` and ``trace`` must refuse (issue 14): a shape where data is needed, an empty batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.energy import profile
from dnnergy.errors import UserInputError


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))


@pytest.mark.parametrize("shape", [(1, 1, 28, 28), [1, 1, 28, 28], torch.Size([1, 1, 28, 28]), ((1, 1, 28, 28),)])
def test_profile_refuses_a_shape(shape):
    with pytest.raises(UserInputError, match="is a shape, not data.*real"):
        profile(_net(), shape)


def test_profile_still_measures_a_real_batch():
    x = torch.zeros(2, 1, 28, 28)
    x[:, :, :14] = 1.0  # half the pixels non-zero
    workload = profile(_net(), x)
    assert workload.layers[0].i_density == pytest.approx(0.5)


def test_trace_refuses_an_empty_batch():
    with pytest.raises(UserInputError, match=r"input 0 of shape \(0, 1, 28, 28\) is empty.*batch of 0 samples"):
        dnnergy.trace(_net(), torch.zeros(0, 1, 28, 28))
    with pytest.raises(UserInputError, match=r"input 1 of shape \(2, 0\) is empty"):
        dnnergy.trace(_net(), (torch.zeros(1, 1, 28, 28), torch.zeros(2, 0)))

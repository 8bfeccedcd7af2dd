"""Feature-map coding of a model on data: per-layer sizes against independent counts on the captured
tensors, the estimator's bits equal to the real encoding's, and the fixed-point quantizer by hand."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from dnnergy.coding.fmap import fmap_table, measure_fmaps, quantize_fixed
from dnnergy.errors import UserInputError


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.fc(x)))


@pytest.fixture(scope="module")
def images():
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return torch.where(x < 0.5, 0.0, x)  # about half zeros, like an MNIST digit's background


def pairs_by_walking(values, span=32):
    """Independent count of Eyeriss (run, level) pairs: walk the values as the hardware would."""
    pairs, run = 0, 0
    for value in values:
        if value == 0 and run < span - 1:
            run += 1
        else:
            pairs, run = pairs + 1, 0
    return pairs + (run > 0)


def test_quantizer_by_hand():
    # [0, 1] at 16 bits: il = ceil(log2 1) + 1 = 1, fl = 15; 1.0 * 2**15 = 32768 clips to 32767
    np.testing.assert_array_equal(quantize_fixed(torch.tensor([0.0, 0.5, 1.0]), 16), [0, 16384, 32767])
    # max|x| = 3 at 8 bits: il = 2 + 1 = 3, fl = 5: -3 -> -96, 1.5 -> 48, 0.01 -> round(0.32) = 0
    np.testing.assert_array_equal(quantize_fixed(torch.tensor([-3.0, 1.5, 0.01]), 8), [-96, 48, 0])


def test_every_mac_layer_measured_against_independent_counts(images):
    model = TinyCnn().eval()
    captured = {}
    hooks = [getattr(model, n).register_forward_pre_hook(lambda m, a, n=n: captured.__setitem__(n, a[0].detach()))
             for n in ("conv1", "conv2", "fc")]
    with torch.no_grad():
        model(images)
    for h in hooks:
        h.remove()
    records = measure_fmaps(model, images)
    assert [r.layer for r in records] == ["conv1", "conv2", "fc"]
    for r in records:
        x = captured[r.layer]
        assert r.shape == tuple(x.shape)
        nonzeros = int((x != 0).sum())  # 16-bit fixed point keeps every non-zero of these maps
        assert r.nonzeros == nonzeros and r.raw_bits == x.numel() * 16
        assert r.zero_flag_bits == (x.numel() - nonzeros) + 17 * nonzeros  # seed 001: 1 bit per zero, 17 per value
        assert r.rlc_bits == math.ceil(pairs_by_walking(x.reshape(-1).tolist()) / 3) * 64
        assert r.estimate_bits == r.rlc_bits  # the estimator's DRAM code on the profiled stats, to the bit
        q = quantize_fixed(x, 16).reshape(-1)
        counts = np.array(list(Counter(q.tolist()).values()))
        assert r.entropy_bits == pytest.approx(-(counts * np.log2(counts / q.size)).sum())
    table = fmap_table(records)
    assert list(table["rlc_B"]) == [-(-r.rlc_bits // 8) for r in records]
    assert table["estimate=rlc"].all()
    assert (table["rlc/entropy"] >= 1).all()  # RLC never beats the order-0 bound on these i.i.d.-ish maps


def test_a_shared_module_is_named_and_left_out():
    with pytest.warns(UserWarning, match=r"\['fc'\] run several MAC layers"):
        assert measure_fmaps(Twice().eval(), torch.rand(2, 4)) == []


def test_bad_images():
    with pytest.raises(UserInputError, match="float tensor"):
        measure_fmaps(TinyCnn(), torch.zeros(2, 1, 8, 8, dtype=torch.int64))

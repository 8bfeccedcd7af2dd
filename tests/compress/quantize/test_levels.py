"""Quantizer levels against closed forms, hand-computed grids and torch's own observers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

from dnnergy.compress.quantize import levels

T = torch.tensor


def test_affine_two_bits_on_minus_one_to_three():
    # range [-1, 3], 2 bits: scale 4/3, offset round(1 / (4/3)) = 1; levels (k - 1) 4/3 for k = 0..3
    x = T([-1.0, -0.6, 0.0, 0.7, 1.4, 3.0])
    scale, offset = levels.affine_range(x, 2)
    assert float(scale) == pytest.approx(4 / 3) and float(offset) == 1.0
    expected = T([-4 / 3, 0.0, 0.0, 4 / 3, 4 / 3, 8 / 3])  # -0.6/(4/3) = -0.45 -> 0; 0.7 -> 0.525 -> 1; 3 -> 2.25 -> 2
    assert torch.allclose(levels.affine(x, 2, scale, offset), expected)


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_affine_range_matches_torch_minmax_observer(bits):
    """Peer: torch.ao's MinMaxObserver (quint-style range [0, 2**b - 1], min/max widened to include 0)."""
    x = torch.randn(200, generator=torch.Generator().manual_seed(bits)) * 0.3 + 0.1
    observer = MinMaxObserver(dtype=torch.quint8 if bits <= 8 else torch.qint32, quant_min=0, quant_max=2 ** bits - 1,
                              qscheme=torch.per_tensor_affine)
    observer(x)
    ref_scale, ref_zero = observer.calculate_qparams()
    scale, offset = levels.affine_range(x, bits)
    assert float(scale) == pytest.approx(float(ref_scale), rel=1e-6)
    assert int(offset) == int(ref_zero)
    ref = torch.fake_quantize_per_tensor_affine(x, float(ref_scale), int(ref_zero), 0, 2 ** bits - 1)
    assert torch.allclose(levels.affine(x, bits, scale, offset), ref, atol=1e-6)


def test_per_channel_affine_matches_torch_per_channel_observer():
    w = torch.randn(5, 7, generator=torch.Generator().manual_seed(1))
    observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8, quant_min=0, quant_max=255, qscheme=torch.per_channel_affine)
    observer(w)
    ref_scale, ref_zero = observer.calculate_qparams()
    scale, offset = levels.affine_range(w, 8, per_channel=True)
    assert torch.allclose(scale.flatten(), ref_scale.float(), rtol=1e-6) and torch.equal(offset.flatten().long(), ref_zero.long())


@pytest.mark.parametrize("value", [0.0, 0.37, -2.5])
@pytest.mark.parametrize("shape", [(1,), (4, 3)])
def test_affine_constant_zero_and_single_value_tensors_are_exact(value, shape):
    x = torch.full(shape, value)
    scale, offset = levels.affine_range(x, 4)
    assert torch.allclose(levels.affine(x, 4, scale, offset), x, atol=1e-7)  # the constant is an end of [min(c,0), max(c,0)]
    assert bool(torch.isfinite(scale).all()) and float(scale) > 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=40), st.integers(2, 12))
def test_affine_error_at_most_half_a_step_and_idempotent(values, bits):
    x = T(values, dtype=torch.float64)
    scale, offset = levels.affine_range(x, bits)
    q = levels.affine(x, bits, scale, offset)
    assert float((q - x).abs().max()) <= float(scale) / 2 * (1 + 1e-9) + 1e-12
    assert torch.equal(levels.affine(q, bits, scale, offset), q)
    assert len(torch.unique(q)) <= 2 ** bits


@pytest.mark.parametrize(("max_abs", "bits", "fl"), [(0.9, 8, 7), (1.0, 8, 7), (3.2, 8, 5), (100.0, 10, 2), (0.01, 8, 13), (0.0, 8, 7)])
def test_fraction_length_is_ristrettos(max_abs, bits, fl):
    # il = ceil(log2 max) + 1, fl = bits - il: 3.2 -> il 2 + 1 = 3 -> fl 5; 0.01 -> ceil(-6.64) = -6 -> il -5 -> fl 13
    assert levels.fraction_length(max_abs, bits) == fl


def test_fixed_point_rounds_and_saturates():
    # 4 bits, fl 2: step 1/4, codes -8..7 -> range [-2, 1.75]
    x = T([0.1, 0.13, 0.375, -2.6, 5.0, -0.125])
    assert torch.equal(levels.fixed_point(x, 4, 2), T([0.0, 0.25, 0.5, -2.0, 1.75, -0.0]))


def test_power_of_two_three_bits_signed():
    # sign + 2 bits: zero and exponents top-2..top = -2..0: levels 0, +-1/4, +-1/2, +-1 (Miyashita, FSR = 1)
    x = T([0.1, 0.3, -0.7, 3.0, 0.0, -0.2])
    # log2: 0.1 -> -3.3 -> -3 < -2 -> 0; 0.3 -> -1.74 -> -2; 0.7 -> -0.51 -> -1; 3 -> 1.58 -> 2 -> clipped to 0; 0.2 -> -2.32 -> -2
    assert torch.equal(levels.power_of_two(x, 3, 0), T([0.0, 0.25, -0.5, 1.0, 0.0, -0.25]))
    assert set(levels.power_of_two(torch.linspace(-2, 2, 401), 3, 0).tolist()) == {0.0, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0}


def test_power_of_two_unsigned_uses_every_bit_for_exponents():
    # 2 bits unsigned: zero + 3 exponents top-2..top
    assert torch.equal(levels.power_of_two(T([4.0, 1.1, 0.6, 0.2, -3.0]), 2, 2, signed=False), T([4.0, 1.0, 0.0, 0.0, 0.0]))
    assert levels.log_exponent(0.75) == 0 and levels.log_exponent(0.0) == 0 and levels.log_exponent(5.0) == 2


def test_ternary_twn_threshold_and_scale():
    w = T([1.0, -2.0, 0.1, 3.0])
    delta, alpha = levels.ternary_threshold(w)
    assert delta == pytest.approx(0.7 * 6.1 / 4) and alpha == pytest.approx(2.5)  # mean|w| = 1.525; kept |w| > 1.0675: 2, 3
    assert torch.equal(levels.ternary(w, delta, alpha), T([0.0, -2.5, 0.0, 2.5]))
    assert levels.ternary_threshold(torch.zeros(5)) == (0.0, 0.0)
    assert torch.equal(levels.ternary(torch.zeros(3), 0.0, 0.0), torch.zeros(3))


def test_trained_ternary_two_scales():
    w = T([0.5, -0.5, 0.01, -0.02, 0.3])
    assert torch.equal(levels.trained_ternary(w, 0.025, 2.0, 3.0), T([2.0, -3.0, 0.0, 0.0, 2.0]))


def test_binary_sign_scale_and_zeros():
    w = T([[0.5, -1.5, 0.0], [2.0, 2.0, -0.0001]])
    alpha = levels.mean_abs(w, per_channel=True)
    assert alpha.flatten().tolist() == pytest.approx([1.0, (4.0001) / 3])  # row 1: mean over the two non-zeros
    assert torch.equal(levels.binary(w, 1.0), T([[1.0, -1.0, 0.0], [1.0, 1.0, -1.0]]))
    assert torch.allclose(levels.binary(w, alpha), T([[1.0, -1.0, 0.0], [4.0001 / 3, 4.0001 / 3, -4.0001 / 3]]))
    assert float(levels.mean_abs(torch.zeros(3), per_channel=False)) == 0.0


def test_fraction_length_refuses_infinite_ranges():
    with pytest.raises(ValueError, match="finite"):
        levels.fraction_length(math.inf, 8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=30), st.integers(2, 8), st.integers(-3, 3))
def test_inside_is_exactly_where_rounding_does_not_clip(values, bits, fl):
    """Inside the straight-through range the error is at most half a step; outside it is more (clipping)."""
    x = T(values, dtype=torch.float64)
    step = 2.0 ** -fl
    error = (levels.fixed_point(x, bits, fl) - x).abs()
    inside = levels.fixed_point_inside(x, bits, fl)
    assert bool((error[inside] <= step / 2 + 1e-12).all()) and bool((error[~inside] > step / 2 - 1e-12).all())
    scale, offset = T(step, dtype=torch.float64), T(float(2 ** (bits - 1)), dtype=torch.float64)
    error = (levels.affine(x, bits, scale, offset) - x).abs()
    inside = levels.affine_inside(x, bits, scale, offset)
    assert bool((error[inside] <= step / 2 + 1e-12).all()) and bool((error[~inside] > step / 2 - 1e-12).all())

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import MacCost

FP32 = MacCost("fp32", 32, mult=3.7, add=0.9)


def test_reference_energy_is_mult_plus_add():
    assert FP32.energy(32, 32) == pytest.approx(4.6)  # 3.7 + 0.9 pJ (Horowitz 2014)
    assert FP32.reference_energy == pytest.approx(4.6)


def test_multiplier_linear_in_one_operand_quadratic_in_both_adder_linear():
    mult_only = MacCost("m", 16, mult=1.0, add=0.0)
    assert mult_only.energy(8, 16) == pytest.approx(0.5)  # one operand halves: 1 * 1/2
    assert mult_only.energy(8, 8) == pytest.approx(0.25)  # both halve: 1 * 1/2 * 1/2
    add_only = MacCost("a", 16, mult=0.0, add=1.0)
    assert add_only.energy(8, 8) == pytest.approx(0.5)  # linear in the wider operand
    assert add_only.op_energy(4) == pytest.approx(0.25)
    # fp32 table at 16 x 16 bits: 3.7/4 + 0.9/2 = 1.375
    assert FP32.energy(16, 16) == pytest.approx(1.375)


def test_exponents_are_configurable():
    cost = MacCost("x", 16, mult=1.0, add=1.0, mult_exponent=0.5, add_exponent=2.0)
    # mult: (1/2 * 1/2)**0.5 = 0.5; add: (1/2)**2 = 0.25
    assert cost.energy(8, 8) == pytest.approx(0.75)


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64), st.integers(1, 64))
def test_energy_monotone_in_bits(w1, a1, w2, a2):
    lo, hi = (min(w1, w2), min(a1, a2)), (max(w1, w2), max(a1, a2))
    assert FP32.energy(*lo) <= FP32.energy(*hi)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="", ref_bits=8, mult=1, add=1), "MacCost: name"),
        (dict(name="x", ref_bits=0, mult=1, add=1), "ref_bits must be a positive int"),
        (dict(name="x", ref_bits=8, mult=-1, add=1), "mult must be >= 0"),
        (dict(name="x", ref_bits=8, mult=1, add=None), "add must be a finite number"),
        (dict(name="x", ref_bits=8, mult=1, add=1, mult_exponent=-2), "mult_exponent must be >= 0"),
    ],
)
def test_invalid_mac_cost(kwargs, match):
    with pytest.raises(HardwareConfigError, match=match):
        MacCost(**kwargs)


def test_binary_mac_is_an_xnor_and_a_popcount_share():
    # 1 x 1 bits: XNOR = the multiplier's 1-bit product, popcount = a 2-bit add per product (a popcount tree of
    # n one-bit inputs has sum_k k n / 2**k -> 2n full-adder bits)
    assert FP32.energy(1, 1) == pytest.approx(3.7 / 32 ** 2 + 0.9 * 2 / 32)  # horowitz45 fp32: 0.0598 pJ
    eyeriss = MacCost("int16", 16, mult=0.935, add=0.065)
    assert eyeriss.energy(1, 1) == pytest.approx(0.935 / 256 + 0.065 * 2 / 16) == eyeriss.binary_energy()  # 0.0118
    # binary weights with 8-bit activations are not XNOR-able: the multiplier law
    assert FP32.energy(1, 8) == pytest.approx(3.7 * (1 / 32) * (8 / 32) + 0.9 * 8 / 32)
    # exponents apply to the gate and the popcount too
    cost = MacCost("x", 16, mult=1.0, add=1.0, mult_exponent=0.5, add_exponent=2.0)
    assert cost.energy(1, 1) == pytest.approx((1 / 16) ** 1 + (2 / 16) ** 2)


@given(st.integers(1, 64), st.integers(1, 64), st.floats(0.1, 3.0), st.floats(0.1, 3.0))
def test_binary_mac_is_the_cheapest_whatever_the_exponents(w, a, mult_exponent, add_exponent):
    cost = MacCost("x", 16, mult=0.935, add=0.065, mult_exponent=mult_exponent, add_exponent=add_exponent)
    assert cost.energy(1, 1) <= cost.energy(w, a) * (1 + 1e-12)

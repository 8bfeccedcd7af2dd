"""Empirical entropy bound against closed forms of known distributions."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnergy.coding import entropy_bits


def test_dyadic_distribution_is_exact():
    # p = (1/2, 1/4, 1/8, 1/8): H = 1/2 + 2/4 + 3/8 + 3/8 = 1.75 bits per symbol
    symbols = np.repeat([7, -3, 0, 100], [4000, 2000, 1000, 1000])
    assert entropy_bits(np.random.default_rng(0).permutation(symbols)) == pytest.approx(8000 * 1.75)


def test_sparse_binary_stream():
    # density d: H = -d log2 d - (1 - d) log2 (1 - d); d = 0.1 -> 0.46900 bits per symbol
    x = np.zeros(10_000)
    x[:1000] = 1.5
    assert entropy_bits(x) == pytest.approx(10_000 * (-0.1 * math.log2(0.1) - 0.9 * math.log2(0.9)))
    assert entropy_bits(x) / 10_000 == pytest.approx(0.46900, abs=1e-5)


@given(st.integers(1, 64), st.integers(1, 50))
def test_uniform_and_constant(k, copies):
    # k equally frequent symbols: log2 k bits each; a constant stream needs none
    assert entropy_bits(np.repeat(np.arange(k), copies)) == pytest.approx(k * copies * math.log2(k))
    assert entropy_bits(np.full(copies, 3)) == 0.0
    assert entropy_bits(np.zeros(0)) == 0.0

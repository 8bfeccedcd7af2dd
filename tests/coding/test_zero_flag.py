"""Zero-flag code (seed 001): bits by hand, exact round trips (hypothesis) and the estimator's size, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dnnergy.coding import Bitstream, decode_zero_flag, encode_zero_flag
from dnnergy.energy import get_code
from dnnergy.errors import UserInputError
from dnnergy.workload import TensorStats

values = arrays(
    np.int16,
    st.integers(0, 300),
    elements=st.one_of(st.just(0), st.just(0), st.integers(-(2**15), 2**15 - 1)),
)


def test_bits_by_hand():
    # 0 -> 0; 5 -> 1 0101; 0 -> 0; -1 -> 1 1111 (4-bit levels): 0 10101 0 11111 = 12 bits
    stream = encode_zero_flag(np.array([0, 5, 0, -1]), level_bits=4)
    assert stream.nbits == 12
    assert stream.bits().tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1]
    assert bytes(stream) == bytes([0b01010101, 0b11110000])
    np.testing.assert_array_equal(decode_zero_flag(stream, 4, level_bits=4), [0, 5, 0, -1])


@pytest.mark.parametrize("x", [np.zeros(0, np.int64), np.zeros(50, np.int64), np.arange(1, 9), np.array([7])])
def test_edge_cases_cost_one_bit_per_zero_and_seventeen_per_value(x):
    stream = encode_zero_flag(x)
    assert stream.nbits == np.count_nonzero(x == 0) + 17 * np.count_nonzero(x)
    np.testing.assert_array_equal(decode_zero_flag(stream, x.size), x)


@settings(max_examples=80, deadline=None)
@given(values)
def test_round_trip_and_estimator_bits(x):
    stream = encode_zero_flag(x)
    np.testing.assert_array_equal(decode_zero_flag(stream, x.size), x.astype(np.int64))
    assert stream.nbytes == -(-stream.nbits // 8)
    stats = TensorStats.of(x)
    assert get_code("zero_flag").coded_bits(x.size, 16, stats.density, stats) == stream.nbits


def test_bad_input_is_named():
    with pytest.raises(UserInputError, match="8-bit two's complement"):
        encode_zero_flag(np.array([200]), level_bits=8)
    stream = encode_zero_flag(np.array([0, 3, 0]))
    with pytest.raises(UserInputError, match="not 4 coded values"):
        decode_zero_flag(stream, 4)
    with pytest.raises(UserInputError, match="not 1 coded values"):
        decode_zero_flag(Bitstream.of(np.array([1, 0, 1])), 1)  # a level cut short

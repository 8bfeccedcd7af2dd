"""Delta coding of neighbouring activations: the transform by hand, exact round trips with wrap-around
(hypothesis), and the coded size of a smooth row against a hand count."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from dnnergy.coding import decode_delta, encode_delta, encode_rlc
from dnnergy.coding.delta import delta, undelta
from dnnergy.errors import UserInputError


def test_transform_by_hand():
    # each row restarts: the first value is kept, then differences from the left neighbour
    x = np.array([[5, 7, 7, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(delta(x, 16), [[5, 2, 0, -7], [0, 0, 0, 1]])
    # 8-bit wrap-around: 127 - (-128) = 255 = -1 (mod 256), and back
    np.testing.assert_array_equal(delta(np.array([-128, 127]), 8), [-128, -1])
    np.testing.assert_array_equal(undelta(np.array([-128, -1]), 8), [-128, 127])


def test_a_constant_row_costs_one_value_and_a_run():
    # 40 equal values -> deltas [9, 0 x 39]: pairs (0, 9) (31, 0) (6, 0): one 64-bit word,
    # where the raw row needs 40 pairs = 14 words
    x = np.full((1, 40), 9)
    stream = encode_delta(x)
    assert stream.nbits == 64
    assert encode_rlc(x).nbits == 14 * 64
    np.testing.assert_array_equal(decode_delta(stream, x.shape), x)


@settings(max_examples=60, deadline=None)
@given(arrays(np.int16, array_shapes(min_dims=1, max_dims=3, max_side=12), elements=st.integers(-(2**15), 2**15 - 1)),
       st.sampled_from([16]))
def test_round_trip_16_bit(x, bits):
    np.testing.assert_array_equal(undelta(delta(x, bits), bits), x)
    np.testing.assert_array_equal(decode_delta(encode_delta(x, bits), x.shape, bits), x)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 12).flatmap(lambda b: st.tuples(
    st.just(b), arrays(np.int64, st.integers(1, 40), elements=st.integers(-(2 ** (b - 1)), 2 ** (b - 1) - 1)))))
def test_round_trip_other_widths(case):
    bits, x = case
    d = delta(x, bits)
    assert d.min() >= -(2 ** (bits - 1)) and d.max() < 2 ** (bits - 1)  # deltas keep the width
    np.testing.assert_array_equal(decode_delta(encode_delta(x, bits), x.shape, bits), x)


def test_bad_input_is_named():
    with pytest.raises(UserInputError, match="at least one axis"):
        delta(np.int64(3), 16)
    with pytest.raises(UserInputError, match="integer array"):
        encode_delta(np.ones((2, 2)))

"""Eyeriss run-length code: the seed's example bit by bit, sizes by hand, exact round trips on random and
adversarial inputs (hypothesis), and the estimator's coded bits equal to the encoder's, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dnnergy.coding import EYERISS_RLC, Bitstream, RunLengthCode, decode_rlc, encode_rlc
from dnnergy.coding.runlength import pair_count
from dnnergy.energy import RlcCode, get_code
from dnnergy.errors import UserInputError
from dnnergy.workload import TensorStats

# Sparse int16 arrays: mostly zeros, runs longer than the 5-bit run field likely.
sparse = arrays(
    np.int16,
    st.integers(0, 300),
    elements=st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-(2**15), 2**15 - 1)),
)
# Adversarial: blocks of zeros whose lengths sit at the run field's edges (31, 32, 33, 64, ...).
edges = st.sampled_from([0, 1, 30, 31, 32, 33, 63, 64, 65, 95, 96, 97])


@st.composite
def adversarial(draw):
    blocks = draw(st.lists(st.tuples(edges, st.integers(-(2**15), 2**15 - 1)), max_size=8))
    parts = [np.concatenate([np.zeros(zeros, np.int64), [value]]) for zeros, value in blocks]
    parts.append(np.zeros(draw(edges), np.int64))
    return np.concatenate(parts)


def test_seed_example_bit_by_bit():
    # seed 001: 0,0,12,0,0,0,0,53,0,0,22 -> pairs (2,12) (4,53) (2,22): one 64-bit word
    x = np.array([0, 0, 12, 0, 0, 0, 0, 53, 0, 0, 22])
    stream = encode_rlc(x)
    assert stream.nbits == 64 and stream.nbytes == 8
    # layout: [run 5 | level 16] x 3, then the termination bit (set: last word)
    expected = (((2 << 16 | 12) << 21 | (4 << 16 | 53)) << 21 | (2 << 16 | 22)) << 1 | 1
    assert int.from_bytes(bytes(stream), "big") == expected
    np.testing.assert_array_equal(decode_rlc(stream, x.size), x)


def test_negative_levels_and_padding_pairs_by_hand():
    # [-1]: one pair (0, 0xFFFF), then two unused (0, 0) pairs and the termination bit
    stream = encode_rlc(np.array([-1]))
    assert int.from_bytes(bytes(stream), "big") == 0xFFFF << 43 | 1
    np.testing.assert_array_equal(decode_rlc(stream, 1), [-1])


@pytest.mark.parametrize(
    ("x", "pairs"),
    [
        (np.zeros(0, np.int64), 0),  # nothing to send: no word
        (np.zeros(32, np.int64), 1),  # one (31, 0) pair covers 32 zeros
        (np.zeros(33, np.int64), 2),  # ... and one (0, 0) the 33rd
        (np.r_[np.zeros(31, np.int64), 7], 1),  # a run of 31 fits the field
        (np.r_[np.zeros(32, np.int64), 7], 2),  # a run of 32 needs a filler pair: 32 // 32 + 1
        (np.r_[np.zeros(70, np.int64), 5, np.zeros(40, np.int64)], 5),  # 70 // 32 + 1 = 3, ceil(40 / 32) = 2
        (np.arange(1, 7), 6),  # no zeros: one pair per value
    ],
)
def test_sizes_by_hand(x, pairs):
    stream = encode_rlc(x)
    assert stream.nbits == -(-pairs // 3) * 64
    np.testing.assert_array_equal(decode_rlc(stream, x.size), x)


@settings(max_examples=80, deadline=None)
@given(st.one_of(sparse, adversarial()))
def test_round_trip_and_estimator_bits(x):
    stream = encode_rlc(x)
    np.testing.assert_array_equal(decode_rlc(stream, x.size), x.astype(np.int64))
    assert stream.nbytes == stream.nbits // 8  # whole 64-bit words
    # the estimator's DRAM code prices the measured stats of this tensor to the same bit
    stats = TensorStats.of(x)
    assert get_code("rlc").coded_bits(x.size, 16, stats.density, stats) == stream.nbits


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.integers(0, 200), elements=st.one_of(st.just(0), st.integers(-128, 127))),
       st.integers(1, 6), st.integers(1, 4), st.integers(0, 2))
def test_round_trip_with_other_widths(x, run_bits, pairs_per_word, term_bits):
    code = RunLengthCode(run_bits=run_bits, level_bits=8, pairs_per_word=pairs_per_word, term_bits=term_bits)
    stream = encode_rlc(x, code)
    np.testing.assert_array_equal(decode_rlc(stream, x.size, code), x.astype(np.int64))
    stats = TensorStats.of(x)
    assert RlcCode(code).coded_bits(x.size, 8, stats.density, stats) == stream.nbits
    # independent count of the pairs: walk the array as the hardware would
    pairs, run = 0, 0
    for value in x.tolist():
        if value == 0 and run < code.span - 1:
            run += 1
        else:
            pairs, run = pairs + 1, 0
    pairs += run > 0
    assert stream.nbits == -(-pairs // pairs_per_word) * code.word_bits


def test_pair_count_of_a_histogram():
    # runs 0 (x3), 31 (x1), 32 (x2) and 70 trailing zeros: 3 + 1 + 2 x 2 + ceil(70 / 32) = 11
    assert pair_count([0, 31, 32], [3, 1, 2], 70) == 11
    assert pair_count([0, 31, 32], [3, 1, 2], 70, RunLengthCode(run_bits=6)) == 3 + 1 + 2 + 2


def test_single_element_and_shape_is_flattened_in_c_order():
    for value in (0, 1, -(2**15), 2**15 - 1):
        np.testing.assert_array_equal(decode_rlc(encode_rlc(np.array([value])), 1), [value])
    x = np.array([[0, 3], [0, 0]])
    np.testing.assert_array_equal(decode_rlc(encode_rlc(x), 4), x.reshape(-1))


def test_bad_input_is_named():
    with pytest.raises(UserInputError, match="16-bit two's complement"):
        encode_rlc(np.array([40000]))
    with pytest.raises(UserInputError, match="integer array"):
        encode_rlc(np.array([0.5]))
    stream = encode_rlc(np.arange(5))
    with pytest.raises(UserInputError, match="fewer than numel=99"):
        decode_rlc(stream, 99)
    with pytest.raises(UserInputError, match="whole 64-bit words"):
        decode_rlc(Bitstream(stream.data[:7], 56), 5)
    two_words = encode_rlc(np.arange(1, 5))
    with pytest.raises(UserInputError, match="termination bit"):
        decode_rlc(Bitstream(two_words.data[:8], 64), 3)  # the first word alone: its flag is clear


def test_eyeriss_word_is_64_bits():
    assert EYERISS_RLC.word_bits == 64 and EYERISS_RLC.span == 32

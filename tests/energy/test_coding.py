import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dnnergy.energy.coding import (
    EYERISS_RLC,
    RunLengthCode,
    decode_rlc,
    decode_zero_flag,
    encode_rlc,
    encode_zero_flag,
    rlc_bits,
    rlc_bits_expected,
    rlc_pairs,
    zero_flag_bits,
    zero_flag_bits_expected,
)
from dnnergy.workload import TensorStats

# Sparse int16 arrays: mostly zeros, long runs likely.
sparse = arrays(
    np.int16,
    st.integers(0, 300),
    elements=st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-(2**15), 2**15 - 1)),
)


def test_eyeriss_code_is_64_bit_words():
    assert EYERISS_RLC.word_bits == 64  # 3 x (5 + 16) + 1
    assert EYERISS_RLC.span == 32  # a 5-bit run covers at most 31 zeros + the level
    assert RunLengthCode(level_bits=8).word_bits == 3 * 13 + 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(run_bits=0), "RunLengthCode: run_bits"), (dict(pairs_per_word=1.5), "pairs_per_word"), (dict(term_bits=-1), "term_bits")],
)
def test_invalid_code(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunLengthCode(**kwargs)


def test_seed_example_by_hand():
    # seed 001: 0,0,12,0,0,0,0,53,0,0,22 -> pairs (2,12) (4,53) (2,22): one 64-bit word
    x = np.array([0, 0, 12, 0, 0, 0, 0, 53, 0, 0, 22])
    words = encode_rlc(x)
    assert len(words) == 1
    # layout: [run 5 | level 16] x 3, then the termination bit (set: last word)
    expected = (((2 << 16 | 12) << 21 | (4 << 16 | 53)) << 21 | (2 << 16 | 22)) << 1 | 1
    assert words[0] == expected
    assert rlc_bits(TensorStats.of(x)) == 64


def test_long_runs_and_trailing_zeros_by_hand():
    # 70 zeros then 5, then 40 zeros: run 70 -> 70 // 32 + 1 = 3 pairs; trailing 40 -> ceil(40/32) = 2 pairs
    x = np.zeros(111, dtype=np.int64)
    x[70] = 5
    stats = TensorStats.of(x)
    assert rlc_pairs(stats) == 5
    assert rlc_bits(stats) == 2 * 64  # ceil(5 / 3) words
    np.testing.assert_array_equal(decode_rlc(encode_rlc(x), x.size), x)


@settings(max_examples=60, deadline=None)
@given(sparse)
def test_rlc_round_trip_and_size_from_stats(x):
    words = encode_rlc(x)
    np.testing.assert_array_equal(decode_rlc(words, x.size), x.astype(np.int64))
    stats = TensorStats.of(x)
    assert rlc_bits(stats) == len(words) * EYERISS_RLC.word_bits
    assert all(0 <= w < 2**64 for w in words)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int8, st.integers(0, 200), elements=st.one_of(st.just(0), st.integers(-128, 127))), st.integers(1, 6))
def test_rlc_round_trip_with_other_widths(x, run_bits):
    code = RunLengthCode(run_bits=run_bits, level_bits=8, pairs_per_word=2)
    words = encode_rlc(x, code)
    np.testing.assert_array_equal(decode_rlc(words, x.size, code), x.astype(np.int64))
    assert rlc_bits(TensorStats.of(x), code) == len(words) * code.word_bits


@settings(max_examples=60, deadline=None)
@given(sparse)
def test_zero_flag_round_trip_and_size_from_stats(x):
    bits = encode_zero_flag(x)
    np.testing.assert_array_equal(decode_zero_flag(bits), x.astype(np.int64))
    assert zero_flag_bits(TensorStats.of(x)) == bits.size
    # seed 001: a zero costs 1 bit, a non-zero 1 + 16
    assert bits.size == np.count_nonzero(x == 0) + 17 * np.count_nonzero(x)


def test_encoders_reject_values_that_do_not_fit():
    with pytest.raises(ValueError, match="16-bit two's complement"):
        encode_rlc(np.array([40000]))
    with pytest.raises(TypeError, match="integer array"):
        encode_zero_flag(np.array([0.5]))


def test_expected_rlc_limits():
    n = 96_000
    assert rlc_bits_expected(n, 1.0) == pytest.approx(n / 3 * 64)  # one pair per value
    assert rlc_bits_expected(n, 0.0) == pytest.approx(n / 32 / 3 * 64)  # one (31, 0) pair per 32 zeros
    assert rlc_bits_expected(0, 0.5) == 0.0
    # d = 0.5, L = 32: pairs per non-zero 1 / (1 - 0.5**32) ~ 1
    assert rlc_bits_expected(n, 0.5) == pytest.approx(n * 0.5 / (1 - 0.5**32) / 3 * 64)


@pytest.mark.parametrize("density", [0.02, 0.1, 0.4])
def test_expected_rlc_matches_iid_samples(density):
    rng = np.random.default_rng(0)
    n = 300_000
    x = (rng.random(n) < density).astype(np.int64)
    measured = rlc_pairs(TensorStats.of(x))
    # pairs per non-zero = 1 / (1 - z**32); the sample's own non-zero count removes its noise
    expected = x.sum() / (1 - (1 - density) ** 32)
    assert measured == pytest.approx(expected, rel=0.01)
    assert rlc_bits_expected(n, density) == pytest.approx(n * density / (1 - (1 - density) ** 32) / 3 * 64)


@given(st.floats(0, 1), st.floats(0, 1))
def test_expected_sizes_monotone_in_density(a, b):
    lo, hi = min(a, b), max(a, b)
    assert rlc_bits_expected(1000, lo) <= rlc_bits_expected(1000, hi) * (1 + 1e-12)
    assert zero_flag_bits_expected(1000, lo) <= zero_flag_bits_expected(1000, hi)
    assert math.isclose(zero_flag_bits_expected(1000, hi), 1000 * (1 + 16 * hi))

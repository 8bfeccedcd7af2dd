import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnergy.energy.coding import (
    EYERISS_RLC,
    RunLengthCode,
    rlc_bits,
    rlc_bits_expected,
    rlc_pairs,
    zero_flag_bits,
    zero_flag_bits_expected,
)
from dnnergy.workload import TensorStats

# The encoders these sizes must equal bit for bit are tested in tests/coding/.


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


def test_long_runs_and_trailing_zeros_by_hand():
    # 70 zeros then 5, then 40 zeros: run 70 -> 70 // 32 + 1 = 3 pairs; trailing 40 -> ceil(40/32) = 2 pairs
    x = np.zeros(111, dtype=np.int64)
    x[70] = 5
    stats = TensorStats.of(x)
    assert rlc_pairs(stats) == 5
    assert rlc_bits(stats) == 2 * 64  # ceil(5 / 3) words


def test_zero_flag_size_from_stats_by_hand():
    # seed 001: [0, 0, 12, 0, 53, 0] -> 4 zeros x 1 bit + 2 non-zeros x (1 + 16) bits = 38
    assert zero_flag_bits(TensorStats.of(np.array([0, 0, 12, 0, 53, 0]))) == 38
    assert zero_flag_bits(TensorStats.of(np.array([0, 0, 12, 0, 53, 0])), level_bits=8) == 6 + 2 * 8


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

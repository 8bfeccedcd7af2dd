"""Huffman coding: exact round trips (hypothesis) and optimal code lengths against brute force and entropy bounds."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.coding import HuffmanStream, code_lengths, huffman_decode, huffman_encode
from dnnergy.errors import UserInputError


@st.composite
def symbol_arrays(draw):
    alphabet = draw(st.integers(1, 40))
    symbols = draw(st.lists(st.integers(0, alphabet - 1), max_size=400))
    return np.asarray(symbols, dtype=np.int64), alphabet


@settings(max_examples=150, deadline=None)
@given(symbol_arrays())
def test_round_trip_is_exact(case):
    symbols, alphabet = case
    stream = huffman_encode(symbols, alphabet)
    assert stream.data.size == (stream.bits + 7) // 8
    assert huffman_decode(stream).tolist() == symbols.tolist()
    # the payload is exactly the sum of the code lengths of the symbols
    assert stream.bits == int(code_lengths(stream.counts)[symbols].sum()) if symbols.size else stream.bits == 0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(0, 500))
def test_one_symbol_costs_nothing(alphabet, n):
    symbols = np.full(n, alphabet - 1)
    stream = huffman_encode(symbols, alphabet)
    assert stream.bits == 0 and stream.data.size == 0
    assert huffman_decode(stream).tolist() == symbols.tolist()


def test_adversarial_geometric_counts_round_trip():
    # Fibonacci-like counts give the deepest possible tree (lengths 1, 2, ..., n-1, n-1)
    counts = [1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]
    symbols = np.repeat(np.arange(len(counts)), counts)[::-1].copy()
    stream = huffman_encode(symbols, len(counts))
    assert sorted(code_lengths(counts).tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11]
    assert huffman_decode(stream).tolist() == symbols.tolist()


def _brute_force_optimum(counts):
    """The smallest total length sum(c_i * l_i) over all prefix codes (Kraft: sum 2**-l_i <= 1), by enumeration."""
    n = len(counts)
    best = None
    for lengths in itertools.product(range(1, n), repeat=n):
        if sum(2.0 ** -l for l in lengths) <= 1.0:
            total = sum(c * l for c, l in zip(counts, lengths))
            best = total if best is None else min(best, total)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=6))
def test_code_lengths_are_optimal_against_brute_force(counts):
    lengths = code_lengths(counts)
    assert sum(2.0 ** -int(l) for l in lengths) <= 1.0  # a prefix code exists
    assert int(np.dot(counts, lengths)) == _brute_force_optimum(counts)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=64).filter(lambda c: sum(x > 0 for x in c) >= 2))
def test_expected_length_within_entropy_bounds(counts):
    counts = np.asarray(counts, dtype=np.float64)
    p = counts / counts.sum()
    entropy = -sum(x * np.log2(x) for x in p if x > 0)
    expected = float(np.dot(p, code_lengths(counts.astype(np.int64))))
    assert entropy - 1e-9 <= expected < entropy + 1.0


def test_known_lengths_and_bits():
    assert code_lengths([5, 3, 1, 1]).tolist() == [1, 2, 3, 3]
    stream = huffman_encode([0, 1, 2, 3, 0, 0], 4)
    assert stream.bits == 11 and stream.data.size == 2  # 3 x 1 + 2 + 3 + 3


def test_bad_input_is_refused():
    with pytest.raises(UserInputError, match="symbols must be ints in"):
        huffman_encode([0, 4], 4)
    with pytest.raises(UserInputError, match="alphabet"):
        huffman_encode([0], 0)
    with pytest.raises(UserInputError, match="counts"):
        HuffmanStream(np.array([-1, 2]), np.zeros(0, np.uint8), 0)
    stream = huffman_encode(np.arange(8).repeat(50), 8)
    short = HuffmanStream(stream.counts, stream.data[:5], 40)
    with pytest.raises(UserInputError, match="huffman_decode"):
        huffman_decode(short)

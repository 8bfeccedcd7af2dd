"""Relative indices with filler zeros: exact round trips on random and adversarial positions, against a plain loop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.coding import from_relative, to_relative
from dnnergy.errors import UserInputError


def _reference(positions, width):
    """A direct transcription of Han et al.'s scheme: walk the vector, emit a filler every 2**width - 1 zeros + 1."""
    runs, filler, last = [], [], -1
    limit = (1 << width) - 1
    for p in positions:
        gap = p - last - 1
        while gap > limit:
            runs.append(limit)
            filler.append(True)
            gap -= limit + 1
        runs.append(gap)
        filler.append(False)
        last = p
    return runs, filler


positions_strategy = st.sets(st.integers(0, 3000), max_size=200).map(sorted)


@settings(max_examples=200, deadline=None)
@given(positions_strategy, st.integers(1, 9))
def test_round_trip_and_reference(positions, width):
    runs, filler = to_relative(np.asarray(positions, dtype=np.int64), width)
    assert (runs >= 0).all() and (runs < (1 << width)).all()
    assert (runs.tolist(), filler.tolist()) == _reference(positions, width)
    assert from_relative(runs, filler).tolist() == positions


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500), st.integers(1, 8))
def test_no_zeros_and_all_zeros(n, width):
    dense = np.arange(n)
    runs, filler = to_relative(dense, width)
    assert runs.tolist() == [0] * n and not filler.any()
    runs, filler = to_relative(np.zeros(0, np.int64), width)
    assert runs.size == 0 and from_relative(runs, filler).size == 0


def test_gap_longer_than_the_width_needs_fillers():
    # width 3: at most 7 zeros per entry; 20 zeros then a non-zero = 2 fillers (8 positions each) + run 4
    runs, filler = to_relative([20], 3)
    assert runs.tolist() == [7, 7, 4] and filler.tolist() == [True, True, False]
    assert to_relative([1, 4, 15], 3)[0].tolist() == [1, 2, 7, 2]
    # exactly 2**width zeros: one filler then run 0
    assert to_relative([8], 3)[0].tolist() == [7, 0]


def test_bad_input_is_refused():
    with pytest.raises(UserInputError, match="strictly increasing"):
        to_relative([3, 3], 4)
    with pytest.raises(UserInputError, match="width"):
        to_relative([1], 0)
    with pytest.raises(UserInputError, match="one entry each"):
        from_relative([1, 2], [False])

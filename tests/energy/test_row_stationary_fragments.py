"""Partial tiles: a loop that does not index a datum reloads it once per iteration, partial or not.

Hand computations on tiny layers (independent of the code's formulas): the ifmap is re-fetched
``ceil(M / m_b)`` times, the filter passes are counted whole, and the analytic default keeps all
filters in one buffer tile when they fit even if they are not a whole number of passes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.energy.row_stationary import (
    EYERISS_ARRAY,
    ConvShape,
    RSMapping,
    _pieces,
    buffer_capacity_words,
    buffer_words,
    default_mapping,
    level_energies,
    rs_counts,
)
from dnnergy.hardware import LevelKind, PEArray, load_hardware
from dnnergy.workload import Datum

W, I = Datum.WEIGHT, Datum.IFMAP
DRAM, BUF, ARR = LevelKind.DRAM, LevelKind.BUFFER, LevelKind.ARRAY
SMALL = PEArray(rows=3, cols=2, filter_words=12, ifmap_words=6, psum_words=2)


def test_partial_filter_tile_refetches_the_whole_ifmap():
    # 1 image, C = 2 -> M = 5 filters, 3x3 on a 4x4 input (E = F = 2, no padding); a buffer tile of
    # m_b = 2 filters (p = 2, one PE set of 3 x 2), c_b = 1 channel (q = 1), all rows (e_b = 2);
    # DRAM order N, M, E, C. The filters come in tiles of 2, 2 and 1: three tiles, and for each the
    # two 1 x 4 x 4 = 16-word channel tiles stream through the buffer, so 3 x 2 x 16 = 96 ifmap
    # words come from DRAM (not 5/2 x 32 = 80: the last tile holds 1 filter but still reads every
    # ifmap word). The weights (5 x 2 x 9 = 90 words) are each fetched once.
    s = ConvShape(N=1, C=2, M=5, H=4, W=4, R=3, S=3, E=2, F=2)
    m = RSMapping(e=2, p=2, q=1, r=1, t=1, n=1, m_b=2, c_b=1, e_b=2, order=("N", "M", "E", "C"))
    counts = {k: float(v) for k, v in rs_counts(s, m, SMALL).items()}
    assert counts[(I, DRAM)] == pytest.approx(3 * 2 * 16)
    assert counts[(W, DRAM)] == pytest.approx(90)
    # Passes: 3 filter passes (2, 2, 1 filters) x 2 channel passes x 1 strip; each streams one
    # channel's 4 rows x 4 words = 16 ifmap words from the buffer, and sends each of the 6 PEs its
    # row of 4 words: 24 array words per pass.
    assert counts[(I, BUF)] == pytest.approx(6 * 16)
    assert counts[(I, ARR)] == pytest.approx(6 * 24)


def test_filter_loop_inside_the_ifmap_tile_does_not_refetch():
    # Same layer and tiles with the filter loop innermost (order N, E, C, M): each channel tile stays
    # in the buffer while the three filter tiles pass, so each ifmap word is fetched once (32).
    s = ConvShape(N=1, C=2, M=5, H=4, W=4, R=3, S=3, E=2, F=2)
    m = RSMapping(e=2, p=2, q=1, r=1, t=1, n=1, m_b=2, c_b=1, e_b=2, order=("N", "E", "C", "M"))
    assert float(rs_counts(s, m, SMALL)[(I, DRAM)]) == pytest.approx(32)


def test_partial_row_tiles_refetch_weights_per_tile():
    # E = 5 output rows in tiles of e_b = 2 (2, 2, 1: three tiles) with the row loop outside the
    # filter loop (order N, E, M, C) and M = 4 in tiles of 2: the 4 x 1 x 9 = 36 weights are read
    # once per row tile, 3 x 36 = 108 (not 5/2 x 36 = 90).
    s = ConvShape(N=1, C=1, M=4, H=7, W=7, R=3, S=3, E=5, F=5)
    m = RSMapping(e=2, p=2, q=1, r=1, t=1, n=1, m_b=2, c_b=1, e_b=2, order=("N", "E", "M", "C"))
    assert float(rs_counts(s, m, SMALL)[(W, DRAM)]) == pytest.approx(108)


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 200), tile=st.integers(1, 50), piece=st.integers(1, 20))
def test_pieces_counts_by_brute_force(total, tile, piece):
    # Cut 0..total-1 into tiles of `tile`, each into pieces of at most `piece`, and count them.
    tiles = [min(tile, total - start) for start in range(0, total, tile)]
    assert int(_pieces(total, tile, piece)) == sum(-(-size // piece) for size in tiles)


def test_default_keeps_all_filters_when_they_fit():
    # AlexNet CONV3, one of its two groups (nn_dataflow's definition, padded 15 x 15 input): C = 256,
    # M = 192, 3x3, E = 13. A pass holds f = p*t = 18*4 = 72 filters and cc = 4 channels. All 192
    # filters fit one buffer tile: 192 x (4*9 + 13*13) + 4 x 15 x 15 = 39,360 + 900 = 40,260 of
    # 55,296 words, although 192 is not a whole number of passes (72 + 72 + 48). The default used
    # to take 144 = 2 passes, which fetches every ifmap word twice; now once: 256 x 15 x 15 = 57,600.
    hw = load_hardware("eyeriss")
    s = ConvShape(N=1, C=256, M=192, H=15, W=15, R=3, S=3, E=13, F=13)
    m = default_mapping(s, hw.pe_array or EYERISS_ARRAY, buffer_capacity_words(hw), level_energies(hw))
    assert (m.p * m.t, m.m_b, m.c_b) == (72, 192, 4)
    assert buffer_words(s, m) == 40_260
    counts = rs_counts(s, m, hw.pe_array)
    assert float(counts[(I, DRAM)]) == pytest.approx(256 * 15 * 15)
    assert float(counts[(W, DRAM)]) == pytest.approx(192 * 256 * 9)
    # ifmaps from the buffer: 3 filter passes x 64 channel passes x 4 ch x 15 rows x 15 words
    assert float(counts[(I, BUF)]) == pytest.approx(3 * 64 * 4 * 15 * 15)

"""Row-stationary buffer-tiling policies: ``tiles="fit"`` (default) vs ``tiles="divisors"`` (nn_dataflow's).

Checked against hand counts on tiny layers and VGG-16 conv1_2, a scalar brute force over the
divisor tiles, and nn_dataflow 2.1's per-layer ifmap DRAM counts (benchmarks/nn_dataflow_reference.json).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from math import ceil

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy.energy import RowStationarySearch, estimate
from dnnergy.energy.row_stationary import (
    DEFAULT_ORDERS,
    ConvShape,
    RowStationary,
    RSMapping,
    conv_shape,
    default_mapping,
    divisors,
    fits,
    halvings,
    level_energies,
    pass_defaults,
    rs_counts,
    rs_energy,
)
from dnnergy.errors import UserInputError
from dnnergy.hardware import LevelKind, PEArray, load_hardware
from dnnergy.workload import Datum, Layer, OpKind

W, I, O = Datum.WEIGHT, Datum.IFMAP, Datum.OFMAP
DRAM, BUF = LevelKind.DRAM, LevelKind.BUFFER
EYERISS = load_hardware("eyeriss")
ENERGIES = level_energies(EYERISS)


def _dram(counts, datum):
    return float(counts[(datum, DRAM)])


# -- hand-computed tiny layer ----------------------------------------------------------------
TINY = ConvShape(N=1, C=2, M=5, H=4, W=4, R=3, S=3, E=2, F=2)
#: One 3 x 2 PE set whose 3-word ifmap scratchpad holds one channel of a 3-wide filter row (q = 1)
#: and whose 5 psum words hold 5 filters (p = 5): a pass is 5 filters x 1 channel x both output rows.
TINY_ARRAY = PEArray(rows=3, cols=2, filter_words=15, ifmap_words=3, psum_words=5)


def test_tiny_layer_fit_and_divisor_tiles_by_hand():
    # 2 -> 5 filters, 3x3 on 4x4 (E = F = 2). Buffer words for m_b filters and one channel: weights
    # 9 m_b + ifmap rows 1 x 4 x 4 = 16 + psums 2 x 2 m_b = 13 m_b + 16; 55 words hold m_b <= 3.
    # DRAM order N, M, E, C: for each filter tile both 16-word channels stream through the buffer.
    # "fit" takes 3 (tiles of 3 + 2): 2 x 2 x 16 = 64 ifmap words from DRAM; the only divisor of 5
    # that fits is 1 (5 tiles): 5 x 2 x 16 = 160.
    fit = default_mapping(TINY, TINY_ARRAY, 55, ENERGIES)
    exact = default_mapping(TINY, TINY_ARRAY, 55, ENERGIES, "divisors")
    assert (fit.m_b, fit.p, fit.c_b, exact.m_b, exact.p, exact.c_b) == (3, 3, 1, 1, 1, 1)
    a, b = rs_counts(TINY, fit, TINY_ARRAY), rs_counts(TINY, exact, TINY_ARRAY)
    assert (_dram(a, I), _dram(b, I)) == (pytest.approx(64), pytest.approx(160))
    assert _dram(a, W) == _dram(b, W) == pytest.approx(90)  # every weight once
    assert _dram(a, O) == _dram(b, O) == pytest.approx(20)  # every output written once
    # buffer: each (filter pass, channel) streams the channel's 16 words: 2 x 2 passes vs 5 x 2
    assert (float(a[(I, BUF)]), float(b[(I, BUF)])) == (pytest.approx(64), pytest.approx(160))
    # 81 words hold all 5 filters (13 x 5 + 16): both policies take them, each ifmap word read once
    for tiles in ("fit", "divisors"):
        m = default_mapping(TINY, TINY_ARRAY, 81, ENERGIES, tiles)
        assert m.m_b == 5 and _dram(rs_counts(TINY, m, TINY_ARRAY), I) == pytest.approx(32)


def test_vgg16_conv1_2_ifmap_refetches_by_hand():
    # 64 -> 64, 3x3, 224 x 224 padded by 1, on Eyeriss (55,296-word buffer): strips of 56 output
    # rows (4 tiles) need 58 ifmap rows of 224 words per channel. A filter costs 9 + 56 x 224 =
    # 12,553 words, the ifmap rows 12,992: 3 filters fit (50,651), 4 do not. "fit": 64 filters in
    # ceil(64/3) = 22 tiles; "divisors": the largest divisor of 64 that fits, 2: 32 tiles (nn_dataflow's).
    layer = Layer("conv1_2", OpKind.CONV, "conv2d", N=1, C=64, M=64, H=224, W=224, R=3, S=3, E=224, F=224,
                  padding=(1, 1), macs=64 * 64 * 9 * 224 * 224)
    fit, exact = RowStationary().accesses(layer, EYERISS), RowStationary(tiles="divisors").accesses(layer, EYERISS)
    assert (fit.mapping["buffer_tile"]["m"], exact.mapping["buffer_tile"]["m"]) == (3, 2)
    per_fetch = 64 * 4 * 58 * 224  # channels x row tiles x rows x width
    assert fit.accesses[(I, DRAM)] == pytest.approx(22 * per_fetch)
    assert exact.accesses[(I, DRAM)] == pytest.approx(32 * per_fetch)
    assert fit.accesses[(W, DRAM)] == exact.accesses[(W, DRAM)] == pytest.approx(64 * 64 * 9 * 4)  # per row tile


# -- the API ---------------------------------------------------------------------------------
def test_estimate_takes_a_divisor_instance_and_rejects_bad_policies():
    wl = dnnergy.trace(nn.Conv2d(2, 4, 3, bias=False), (1, 2, 5, 5))
    report = estimate(wl, EYERISS, RowStationary(tiles="divisors"), zero_mode="none", coding="none", non_mac="exclude")
    assert report.dataflow == "row_stationary (divisor tiles)"
    # the whole layer fits one tile, so both policies agree (36,112: tests/energy/test_row_stationary.py)
    assert report.total == pytest.approx(36112)
    assert RowStationary().name == "row_stationary" and repr(RowStationary(tiles="divisors")) == "RowStationary(tiles='divisors')"
    with pytest.raises(UserInputError, match=r"RowStationary: tiles must be one of 'fit', 'divisors' \(got 'exact'\)"):
        RowStationary(tiles="exact")
    with pytest.raises(UserInputError, match="RowStationarySearch: tiles='divisors' applies to the analytic"):
        RowStationarySearch(tiles="divisors")


def test_divisors_by_brute_force():
    for n in (1, 2, 12, 36, 49, 97, 256):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0]


# -- property: exact trips, and the cheapest of the divisor tiles ------------------------------
ARRAY = PEArray(rows=6, cols=6, filter_words=24, ifmap_words=6, psum_words=4)


def _cheapest_divisor_tile(s: ConvShape, capacity: int) -> float:
    """Scalar enumeration of the divisor tiles of the default's first stage (its passes: the
    halvings of q, and for each the halvings of p; a pass that holds more filters than the tile
    shrinks t, then p; psums resident or per pass), priced one by one."""
    base, best = pass_defaults(s, ARRAY), float("inf")
    passes = [pass_defaults(s, ARRAY, q, p) for q in halvings(base["q"], 1) for p in halvings(pass_defaults(s, ARRAY, q)["p"], 1)]
    for b in passes:
        b, q = dict(b, v=base["v"]), b["q"]
        strip = min(s.E, b["e"] * b["v"])
        for n in (d for d in range(1, s.N + 1) if s.N % d == 0):
            for k in (d for d in range(1, ceil(s.E / strip) + 1) if ceil(s.E / strip) % d == 0):
                for m_b in (d for d in range(1, s.M + 1) if s.M % d == 0):
                    p, t = b["p"], b["t"]
                    if m_b < min(p * t, s.M):
                        p, t = (p, m_b // p) if m_b >= p else (m_b, 1)
                    for order, resident in itertools.product(DEFAULT_ORDERS, (False, True)):
                        m = RSMapping(**dict(b, p=p, t=t), n=n, m_b=m_b, c_b=min(q * b["r"], s.C),
                                      e_b=min(s.E, k * strip), order=order, resident=resident)
                        if fits(s, m, ARRAY, capacity):
                            best = min(best, float(rs_energy(rs_counts(s, m, ARRAY), ENERGIES)))
    return best


@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 4), C=st.integers(1, 8), M=st.integers(1, 36), size=st.integers(3, 14), R=st.integers(1, 3),
       U=st.integers(1, 2), capacity=st.integers(60, 3000))
def test_divisor_tile_divides_exactly_and_is_the_cheapest_divisor_tile(N, C, M, size, R, U, capacity):
    E = (size - R) // U + 1
    s = ConvShape(N=N, C=C, M=M, H=size, W=size, R=R, S=R, E=E, F=E, U=(U, U))
    m = default_mapping(s, ARRAY, capacity, ENERGIES, "divisors")
    strip = min(E, m.e * m.v)
    assert N % m.n == 0 and M % m.m_b == 0  # whole trips over images and filters
    assert m.e_b == min(E, m.e_b // strip * strip) and ceil(E / strip) % ceil(m.e_b / strip) == 0  # whole strips
    assert m.c_b == min(m.q * m.r, C)  # one pass of channels, as in the default
    base = pass_defaults(s, ARRAY)
    if fits(s, m, ARRAY, capacity) and (m.e, m.v) == (base["e"], base["v"]):  # chosen in the first stage
        event("first stage: brute force")
        cost = float(rs_energy(rs_counts(s, m, ARRAY), ENERGIES))
        assert cost == pytest.approx(_cheapest_divisor_tile(s, capacity), rel=1e-12)
    else:  # a later stage: nothing of the first fits, with divisor tiles or any tile
        fit = default_mapping(s, ARRAY, capacity, ENERGIES)
        assert (fit.e, fit.v) == (m.e, m.v)


def test_cache_is_keyed_by_policy():
    # the tiny layer above on hardware with that array and a 110-byte (55-word) buffer
    layer = Layer("c", OpKind.CONV, "conv2d", N=1, C=2, M=5, H=4, W=4, R=3, S=3, E=2, F=2, macs=360)
    levels = tuple(replace(lv, capacity_bytes=110) if lv.kind is BUF else lv for lv in EYERISS.levels)
    hw = EYERISS.replace(levels=levels, pe_array=TINY_ARRAY)
    RowStationary.cache_clear()
    first, second = RowStationary().accesses(layer, hw), RowStationary(tiles="divisors").accesses(layer, hw)
    assert (first.accesses[(I, DRAM)], second.accesses[(I, DRAM)]) == (pytest.approx(64), pytest.approx(160))


# -- nn_dataflow 2.1's per-layer counts --------------------------------------------------------
def _reference(compare):
    return compare, json.loads(compare.REFERENCE.read_text())


def _ifmap_dram(compare, layer, tiles):
    s = conv_shape(compare.dnnergy_layer(layer))
    m = default_mapping(s, EYERISS.pe_array, 55_296, ENERGIES, tiles)
    return m, _dram(rs_counts(s, m, EYERISS.pe_array), I)


def test_divisor_tiles_reproduce_nn_dataflow_ifmap_dram_on_vgg16(nn_dataflow_compare):
    # The VGG-16 layers of the drill-down (most DRAM energy difference under "fit"): nn_dataflow holds
    # 2, 4, 4 and 16 filters per buffer tile (its blocking factors divide 64, 128, 128, 256), and so do
    # dnnergy's divisor tiles; the ifmap DRAM words then equal nn_dataflow's exactly ("fit" holds 3, 7, 7
    # and 13 filters: 22/32, 19/32, 19/32 and 20/16 of nn_dataflow's fetches).
    compare, data = _reference(nn_dataflow_compare)
    layers = {layer["name"]: layer for layer in data["nets"]["vgg_net"]["layers"]}
    for name, filters in (("conv2", 2), ("conv3", 4), ("conv4", 4), ("conv6", 16)):
        layer = layers[name]
        assert compare.reference_tile(layer)[0] == filters
        m, ifmap = _ifmap_dram(compare, layer, "divisors")
        assert m.m_b == filters and ifmap == pytest.approx(layer["access"]["DRAM"]["ifmap"], rel=1e-12), name
        assert _ifmap_dram(compare, layer, "fit")[1] != pytest.approx(layer["access"]["DRAM"]["ifmap"], rel=0.1), name
    # over all conv layers, the ifmap DRAM count equals nn_dataflow's on 10 of 13 (fit: 1)
    same = {tiles: sum(_ifmap_dram(compare, layer, tiles)[1] == pytest.approx(layer["access"]["DRAM"]["ifmap"], rel=1e-9)
                       for layer in layers.values() if not layer["fc"]) for tiles in ("fit", "divisors")}
    assert same == {"fit": 1, "divisors": 10}


def test_resnet50_56x56_1x1_tiles_are_not_filter_divisors_in_nn_dataflow(nn_dataflow_compare):
    # ResNet-50's 64 -> 256 1x1 layers on 56 x 56: nn_dataflow's buffer tile holds 6 filters, which
    # does not divide 256: its factors (to = 43 x 1 x 2) divide its loop count of 86 = ceil(256 / 3)
    # passes of 3 filters (its MapStrategyEyeriss unit), so it fetches the ifmap 43 times. dnnergy's
    # divisor tile holds 16 filters (q = 1 channel per PE leaves room for 16 of 256): 256 / 16 = 16 fetches.
    compare, data = _reference(nn_dataflow_compare)
    layer = next(layer for layer in data["nets"]["resnet50"]["layers"] if layer["name"] == "conv2_0_c")
    assert layer["blocking"]["to"] == [43, 1, 2] and compare.reference_tile(layer)[0] == 6 and 256 % 6 != 0
    unique = 64 * 56 * 56
    assert layer["access"]["DRAM"]["ifmap"] == pytest.approx(43 * unique)
    m, ifmap = _ifmap_dram(compare, layer, "divisors")
    assert (m.m_b, m.q) == (16, 1) and ifmap == pytest.approx(16 * unique)

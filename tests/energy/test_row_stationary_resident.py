"""Psums that stay in the PEs across channel passes (``RSMapping.resident``).

Hand counts on tiny layers (each psum's life told PE by PE, independent of the code's formulas),
the capacity rules, a property over random shapes (allowing residency never raises the default's
energy), and the comparison with nn_dataflow 2.1 when its psum accounting is expressed as hardware.
"""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dnnergy.energy import row_stationary as rs
from dnnergy.energy.row_stationary import (
    ConvShape,
    RSMapping,
    default_mapping,
    fits,
    level_energies,
    rs_counts,
    rs_energy,
)
from dnnergy.hardware import LevelKind, PEArray, load_hardware
from dnnergy.workload import Datum

W, I, O = Datum.WEIGHT, Datum.IFMAP, Datum.OFMAP
BUF, ARR, RF = LevelKind.BUFFER, LevelKind.ARRAY, LevelKind.RF
EYERISS = load_hardware("eyeriss")

# 1 image, C = 8 -> M = 4 filters, 1x1 on a 2x2 map: 16 outputs of 8 MACs. One PE row of 2 PEs,
# each with an 8-word filter pad, a 2-word ifmap pad (q = 2 channels per pass: 4 passes) and an
# 8-word psum pad: p = 4 filters x F = 2 pixels = 8 psums fit, so they can stay for all 4 passes.
TINY = ConvShape(N=1, C=8, M=4, H=2, W=2, R=1, S=1, E=2, F=2)
ROW = PEArray(rows=1, cols=2, filter_words=8, ifmap_words=2, psum_words=8)
TINY_MAP = RSMapping(e=2, p=4, q=2, r=1, t=1, n=1, m_b=4, c_b=2, e_b=2, resident=True)


def test_resident_psums_skip_the_buffer_by_hand():
    resident = rs_counts(TINY, TINY_MAP, ROW)
    per_pass = rs_counts(TINY, dataclasses.replace(TINY_MAP, resident=False), ROW)
    # resident: each output's 8 MACs accumulate in one PE, 7 read-modify-writes = 14 RF accesses;
    # it never visits the buffer between passes and has no column to cross (1 PE row).
    assert (float(resident[(O, RF)]), float(resident[(O, BUF)]), float(resident[(O, ARR)])) == (16 * 14, 0, 0)
    # per pass: 2 MACs in the PE (1 read-modify-write, 2 RF accesses) x 4 passes = 8 per output, and
    # the psum goes to the buffer and back between passes 3 times = 6 buffer accesses per output.
    assert (float(per_pass[(O, RF)]), float(per_pass[(O, BUF)]), float(per_pass[(O, ARR)])) == (16 * 8, 16 * 6, 0)
    # weights, ifmaps and the final ofmap write do not depend on where psums wait
    assert {k: float(v) for k, v in resident.items() if k[0] is not O or k[1] is LevelKind.DRAM} == \
           {k: float(v) for k, v in per_pass.items() if k[0] is not O or k[1] is LevelKind.DRAM}
    # with prices 6 (buffer) and 1 (RF): resident saves 16 * (36 - 6) = 480
    energies = {LevelKind.BUFFER: 6.0, LevelKind.ARRAY: 2.0, LevelKind.RF: 1.0}
    assert float(rs_energy(per_pass, energies) - rs_energy(resident, energies)) == 480


def test_resident_psums_cross_the_column_once_by_hand():
    # A 3x1 filter on a 3-PE column (c = 3 PEs per output), 2 channels one per pass, 2 output pixels.
    s = ConvShape(N=1, C=2, M=1, H=3, W=2, R=3, S=1, E=1, F=2)
    column = PEArray(rows=3, cols=1, filter_words=1, ifmap_words=1, psum_words=2)
    m = RSMapping(e=1, p=1, q=1, r=1, t=1, n=1, m_b=1, c_b=1, e_b=1, resident=True)
    assert fits(s, m, column, None)
    resident = rs_counts(s, m, column)
    per_pass = rs_counts(s, dataclasses.replace(m, resident=False), column)
    # per pass: 1 MAC per PE (no RF psum access), the column sums 3 shares (2 hops), and between
    # the 2 passes the psum makes 1 buffer round trip: per output 0 RF, 4 array, 2 buffer.
    assert (float(per_pass[(O, RF)]), float(per_pass[(O, ARR)]), float(per_pass[(O, BUF)])) == (0, 2 * 4, 2 * 2)
    # resident: each PE keeps its share of both pixels (2 words) over both channels (1 read-modify-
    # write, 2 RF accesses per PE, 6 per output); the column sums once (2 hops); no buffer.
    assert (float(resident[(O, RF)]), float(resident[(O, ARR)]), float(resident[(O, BUF)])) == (2 * 6, 2 * 2, 0)


def test_residency_needs_room_and_psums_that_stay_on_chip():
    assert fits(TINY, TINY_MAP, ROW, None)
    # 8 psum words needed: a 7-word pad cannot keep them (the per-pass mapping still fits)
    small = dataclasses.replace(ROW, psum_words=7)
    assert not fits(TINY, TINY_MAP, small, None) and fits(TINY, dataclasses.replace(TINY_MAP, resident=False), small, None)
    # two filter passes per buffer tile (p = 2 of m_b = 4): a PE must keep both passes' psums, 2 x 2 x 2
    two = dataclasses.replace(TINY_MAP, p=2, m_b=4)
    assert rs.psum_words_resident(TINY, two) == 8 and fits(TINY, two, ROW, None)
    # a shared RF: the 8 filter and 2 ifmap words leave 9 of 19 for psums
    shared = PEArray(rows=1, cols=2, filter_words=19, ifmap_words=19, psum_words=19, shared_rf_words=19)
    assert rs.psum_words_free(shared, 4, 2, 1) == 9 and fits(TINY, TINY_MAP, shared, None)
    assert not fits(TINY, dataclasses.replace(TINY_MAP, q=4, p=3, m_b=3), shared, None)  # 12 + 4 leave 3 < 6
    # psums that make DRAM round trips (channels outside a filter loop that advances) cannot stay
    leaving = dataclasses.replace(TINY_MAP, p=2, m_b=2, order=("N", "C", "M", "E"))
    assert bool(rs._psums_leave(TINY, leaving)) and not fits(TINY, leaving, ROW, None)
    with pytest.raises(ValueError, match="resident must be a bool"):
        dataclasses.replace(TINY_MAP, resident=1)


def test_default_keeps_psums_when_cheaper():
    d = default_mapping(TINY, ROW, None, level_energies(EYERISS))
    assert d.resident and fits(TINY, d, ROW, None)
    counts = rs.to_access_counts(TINY, d, ROW, None, rs_counts(TINY, d, ROW), level_energies(EYERISS), search=False)
    assert counts.mapping["psums"] == "resident" and counts.mapping["pe"]["psum_words"] == 8
    assert counts.mapping["reuse"]["ofmap"][1] == 1.0  # no buffer round trips


@st.composite
def shapes(draw):
    R = draw(st.sampled_from([1, 3, 5]))
    H = draw(st.integers(R, 30))
    return ConvShape(N=draw(st.integers(1, 2)), C=draw(st.integers(1, 64)), M=draw(st.integers(1, 64)),
                     H=H, W=H, R=R, S=R, E=H - R + 1, F=H - R + 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=shapes(), preset=st.sampled_from(["eyeriss", "horowitz45"]), tiles=st.sampled_from(["fit", "divisors"]))
def test_allowing_residency_never_raises_the_default_energy(s, preset, tiles):
    hw = load_hardware(preset)
    array, capacity, energies = hw.pe_array or rs.EYERISS_ARRAY, rs.buffer_capacity_words(hw), level_energies(hw)
    with_residency = default_mapping(s, array, capacity, energies, tiles)
    with mock.patch.object(rs, "psums_resident_fit", lambda *args: False):
        without = default_mapping(s, array, capacity, energies, tiles)
    assert not without.resident
    cost = lambda m: float(rs_energy(rs_counts(s, m, array), energies))
    assert cost(with_residency) <= cost(without) * (1 + 1e-12)
    if with_residency.resident:
        assert fits(s, with_residency, array, capacity) == fits(s, dataclasses.replace(with_residency, resident=False), array, capacity)
        assert cost(with_residency) <= cost(dataclasses.replace(with_residency, resident=False))


def _large_prime_factor(n: int) -> int:
    """The largest prime factor of ``n`` (trial division)."""
    largest, d = 1, 2
    while d * d <= n:
        while n % d == 0:
            largest, n = d, n // d
        d += 1
    return max(largest, n) if n > 1 else largest


def test_nn_dataflow_psum_accounting_as_hardware(nn_dataflow_compare):
    # nn_dataflow keeps a pass's whole row of psums in the PE across its channel loops while its RF
    # holds 1 psum word per filter. As hardware: psums outside the 261-word RF, without a limit.
    compare = nn_dataflow_compare
    reference = json.loads(compare.REFERENCE.read_text())
    hw = compare.reference_hardware(psums_in_rf=False)
    assert hw.pe_array.psum_words == compare.UNBOUNDED_PSUM_WORDS and hw.pe_array.shared_rf_words is None
    for net in compare.NETS:
        result = reference["nets"][net]
        rows = compare.compare_net(result, ("row_stationary:divisors",), hw)
        (e_ref, dram_ref, _, levels_ref), (e, dram, _, levels) = rows["nn_dataflow"], rows["row_stationary (divisor tiles)"]
        # the on-chip levels agree on every net (per MAC, 200/6/2/1 prices; nn_dataflow's RF is 4.00)
        for level, tolerance in (("buffer", 0.07), ("array", 0.02), ("RF", 0.03)):
            assert levels[level] == pytest.approx(levels_ref[level], abs=tolerance), (net, level)
        if net != "resnet50":  # and so does the whole: within 1.5% and 1 point
            assert e / e_ref == pytest.approx(1, abs=0.015) and 100 * abs(dram - dram_ref) < 1, net
            continue
        # ResNet-50: 0.855 and -7.4 points, all of it DRAM words on layers whose loop counts
        # nn_dataflow must factor exactly and cannot (86 = 2 x 43 passes of 3 filters: 6 filters per
        # tile, 43 ifmap fetches, where dnnergy's divisor tile holds 16)
        assert e / e_ref == pytest.approx(0.855, abs=0.005) and 100 * (dram - dram_ref) == pytest.approx(-7.4, abs=0.2)
        flow = rs.RowStationary(tiles="divisors")
        gap = {}
        for layer in result["layers"]:
            counts = flow.accesses(compare.dnnergy_layer(layer), hw).accesses
            ours = sum(float(v) for (_, kind), v in counts.items() if kind is LevelKind.DRAM)
            loops = [layer["blocking"][key][0] * layer["blocking"][key][1] * layer["blocking"][key][2] for key in ("to", "ti")]
            prime = max(_large_prime_factor(n) for n in loops) >= 11
            gap[prime] = gap.get(prime, 0.0) + sum(layer["access"]["DRAM"].values()) - ours
        assert gap[True] / (gap[True] + gap[False]) == pytest.approx(1, abs=0.01)
        # with nn_dataflow's DRAM words, the totals would agree: 0.994 and +0.4 points
        fixed = e + (levels_ref["DRAM"] - levels["DRAM"])
        assert fixed / e_ref == pytest.approx(0.994, abs=0.005)
        assert 100 * (levels_ref["DRAM"] / fixed - dram_ref) == pytest.approx(0.4, abs=0.2)

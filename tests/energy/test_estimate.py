import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.energy import AccessCounts, estimate, list_dataflows
from dnnergy.errors import HardwareConfigError, UserInputError
from dnnergy.hardware import Hardware, LevelKind, MacCost, MemoryLevel, list_presets, load_hardware
from dnnergy.workload import Datum, Layer, OpKind, TensorStats, Workload, formulas

EYERISS = load_hardware("eyeriss")  # MAC 0.935 + 0.065 at 16 bits, RF 1, array 2, buffer 6, DRAM 200


class Unit:
    """Test dataflow: W weights, I ifmaps and O ofmaps once from DRAM; per MAC one weight, one
    ifmap read and a psum read + write at the RF."""

    name = "unit"

    def accesses(self, layer, hardware):
        m = layer.macs
        return AccessCounts(
            m,
            {
                (Datum.WEIGHT, LevelKind.DRAM): layer.weights,
                (Datum.IFMAP, LevelKind.DRAM): layer.ifmap,
                (Datum.OFMAP, LevelKind.DRAM): layer.ofmap,
                (Datum.WEIGHT, LevelKind.RF): m,
                (Datum.IFMAP, LevelKind.RF): m,
                (Datum.OFMAP, LevelKind.RF): 2 * m,
            },
            {"tile": 1},
        )


def fc(**changes):
    return Layer("fc", OpKind.FC, "aten.mm", C=4, M=3, macs=12, weights=12, ifmap=4, ofmap=3).replace(**changes)


def run(*layers, **kwargs):
    kwargs.setdefault("coding", "none")
    return estimate(Workload(tuple(layers), "toy"), EYERISS, Unit(), **kwargs)


def test_dense_by_hand():
    report = run(fc())
    # MAC 12 x 1; DRAM (12 + 4 + 3) x 200; RF 12 + 12 + 24
    assert report.total == pytest.approx(12 + 19 * 200 + 48)
    assert report.by_level() == pytest.approx({"MAC": 12, "DRAM": 3800, "RF": 48})
    assert report.unit == "MAC-normalized" and report.mappings == {"fc": {"tile": 1}}


def test_bits_override_and_per_layer_bits():
    # 8-bit weights and activations: MAC 0.935/4 + 0.065/2 = 0.26625; memory halves (3848 / 2)
    expected = 12 * 0.26625 + 3848 / 2
    assert run(fc(), bits=(8, 8)).total == pytest.approx(expected)
    assert run(fc(), bits=8).total == pytest.approx(expected)
    assert run(fc(w_bits=8, i_bits=8, o_bits=8)).total == pytest.approx(expected)
    # only weights at 4 bits: MAC 0.935/4 + 0.065; weight traffic (12 x 200 + 12) / 4
    mixed = run(fc(w_bits=4))
    assert mixed.by_datum()["weight"] == pytest.approx((2400 + 12) / 4)
    assert mixed.by_datum()["compute"] == pytest.approx(12 * (0.935 / 4 + 0.065))


def test_zero_gating_and_skipping_by_hand():
    layer = fc(w_density=0.5, i_density=0.5)
    # gate: MAC 12 x .25, RF weights 12 x .5, ifmaps 12, psums 24 x .25; DRAM 3800
    assert run(layer, zero_mode="gate").total == pytest.approx(3 + 6 + 12 + 6 + 3800)
    # skip: ifmaps 12 x .5, weights 12 x .25
    assert run(layer, zero_mode="skip").total == pytest.approx(3 + 3 + 6 + 6 + 3800)
    assert run(layer, zero_mode="none").total == pytest.approx(run(fc()).total)


def test_dram_coding_from_density():
    layer = fc(w_density=0.5, i_density=0.5)
    level = run(layer, zero_mode="none", coding="zero_flag").by_datum_and_level()
    # zero flag, 16-bit words: (1 + 0.5 x 16) / 16 = 9/16 of the raw traffic
    assert level[("weight", "DRAM")] == pytest.approx(2400 * 9 / 16)
    level = run(layer, zero_mode="none", coding="rlc").by_datum_and_level()
    # RLC at d = 0.5: 0.5 / (1 - 0.5**32) pairs per value, 64/3 bits per pair, over 16 raw bits
    assert level[("ifmap", "DRAM")] == pytest.approx(800 * 0.5 / (1 - 0.5**32) * 64 / 3 / 16)
    assert level[("ofmap", "DRAM")] == pytest.approx(600)  # dense output: sent raw
    # dense data would code larger (64/3 > 16 bits per value): sent raw, never more
    assert run(fc(), coding="rlc").total == pytest.approx(run(fc()).total)


def test_dram_coding_exact_from_stats():
    x = np.zeros(96, dtype=np.int64)
    x[10] = 7
    stats = TensorStats.of(x)  # runs: 10 before the 7 (1 pair), 85 trailing (ceil(85/32) = 3 pairs)
    layer = fc(C=96, weights=288, macs=288, ifmap=96, i_density=1 / 96, i_stats=stats)
    level = run(layer, coding="rlc").by_datum_and_level()
    # 4 pairs -> 2 words = 128 bits instead of 96 x 16 = 1536: 1/12 of 96 x 200
    assert level[("ifmap", "DRAM")] == pytest.approx(96 * 200 / 12)
    # stale stats (density changed after pruning) fall back to the i.i.d. expected value
    stale = run(layer.replace(i_density=0.5), coding="rlc").by_datum_and_level()
    assert stale[("ifmap", "DRAM")] == pytest.approx(96 * 200 * 0.5 / (1 - 0.5**32) * 64 / 3 / 16)


def test_non_mac_layers_priced_or_excluded():
    pool = Layer("pool", OpKind.POOL, "aten.max_pool2d", C=1, H=4, W=4, M=1, R=2, S=2, E=2, F=2, ops=16, ifmap=16, ofmap=4)
    priced = run(fc(), pool)
    # 16 ops x add energy 0.065; read 16 + write 4 at the global buffer (6 each)
    assert priced.by_layer()["pool"] == pytest.approx(16 * 0.065 + 20 * 6)
    assert priced.by_level()["ALU"] == pytest.approx(16 * 0.065)
    excluded = run(fc(), pool, non_mac="exclude")
    assert "pool" not in excluded.by_layer() and excluded.excluded == ("pool",)


def test_missing_level_and_array_fallback():
    dram_only = Hardware("d", "pJ", 16, (MemoryLevel("DRAM", "dram", 100, 16),), MacCost("m", 16, 1, 0))
    with pytest.raises(HardwareConfigError, match="hardware 'd' has no 'rf' level, which dataflow 'unit' uses"):
        estimate(Workload((fc(),)), dram_only, Unit())

    class ViaArray(Unit):
        def accesses(self, layer, hardware):
            return AccessCounts(0, {(Datum.IFMAP, LevelKind.ARRAY): 10})

    horowitz = load_hardware("horowitz45")  # no array level: an inter-PE hop is priced as an RF access
    report = estimate(Workload((fc(),)), horowitz, ViaArray(), non_mac="exclude")
    assert report.by_level() == pytest.approx({"MAC": 0.0, "RF": 10 * 1.0})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(zero_mode="drop"), "zero_mode must be one of 'gate', 'skip', 'none'"),
        (dict(coding="huffman"), r"unknown DRAM code 'huffman' \(known: .*none, rlc, zero_flag\)"),
        (dict(non_mac="maybe"), "non_mac must be one of"),
        (dict(bits=(8, 0)), "bits must be a positive int or a \\(weight, activation\\) pair"),
        (dict(bits=(8, 8, 8)), "bits must be"),
        (dict(dataflow="rowstationary"), "unknown dataflow 'rowstationary'"),
        (dict(hardware="eyeris"), "did you mean eyeriss"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = {"hardware": EYERISS, "dataflow": Unit(), **kwargs}
    with pytest.raises(UserInputError, match=match):
        estimate(Workload((fc(),)), **args)
    with pytest.raises(UserInputError, match="workload must be a Workload"):
        estimate([fc()], EYERISS)


# -- properties over every registered dataflow and preset --------------------------------
def small_workload(dw, di, do, wb, ib) -> Workload:
    conv = Layer("conv", op="aten.convolution", **formulas.conv([1, 4, 8, 8], [6, 4, 3, 3], [1, 6, 6, 6], 1, 0, 1, 1))
    lin = Layer("fc", op="aten.mm", **formulas.fc(1, 216, 10))
    pool = Layer("pool", op="aten.max_pool2d", **formulas.pool([1, 6, 6, 6], [1, 6, 3, 3], 2, 2, 0))
    common = dict(w_density=dw, i_density=di, o_density=do, w_bits=wb, i_bits=ib, o_bits=ib)
    return Workload((conv.replace(**common), pool, lin.replace(**common)), "small")


fraction = st.floats(0.0, 1.0)
CASES = [(flow, hw) for flow in list_dataflows() for hw in list_presets()]


@pytest.mark.parametrize(("flow", "hw"), CASES)
@settings(max_examples=25, deadline=None)
@given(
    st.tuples(fraction, fraction, fraction),
    st.tuples(fraction, fraction, fraction),
    st.tuples(st.integers(1, 32), st.integers(1, 32)),
    st.tuples(st.integers(1, 32), st.integers(1, 32)),
    st.sampled_from(["gate", "skip", "none"]),
    st.sampled_from(["rlc", "zero_flag", "none"]),
)
def test_energy_never_rises_when_density_or_bits_fall(flow, hw, d1, d2, b1, b2, zero_mode, coding):
    lo_d, hi_d = tuple(map(min, d1, d2)), tuple(map(max, d1, d2))
    lo_b, hi_b = tuple(map(min, b1, b2)), tuple(map(max, b1, b2))
    opts = dict(dataflow=flow, zero_mode=zero_mode, coding=coding)
    low = estimate(small_workload(*lo_d, *lo_b), hw, **opts)
    high = estimate(small_workload(*hi_d, *hi_b), hw, **opts)
    assert low.total <= high.total * (1 + 1e-9)
    for layer, energy in low.by_layer().items():
        assert energy <= high.by_layer()[layer] * (1 + 1e-9)


@pytest.mark.parametrize(("flow", "hw"), CASES)
@pytest.mark.parametrize("zero_mode", ["gate", "skip"])
@pytest.mark.parametrize("coding", ["rlc", "zero_flag"])
def test_density_one_equals_dense(flow, hw, zero_mode, coding):
    workload = small_workload(1.0, 1.0, 1.0, None, None)
    sparse_aware = estimate(workload, hw, flow, zero_mode=zero_mode, coding=coding)
    dense = estimate(workload, hw, flow, zero_mode="none", coding="none")
    assert sparse_aware.total == pytest.approx(dense.total, rel=1e-12)
    assert sparse_aware.records == dense.records

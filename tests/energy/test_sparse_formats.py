"""Storage formats (bitmask, CSC, coordinates) and per-operand zero actions in ``estimate``.

Independent references: bit counts from numpy / scipy.sparse on tiny tensors, hand
computations on a one-layer toy, totals of the bundled presets computed before formats
and zero actions existed, and a monotonicity property.
"""

import dataclasses
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import dnnergy
from dnnergy.energy import AccessCounts, Coordinates, Csc, code_ratio, estimate, get_code, get_dataflow
from dnnergy.hardware import Hardware, LevelKind, MacCost, MemoryLevel, ZeroActions, load_hardware
from dnnergy.workload import Datum, Layer, OpKind, TensorStats, Workload
from dnnergy.zoo import create_model, model_info


# -- bit counts against closed forms and a peer library -----------------------------------
TENSOR = np.array([0, 3, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, -2, 0, 0, 0, 0, 5, 0])  # 21 values, 4 non-zeros


def test_bitmask_is_one_bit_per_element_plus_the_non_zeros():
    stats = TensorStats.of(torch.tensor(TENSOR))
    assert get_code("bitmask").coded_bits(21, 8, 4 / 21, stats) == 21 + 4 * 8
    assert get_code("bitmask").coded_bits(1000, 16, 0.1) == pytest.approx(1000 + 100 * 16)


@pytest.mark.parametrize("column, coord_bits, pointer_bits", [(4, 2, 3), (8, 3, 5), (16, 4, 7), (21, 5, 2)])
def test_csc_size_matches_scipy_csc(column, coord_bits, pointer_bits):
    # Independent: cut the tensor into columns of `column` values (C order), let scipy build CSC,
    # count its data, row indices and column pointers.
    padded = np.concatenate([TENSOR, np.zeros(-len(TENSOR) % column, TENSOR.dtype)])
    matrix = scipy.sparse.csc_matrix(padded.reshape(-1, column).T)
    assert matrix.indices.max() < 2**coord_bits
    expected = matrix.nnz * (8 + coord_bits) + len(matrix.indptr) * pointer_bits
    code = Csc(coord_bits=coord_bits, pointer_bits=pointer_bits, column=column)
    assert code.coded_bits(21, 8, 4 / 21, TensorStats.of(torch.tensor(TENSOR))) == expected
    assert code.coded_bits(21, 8, 4 / 21) == pytest.approx(expected)  # the i.i.d. expectation is exact in nnz


def test_csc_and_coordinates_by_hand():
    # 32 values at density 1/4: 8 x (8 + 4) + (2 columns + 1) x 7 = 117 bits
    assert Csc().coded_bits(32, 8, 0.25) == 117
    assert Coordinates(coord_bits=5).coded_bits(32, 8, 0.25) == 8 * 13
    assert Csc().coded_bits(0, 8, 0.5) == 0.0
    # on-chip formats are capped at raw, like DRAM codes: dense data is kept raw
    assert code_ratio(Csc(), 32, 8, 1.0) == 1.0 and code_ratio(Csc(), 32, 8, 0.9) == 1.0
    assert code_ratio(Csc(), 32, 8, 0.25) == 117 / 256


# -- zero actions and formats in estimate, by hand ------------------------------------------
class Toy:
    """Weights: DRAM 12, buffer 12, one RF read per MAC; ifmaps: DRAM 4, buffer 4, RF 12; psums: DRAM 3, RF 24."""

    name = "toy"

    def accesses(self, layer, hardware):
        m = layer.macs
        return AccessCounts(m, {
            (Datum.WEIGHT, LevelKind.DRAM): 12, (Datum.WEIGHT, LevelKind.BUFFER): 12, (Datum.WEIGHT, LevelKind.RF): m,
            (Datum.IFMAP, LevelKind.DRAM): 4, (Datum.IFMAP, LevelKind.BUFFER): 4, (Datum.IFMAP, LevelKind.RF): m,
            (Datum.OFMAP, LevelKind.DRAM): 3, (Datum.OFMAP, LevelKind.RF): 2 * m,
        })


LAYER = Layer("fc", OpKind.FC, "aten.mm", C=4, M=3, macs=12, weights=12, ifmap=4, ofmap=3, w_density=0.25, i_density=0.5)


def toy_hw(weight="gate", ifmap="gate", dram=None, buffer=None, rf=None):
    """16-bit words; DRAM 200, buffer 6, RF 1 per word; MAC 0.935 + 0.065 = 1."""
    return Hardware("toy", "u", 16, (
        MemoryLevel("DRAM", "dram", 200, 16, storage=dram or {}),
        MemoryLevel("GB", "buffer", 6, 16, storage=buffer or {}),
        MemoryLevel("RF", "rf", 1, 16, per_pe=True, storage=rf or {}),
    ), MacCost("int16", 16, 0.935, 0.065), zero_actions=ZeroActions(weight, ifmap))


def levels(hw, **kwargs):
    kwargs.setdefault("coding", "none")
    return estimate(Workload((LAYER,), "toy"), hw, Toy(), **kwargs).by_datum_and_level()


def test_skip_weights_gate_ifmaps_by_hand():
    e = levels(toy_hw(weight="skip", ifmap="gate"))
    assert e[("compute", "MAC")] == pytest.approx(12 * 0.25 * 0.5)  # MACs with both operands non-zero
    assert e[("ifmap", "RF")] == pytest.approx(12)  # gated ifmaps are still read (to see the zero)
    assert e[("weight", "RF")] == pytest.approx(12 * 0.5 * 0.25)  # zero ifmap gates it, zero weights skipped
    assert e[("ofmap", "RF")] == pytest.approx(24 * 0.25 * 0.5)
    assert e[("weight", "GB")] == pytest.approx(72) and e[("weight", "DRAM")] == pytest.approx(2400)  # uncompressed


def test_nothing_on_weights_skip_ifmaps_by_hand():
    e = levels(toy_hw(weight="none", ifmap="skip"))
    assert e[("compute", "MAC")] == pytest.approx(12 * 0.5)  # zero weights are multiplied
    assert e[("ifmap", "RF")] == pytest.approx(12 * 0.5)
    assert e[("weight", "RF")] == pytest.approx(12 * 0.5)  # only the skipped ifmaps save weight reads
    assert e[("ofmap", "RF")] == pytest.approx(24 * 0.5)


def test_gate_skip_none_on_both_equal_the_zero_modes():
    for action in ("gate", "skip", "none"):
        assert levels(toy_hw(action, action)) == pytest.approx(levels(toy_hw(), zero_mode=action))
    # an explicit zero_mode overrides the hardware's actions
    assert levels(toy_hw("skip", "skip"), zero_mode="none")[("compute", "MAC")] == pytest.approx(12)


def test_formats_by_hand():
    hw = toy_hw("skip", "skip", buffer={"weight": Csc(coord_bits=2, pointer_bits=4, column=4)}, rf={"weight": get_code("bitmask")})
    e = levels(hw)
    # buffer: 3 non-zeros x (16 + 2) + (3 columns + 1) x 4 = 70 of 192 bits
    assert e[("weight", "GB")] == pytest.approx(12 * 6 * 70 / 192)
    # RF: the bitmask (12 + 3 x 16 = 60 of 192 bits) replaces the weights' own skipping; zero ifmaps still save reads
    assert e[("weight", "RF")] == pytest.approx(12 * 0.5 * 60 / 192)
    assert e[("ifmap", "RF")] == pytest.approx(12 * 0.5) and e[("ifmap", "GB")] == pytest.approx(24)
    assert e[("weight", "DRAM")] == pytest.approx(2400)  # coding="none"


def test_dram_coding_argument_overrides_the_declared_format():
    hw = toy_hw(dram={"weight": get_code("bitmask")})
    assert levels(hw, coding=None)[("weight", "DRAM")] == pytest.approx(2400 * 60 / 192)
    assert levels(hw, coding="none")[("weight", "DRAM")] == pytest.approx(2400)
    rlc = levels(hw, coding="rlc")
    assert levels(hw, coding=None)[("ifmap", "DRAM")] == pytest.approx(rlc[("ifmap", "DRAM")])  # undeclared: rlc


def test_non_mac_layers_read_the_declared_buffer_format():
    pool = Layer("pool", OpKind.POOL, "aten.max_pool2d", ops=12, ifmap=16, ofmap=4, i_density=0.25)
    hw = toy_hw(buffer={"ifmap": get_code("bitmask")})
    e = estimate(Workload((pool,), "p"), hw, Toy()).by_datum_and_level()
    assert e[("ifmap", "GB")] == pytest.approx(16 * 6 * (16 + 4 * 16) / 256)
    assert e[("ofmap", "GB")] == pytest.approx(4 * 6)


# -- today's presets keep their numbers -----------------------------------------------------
# LeNet-5 and AlexNet (batch 1) totals under weights_once, computed with dnnergy at commit
# c0d3c8b, before storage formats and zero actions existed. Key: (network, hardware,
# zero_mode, coding, sparse), sparse = every layer at w_density 0.3, i_density 0.5, o_density 0.6.
BEFORE = {
    ("lenet5", "eyeriss", "gate", "rlc", False): 91153077.3,
    ("lenet5", "eyeriss", "gate", "rlc", True): 37544407.66909191,
    ("lenet5", "eyeriss", "gate", "zero_flag", True): 34315277.3,
    ("lenet5", "eyeriss", "gate", "none", True): 89204027.3,
    ("lenet5", "eyeriss", "none", "rlc", True): 39493457.66909191,
    ("lenet5", "horowitz45", "gate", "rlc", False): 288380738.0,
    ("lenet5", "horowitz45", "gate", "rlc", True): 100328173.03345735,
    ("lenet5", "horowitz45", "gate", "zero_flag", True): 95161108.0,
    ("lenet5", "horowitz45", "none", "rlc", True): 109293803.03345735,
    # AlexNet re-pinned when nn.LocalResponseNorm became one NORM record instead of six decomposed
    # element-wise ops: every AlexNet total dropped by the same LRN difference, nothing else moved.
    ("alexnet", "eyeriss", "gate", "rlc", False): 13303962930.72,
    ("alexnet", "eyeriss", "gate", "rlc", True): 5373712273.721975,
    ("alexnet", "horowitz45", "gate", "rlc", False): 42672629162.8,
    ("alexnet", "eyeriss", "none", "zero_flag", True): 5532244290.719999,
    ("alexnet", "horowitz45", "gate", "rlc", True): 14483212414.72553,
    ("alexnet", "horowitz45", "none", "rlc", True): 17315643065.285534,
}


def trace(name):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dnnergy.trace(create_model(name), model_info(name).input_shape)


@pytest.fixture(scope="module")
def lenet5():
    return trace("lenet5")


def sparse(workload):
    return workload.with_all(w_density=0.3, i_density=0.5, o_density=0.6)


def check_before(workloads):
    for (net, hw, mode, coding, is_sparse), total in BEFORE.items():
        if net in workloads:
            workload = sparse(workloads[net]) if is_sparse else workloads[net]
            assert estimate(workload, hw, "weights_once", zero_mode=mode, coding=coding).total == pytest.approx(total, rel=1e-12)
            if (mode, coding) == ("gate", "rlc"):  # the defaults
                assert estimate(workload, hw, "weights_once").total == pytest.approx(total, rel=1e-12)


def test_presets_keep_their_lenet5_totals(lenet5):
    check_before({"lenet5": lenet5})


@pytest.mark.slow
def test_presets_keep_their_alexnet_totals():
    check_before({"alexnet": trace("alexnet")})


def pricing_before(workload, hw, flow, mode, coding):
    """Total energy (MAC layers only) by the rules before this change, from the dataflow's own counts:
    RF factors per zero mode, DRAM traffic x code ratio, buffer and array uncompressed."""
    hw, flow, code = load_hardware(hw), get_dataflow(flow), get_code(coding)
    levels = {level.kind: level for level in hw.levels}
    levels.setdefault(LevelKind.ARRAY, levels[LevelKind.RF])
    total = 0.0
    for layer in workload.mac_layers():
        d_w, d_i, d_mac, b = layer.w_density, layer.i_density, layer.mac_density, hw.word_bits
        rf = {
            "gate": {Datum.IFMAP: 1, Datum.WEIGHT: d_i * d_mac, Datum.OFMAP: d_w * d_i * d_mac},
            "skip": {Datum.IFMAP: d_i, Datum.WEIGHT: d_w * d_i * d_mac, Datum.OFMAP: d_w * d_i * d_mac},
            "none": {Datum.IFMAP: 1, Datum.WEIGHT: d_mac, Datum.OFMAP: d_mac},
        }[mode]
        tensors = {Datum.WEIGHT: (layer.weights, d_w), Datum.IFMAP: (layer.ifmap, d_i), Datum.OFMAP: (layer.ofmap, layer.o_density)}
        counts = flow.accesses(layer, hw)
        total += counts.macs * (1 if mode == "none" else d_w * d_i) * d_mac * hw.mac.energy(b, b)
        for (datum, kind), count in counts.accesses.items():
            factor = rf[datum] if kind is LevelKind.RF else code_ratio(code, tensors[datum][0], b, tensors[datum][1]) if kind is LevelKind.DRAM else 1
            total += count * factor * levels[kind].access_energy(b)
    return total


@settings(max_examples=10, deadline=None)
@given(
    densities=st.tuples(st.floats(0.01, 1.0), st.floats(0.01, 1.0), st.floats(0.01, 1.0), st.floats(0.5, 1.0)),
    hw=st.sampled_from(["eyeriss", "horowitz45"]),
    mode=st.sampled_from(["gate", "skip", "none"]),
    coding=st.sampled_from(["rlc", "zero_flag", "none"]),
)
def test_presets_price_row_stationary_counts_as_before(lenet5, densities, hw, mode, coding):
    d_w, d_i, d_o, d_mac = densities
    workload = lenet5.with_all(w_density=d_w, i_density=d_i, o_density=d_o, mac_density=d_mac)
    got = estimate(workload, hw, "row_stationary", zero_mode=mode, coding=coding, non_mac="exclude").total
    assert got == pytest.approx(pricing_before(workload, hw, "row_stationary", mode, coding), rel=1e-9)
    if (mode, coding) == ("gate", "rlc"):
        assert estimate(workload, hw, "row_stationary", non_mac="exclude").total == pytest.approx(got, rel=1e-12)


# -- the sparse preset --------------------------------------------------------------------
def weight_energy(report):
    return {level: e for (datum, level), e in report.by_datum_and_level().items() if datum == "weight"}


def test_pruning_cuts_weight_energy_on_every_level_of_the_sparse_preset_only(lenet5):
    pruned = lenet5.with_all(w_density=0.1)
    v2_dense, v2_pruned = weight_energy(estimate(lenet5, "eyeriss_v2")), weight_energy(estimate(pruned, "eyeriss_v2"))
    assert set(v2_dense) == {"DRAM", "global_buffer", "array", "RF"}
    for level, energy in v2_dense.items():
        assert v2_pruned[level] < 0.3 * energy, level  # CSC at 10% density: 0.1 x 12/8 bits + pointers
    # eyeriss: zeros cross the buffer, the array and (gated only on ifmaps) the RF uncompressed
    ey_dense, ey_pruned = weight_energy(estimate(lenet5, "eyeriss")), weight_energy(estimate(pruned, "eyeriss"))
    assert ey_pruned["DRAM"] < ey_dense["DRAM"]
    for level in ("global_buffer", "array", "RF"):
        assert ey_pruned[level] == pytest.approx(ey_dense[level])


@settings(max_examples=25, deadline=None)
@given(
    high=st.floats(0.0, 1.0),
    fraction=st.floats(0.0, 1.0),
    i_density=st.floats(0.05, 1.0),
    dataflow=st.sampled_from(["row_stationary", "weights_once"]),
)
def test_energy_never_rises_when_weight_density_falls(lenet5, high, fraction, i_density, dataflow):
    low = high * fraction
    base = lenet5.with_all(i_density=i_density)
    for hw in ("eyeriss_v2", "eyeriss"):
        e_low = estimate(base.with_all(w_density=low), hw, dataflow).total
        e_high = estimate(base.with_all(w_density=high), hw, dataflow).total
        assert e_low <= e_high * (1 + 1e-12)


def test_a_format_change_in_python_changes_only_that_level(lenet5):
    hw = load_hardware("eyeriss_v2")
    rf = hw.level("rf")
    wider = dataclasses.replace(rf, storage={**dict(rf.storage), Datum.WEIGHT: Csc(coord_bits=4, pointer_bits=16, column=16)})
    variant = hw.replace(levels=tuple(wider if level is rf else level for level in hw.levels))
    pruned = lenet5.with_all(w_density=0.1)
    a, b = weight_energy(estimate(pruned, hw)), weight_energy(estimate(pruned, variant))
    assert b["RF"] > a["RF"] and all(a[k] == b[k] for k in a if k != "RF")

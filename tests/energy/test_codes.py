"""DRAM codes as registered objects: the built-ins against the reference functions and real
encodings, a user-registered code priced by ``estimate``, and the registry's errors."""

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.coding import encode_rlc, encode_zero_flag
from dnnergy.energy import (
    AccessCounts,
    DramCode,
    RawCode,
    RlcCode,
    ZeroFlagCode,
    code_ratio,
    codes,
    estimate,
    get_code,
    list_codes,
    register_code,
)
from dnnergy.energy.coding import EYERISS_RLC, RunLengthCode, rlc_bits_expected, zero_flag_bits_expected
from dnnergy.errors import UserInputError
from dnnergy.hardware import LevelKind, load_hardware
from dnnergy.workload import Datum, Layer, OpKind, TensorStats, Workload

EYERISS = load_hardware("eyeriss")  # DRAM 200 per 16-bit word


class DramOnce:
    """Test dataflow: every weight, ifmap and ofmap crosses DRAM once."""

    name = "dram_once"

    def accesses(self, layer, hardware):
        return AccessCounts(layer.macs, {(Datum.WEIGHT, LevelKind.DRAM): layer.weights,
                                         (Datum.IFMAP, LevelKind.DRAM): layer.ifmap,
                                         (Datum.OFMAP, LevelKind.DRAM): layer.ofmap})


@dataclass(frozen=True)
class Coordinates:
    """Test code: every non-zero value travels with an ``index_bits`` index; zeros are not sent."""

    name: str = "coo"
    index_bits: int = 4

    def coded_bits(self, numel, bits, density, stats=None):
        return (stats.nonzeros if stats is not None else numel * density) * (bits + self.index_bits)


@pytest.fixture
def scratch_codes(monkeypatch):
    """A private copy of the code registry, so test registrations never leak."""
    monkeypatch.setattr(codes, "_CODES", codes._CODES.copy())


def fc(**changes):
    return Layer("fc", OpKind.FC, "aten.mm", C=4, M=3, macs=12, weights=12, ifmap=4, ofmap=3).replace(**changes)


def dram(coding, layer):
    report = estimate(Workload((layer,), "toy"), EYERISS, DramOnce(), zero_mode="none", coding=coding)
    return report.by_datum_and_level()


def test_builtins_are_registered_and_listed():
    assert {"none", "rlc", "zero_flag"} <= set(list_codes())  # and the storage formats of dnnergy.energy.formats
    assert {"rlc", "zero_flag"} <= set(list_codes("*r*")) and "none" not in list_codes("*r*")
    assert get_code("rlc") == RlcCode(EYERISS_RLC) and get_code("zero_flag") == ZeroFlagCode() and get_code("none") == RawCode()
    assert all(isinstance(get_code(name), DramCode) for name in list_codes())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10_000), st.floats(0.0, 1.0), st.integers(1, 32))
def test_builtin_ratios_equal_the_reference_functions(numel, density, bits):
    raw = numel * bits
    rlc = rlc_bits_expected(numel, density, RunLengthCode(level_bits=bits))
    flag = zero_flag_bits_expected(numel, density, bits)
    dense = density >= 1.0
    assert code_ratio(get_code("rlc"), numel, bits, density) == (1.0 if dense else min(1.0, rlc / raw))
    assert code_ratio(get_code("zero_flag"), numel, bits, density) == (1.0 if dense else min(1.0, flag / raw))
    assert code_ratio(get_code("none"), numel, bits, density) == 1.0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-128, 127).map(lambda v: v if abs(v) < 60 else 0), min_size=1, max_size=400))
def test_builtin_ratios_from_stats_equal_real_encodings(values):
    x = np.asarray(values, dtype=np.int64)
    stats = TensorStats.of(x)
    raw = x.size * 8
    encoded_rlc = encode_rlc(x, EYERISS_RLC.with_level_bits(8)).nbits
    encoded_flag = encode_zero_flag(x, 8).nbits
    dense = stats.density >= 1.0
    # the layer's numel is ignored when matching stats are given: the stats' own count is used
    assert code_ratio(get_code("rlc"), 10**6, 8, stats.density, stats) == (1.0 if dense else min(1.0, encoded_rlc / raw))
    assert code_ratio(get_code("zero_flag"), 10**6, 8, stats.density, stats) == (1.0 if dense else min(1.0, encoded_flag / raw))


def test_stale_stats_fall_back_to_the_expected_size():
    x = np.zeros(96, dtype=np.int64)
    x[10] = 7
    stats = TensorStats.of(x)  # density 1/96, measured before pruning changed it to 0.5
    assert code_ratio(ZeroFlagCode(), 96, 16, 0.5, stats) == pytest.approx((1 + 0.5 * 16) / 16)
    assert code_ratio(ZeroFlagCode(), 96, 16, 1 / 96, stats) == pytest.approx((96 + 16) / (96 * 16))


def test_a_registered_code_is_priced_by_estimate(scratch_codes):
    register_code(Coordinates())
    assert "coo" in list_codes()
    level = dram("coo", fc(w_density=0.25, i_density=0.5))
    # weights: 12 x 0.25 non-zeros x (16 + 4) bits = 60 of 192 raw bits -> 12 x 200 x 60/192
    assert level[("weight", "DRAM")] == pytest.approx(2400 * 60 / 192)
    # ifmaps: 4 x 0.5 x 20 = 40 of 64 bits; dense ofmaps are sent raw
    assert level[("ifmap", "DRAM")] == pytest.approx(800 * 40 / 64)
    assert level[("ofmap", "DRAM")] == pytest.approx(600)
    # an unregistered code object works too, and a code larger than raw is capped at raw
    assert dram(Coordinates(index_bits=4), fc(w_density=0.25))[("weight", "DRAM")] == pytest.approx(750)
    assert dram(Coordinates(index_bits=40), fc(w_density=0.5))[("weight", "DRAM")] == pytest.approx(2400)


def test_a_registered_code_gets_matching_stats(scratch_codes):
    register_code(Coordinates(name="coo8", index_bits=8))
    x = np.zeros(96, dtype=np.int64)
    x[[3, 50, 90]] = 1
    layer = fc(C=96, weights=288, macs=288, ifmap=96, i_density=3 / 96, i_stats=TensorStats.of(x))
    # 3 measured non-zeros x (16 + 8) bits = 72 of 96 x 16 = 1536 raw bits
    assert dram("coo8", layer)[("ifmap", "DRAM")] == pytest.approx(96 * 200 * 72 / 1536)


def test_a_configured_run_length_code_replaces_the_rlc_keyword():
    code = RlcCode(RunLengthCode(run_bits=4))  # span 16, 3 x (4 + 16) + 1 = 61-bit words
    level = dram(code, fc(i_density=0.5))
    assert level[("ifmap", "DRAM")] == pytest.approx(800 * 0.5 / (1 - 0.5**16) * 61 / 3 / 16)
    assert code.name == "rlc"


def test_unknown_codes_and_bad_objects():
    with pytest.raises(UserInputError, match=r"unknown DRAM code 'rcl'; did you mean rlc\? \(known: .*none, rlc, zero_flag\)"):
        get_code("rcl")
    with pytest.raises(UserInputError, match=r"unknown DRAM code 'huffman' \(known: .*none, rlc, zero_flag\)"):
        estimate(Workload((fc(),)), EYERISS, DramOnce(), coding="huffman")
    with pytest.raises(UserInputError, match="coding must be a registered code name"):
        get_code(42)
    with pytest.raises(TypeError, match="RlcCode: fields must be a RunLengthCode"):
        RlcCode(16)


def test_register_code_refuses_duplicates_and_non_codes(scratch_codes):
    with pytest.raises(RuntimeError, match="'rlc' is already registered"):
        register_code(RlcCode())
    with pytest.raises(TypeError, match="expected an object with name and coded_bits"):
        register_code(object())
    replaced = register_code(RlcCode(RunLengthCode(run_bits=4)), override=True)
    assert get_code("rlc") is replaced

import pytest

from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import Hardware, LevelKind, MacCost, MemoryLevel, PEArray

DRAM = MemoryLevel("DRAM", "dram", 200, 16)
BUF = MemoryLevel("GB", "buffer", 6, 16, capacity_bytes=110592)
RF = MemoryLevel("RF", "rf", 1, 16, per_pe=True)
MAC = MacCost("int16", 16, 1.0, 0.0)


def test_valid_hardware_and_level_lookup():
    hw = Hardware("toy", "MAC-normalized", 16, [DRAM, BUF, RF], MAC, PEArray(12, 14, 224, 12, 24))
    assert hw.levels == (DRAM, BUF, RF)
    assert hw.level(LevelKind.BUFFER) is BUF
    assert hw.level("rf") is RF
    assert hw.level("array") is None
    assert hw.pe_array.pes == 168  # 12 x 14
    assert hw.replace(word_bits=8).word_bits == 8


def test_with_mac_format_switches_cost_and_word():
    int8 = MacCost("int8", 8, 0.2, 0.03)
    hw = Hardware("toy", "pJ", 16, [DRAM], MAC, mac_formats=(MAC, int8))
    switched = hw.with_mac_format("int8")
    assert switched.mac is int8 and switched.word_bits == 8
    with pytest.raises(HardwareConfigError, match="no MAC format 'fp64' \\(known: int16, int8\\)"):
        hw.with_mac_format("fp64")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name=""), "Hardware: name"),
        (dict(unit=""), "unit must be a non-empty string"),
        (dict(word_bits=0), "word_bits must be a positive int"),
        (dict(levels=()), "levels must list at least one"),
        (dict(levels=(DRAM, "rf")), "levels\\[1\\] must be a MemoryLevel"),
        (dict(levels=(RF, DRAM)), "levels must run outermost first"),
        (dict(levels=(DRAM, DRAM)), "level names must be unique"),
        (dict(levels=(DRAM, MemoryLevel("D2", "dram", 1, 8))), "one per kind"),
        (dict(mac=4.6), "mac must be a MacCost"),
        (dict(pe_array=(12, 14)), "pe_array must be a PEArray"),
        (dict(mac_formats=(MAC, MAC)), "mac_formats names must be unique"),
    ],
)
def test_invalid_hardware(kwargs, match):
    base = dict(name="toy", unit="pJ", word_bits=16, levels=(DRAM, BUF, RF), mac=MAC)
    with pytest.raises(HardwareConfigError, match=match):
        Hardware(**{**base, **kwargs})


@pytest.mark.parametrize("field", ["rows", "cols", "filter_words", "ifmap_words", "psum_words"])
def test_invalid_pe_array(field):
    values = dict(rows=12, cols=14, filter_words=224, ifmap_words=12, psum_words=24)
    with pytest.raises(HardwareConfigError, match=f"PEArray: {field} must be a positive int"):
        PEArray(**{**values, field: 0})

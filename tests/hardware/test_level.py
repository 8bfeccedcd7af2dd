import pytest

from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import LevelKind, MemoryLevel


def test_valid_level_scales_linearly_in_bits():
    sram = MemoryLevel("SRAM", "buffer", energy=5.0, ref_bits=32, capacity_bytes=1024)
    assert sram.kind is LevelKind.BUFFER
    assert sram.access_energy(16) == pytest.approx(2.5)  # 5 pJ * 16/32
    assert sram.access_energy(8) == pytest.approx(1.25)  # 5 pJ * 8/32
    assert sram.capacity_words(16) == 512  # 1024 B * 8 / 16
    assert MemoryLevel("DRAM", LevelKind.DRAM, 640, 32).capacity_words(32) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="", kind="dram", energy=1, ref_bits=8), "MemoryLevel: name"),
        (dict(name="x", kind="disk", energy=1, ref_bits=8), "kind must be one of dram|buffer|array|rf"),
        (dict(name="x", kind="dram", energy=-1, ref_bits=8), "energy must be >= 0"),
        (dict(name="x", kind="dram", energy="1", ref_bits=8), "energy must be a finite number"),
        (dict(name="x", kind="dram", energy=float("nan"), ref_bits=8), "energy must be a finite number"),
        (dict(name="x", kind="dram", energy=1, ref_bits=0), "ref_bits must be a positive int"),
        (dict(name="x", kind="dram", energy=1, ref_bits=8, capacity_bytes=-3), "capacity_bytes must be a positive int"),
        (dict(name="x", kind="rf", energy=1, ref_bits=8, per_pe="yes"), "per_pe must be true or false"),
    ],
)
def test_invalid_level(kwargs, match):
    with pytest.raises(HardwareConfigError, match=match):
        MemoryLevel(**kwargs)


def test_hardware_config_error_is_a_value_error():
    with pytest.raises(ValueError):
        MemoryLevel("x", "dram", -1, 8)

"""Loader robustness against the inputs a fuzz campaign found (dnnergy issue 14): each must load or raise HardwareConfigError."""

import dataclasses
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.energy import estimate, list_dataflows
from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import MacCost, hardware_from_dict, load_hardware
from dnnergy.hardware._check import MAX_ENERGY
from dnnergy.hardware.loader import _StrictLoader
from dnnergy.workload import Layer, Workload, formulas

from _good_hardware import GOOD


def _write(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "hw.yaml"
    path.write_bytes(text.encode(encoding))
    return path


# -- item 4: encodings and nesting ---------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32"])
def test_utf_encodings_with_bom_load(tmp_path, encoding):
    hw = load_hardware(_write(tmp_path, GOOD.replace("mine", "mïne"), encoding))
    assert hw.name == "mïne" and hw.level("dram").energy == 640


def test_latin1_is_refused_naming_file_and_encoding(tmp_path):
    path = _write(tmp_path, GOOD.replace("mine", "mïne"), "latin-1")
    with pytest.raises(HardwareConfigError, match=r"hw\.yaml.*UTF-8.*byte-order mark"):
        load_hardware(path)


def test_deep_nesting_is_refused(tmp_path):
    path = _write(tmp_path, "name: " + "[" * 50000 + "]" * 50000 + "\n")
    with pytest.raises(HardwareConfigError, match=r"hw\.yaml.*nested too deeply"):
        load_hardware(path)


# -- item 5: numbers too large for a float -------------------------------------------------------

HUGE = "1" + "0" * 400


@pytest.mark.parametrize("old, new, field", [
    ("energy: 640", f"energy: {HUGE}", "energy"),
    ("mult: 3.7", f"mult: {HUGE}", "mult"),
    ("add: 0.9", f"add: {HUGE}", "add"),
    ("capacity_bytes: 65536", f"capacity_bytes: {HUGE}", "capacity_bytes"),
    ("energy: 5, ref_bits: 32", f"energy: 5, ref_bits: {HUGE}", "ref_bits"),
    ("word_bits: 32", f"word_bits: {HUGE}", "word_bits"),
    ("{bits: 32", f"{{bits: {HUGE}", "ref_bits"),
    ("mac: {", "mac: {mult_exponent: 1000, ", "mult_exponent"),
])
def test_huge_numbers_refused_at_load(tmp_path, old, new, field):
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    with pytest.raises(HardwareConfigError, match=rf"hw\.yaml.*{field}"):
        load_hardware(_write(tmp_path, text))


def test_mac_energy_finite_at_the_largest_accepted_exponent():
    mac = MacCost("x", 1, mult=1.0, add=1.0, mult_exponent=8, add_exponent=8)
    assert math.isfinite(mac.energy(64, 64))
    with pytest.raises(HardwareConfigError, match="mult_exponent must be a finite number <= 8"):
        MacCost("x", 1, mult=1.0, add=1.0, mult_exponent=8.5)


# -- item 6: finite but huge energies ------------------------------------------------------------

@pytest.mark.parametrize("old, new", [("energy: 640", "energy: 1.0e+308"), ("mult: 3.7", "mult: 1.0e+308")])
def test_energy_whose_products_overflow_is_refused(tmp_path, old, new):
    with pytest.raises(HardwareConfigError, match=r"hw\.yaml.*(energy|mult).*1e\+?100"):
        load_hardware(_write(tmp_path, GOOD.replace(old, new)))


@pytest.mark.parametrize("dataflow", list_dataflows())
def test_largest_accepted_energy_gives_finite_totals(dataflow):
    base = load_hardware("eyeriss")
    hw = base.replace(levels=[dataclasses.replace(lvl, energy=MAX_ENERGY) for lvl in base.levels],
                      mac=dataclasses.replace(base.mac, mult=MAX_ENERGY, add=MAX_ENERGY))
    conv = Layer("conv", op="aten.convolution", **formulas.conv([1, 64, 56, 56], [64, 64, 3, 3], [1, 64, 56, 56], 1, 1, 1, 1))
    total = estimate(Workload((conv,), "toy"), hw, dataflow).total
    assert math.isfinite(total) and total > conv.macs * MAX_ENERGY


# -- item 7: description ------------------------------------------------------------------------

def test_mapping_description_is_refused(tmp_path):
    with pytest.raises(HardwareConfigError, match=r"hw\.yaml.*description must be a string"):
        load_hardware(_write(tmp_path, GOOD + "description: {a: 1}\n"))
    hw = load_hardware(_write(tmp_path, GOOD + "description: an accelerator\n"))
    assert hash(hw) == hash(hw) and hw.description == "an accelerator"


# -- item 8: integer MAC format names -------------------------------------------------------------

def test_integer_format_names_match(tmp_path):
    text = GOOD.replace("format: fp32, formats: {fp32:", "format: 16, formats: {8: {bits: 8, mult: 0.2, add: 0.03}, 16:")
    hw = load_hardware(_write(tmp_path, text))
    assert hw.mac.name == "16" and hw.mac.mult == 3.7
    with pytest.raises(HardwareConfigError, match=r"mac\.format: 4 is not one of mac\.formats \(8, 16\)"):
        load_hardware(_write(tmp_path, text.replace("format: 16", "format: 4")))


# -- item 11: exponent floats and duplicate keys --------------------------------------------------

@pytest.mark.parametrize("written, value", [("1e5", 1e5), ("2e2", 200.0), ("-0", None), ("1E+3", 1000.0), ("2.5e-1", 0.25), ("2.5e1", 25.0)])
def test_exponent_floats_without_dot_are_numbers(tmp_path, written, value):
    text = GOOD.replace("energy: 640", f"energy: {written}")
    if value is None:
        assert load_hardware(_write(tmp_path, text)).level("dram").energy == 0
    else:
        assert load_hardware(_write(tmp_path, text)).level("dram").energy == value


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0, max_value=1e99), st.sampled_from(["{:e}", "{:E}", "{:.0e}", "{:.3e}"]), st.booleans())
def test_any_exponent_spelling_reads_as_python_reads_it(value, spelling, drop_plus):
    written = spelling.format(value).replace("e+", "e" if drop_plus else "e+").replace("E+", "E" if drop_plus else "E+")
    data = yaml.load(f"energy: {written}", Loader=_StrictLoader)
    assert data == {"energy": float(written)}


def test_strings_stay_strings(tmp_path):
    hw = load_hardware(_write(tmp_path, GOOD.replace("name: mine", "name: 1e5x").replace("fp32", "'1e5'")))
    assert hw.name == "1e5x" and hw.mac.name == "1e5"


def test_duplicate_keys_are_refused_naming_key_and_line(tmp_path):
    text = GOOD.replace("word_bits: 32\n", "word_bits: 32\nunit: nJ\n")
    with pytest.raises(HardwareConfigError, match=r"hw\.yaml.*duplicate key 'unit' on line 4 \(first on line 2\)"):
        load_hardware(_write(tmp_path, text))
    with pytest.raises(HardwareConfigError, match=r"duplicate key 'energy'"):
        load_hardware(_write(tmp_path, GOOD.replace("energy: 5,", "energy: 5, energy: 6,")))


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=8), st.none(), st.booleans(),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.lists(st.integers(), max_size=2)),
       st.sampled_from(["energy", "ref_bits", "capacity_bytes", "word_bits", "mult", "add", "bits", "description", "format"]))
def test_any_field_value_loads_or_raises_hardware_config_error(value, field):
    data = {"name": "h", "unit": "pJ", "word_bits": 16,
            "levels": [{"name": "D", "kind": "dram", "energy": 1.0, "ref_bits": 16, "capacity_bytes": 1024}],
            "mac": {"format": "a", "formats": {"a": {"bits": 16, "mult": 1.0, "add": 1.0}}}}
    targets = {"energy": data["levels"][0], "ref_bits": data["levels"][0], "capacity_bytes": data["levels"][0],
               "word_bits": data, "description": data, "format": data["mac"],
               "mult": data["mac"]["formats"]["a"], "add": data["mac"]["formats"]["a"], "bits": data["mac"]["formats"]["a"]}
    targets[field][field] = value
    try:
        hw = hardware_from_dict(data)
    except HardwareConfigError:
        return
    hash(hw)
    assert math.isfinite(hw.mac.energy(16, 16)) and all(math.isfinite(lvl.access_energy(16)) for lvl in hw.levels)

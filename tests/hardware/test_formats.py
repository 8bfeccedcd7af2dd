"""Storage formats and zero actions in the hardware description: YAML schema, validation, presets."""

import dataclasses

import pytest

from dnnergy.energy import Csc, get_code
from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import MemoryLevel, ZeroAction, ZeroActions, hardware_from_dict, list_presets, load_hardware
from dnnergy.workload import Datum


def spec(**changes):
    """A minimal valid YAML-shaped description; ``changes`` replace top-level fields."""
    data = {
        "name": "toy",
        "unit": "pJ",
        "word_bits": 8,
        "levels": [
            {"name": "DRAM", "kind": "dram", "energy": 200, "ref_bits": 16},
            {"name": "RF", "kind": "rf", "energy": 1, "ref_bits": 16, "storage": {"weight": "csc"}},
        ],
        "mac": {"format": "int8", "formats": {"int8": {"bits": 8, "mult": 0.2, "add": 0.03}}},
    }
    return {**data, **changes}


def with_rf_storage(storage):
    levels = spec()["levels"]
    levels[1] = {**levels[1], "storage": storage}
    return spec(levels=levels)


def test_existing_presets_declare_no_formats_and_gate_both_operands():
    for name in ("eyeriss", "horowitz45"):
        hw = load_hardware(name)
        assert all(level.storage == () for level in hw.levels)
        assert hw.zero_actions == ZeroActions(ZeroAction.GATE, ZeroAction.GATE)


def test_eyeriss_v2_preset():
    assert "eyeriss_v2" in list_presets()
    hw = load_hardware("eyeriss_v2")
    assert hw.word_bits == 8 and hw.zero_actions == ZeroActions("skip", "skip")
    assert hw.pe_array.pes == 192  # 16 clusters x 3 x 4 PEs
    weight = Csc(coord_bits=4, pointer_bits=7, column=16)
    ifmap = Csc(coord_bits=4, pointer_bits=4, column=16)
    for kind in ("buffer", "array", "rf"):
        level = hw.level(kind)
        assert level.format_of("weight") == weight and level.format_of(Datum.IFMAP) == ifmap
        assert level.format_of("ofmap") is None  # psums uncompressed
    assert hw.level("dram").storage == ()  # off-chip: estimate's coding, as on eyeriss
    hash(hw)  # dataflow mappings are cached per hardware


def test_yaml_format_parameters_replace_the_registered_defaults():
    hw = hardware_from_dict(with_rf_storage({"weight": {"format": "csc", "column": 8, "pointer_bits": 3}, "ifmap": "bitmask"}))
    rf = hw.level("rf")
    assert rf.format_of("weight") == dataclasses.replace(get_code("csc"), column=8, pointer_bits=3)
    assert rf.format_of("ifmap") is get_code("bitmask")
    assert rf.storage == tuple(sorted(((Datum.WEIGHT, rf.format_of("weight")), (Datum.IFMAP, rf.format_of("ifmap"))), key=lambda p: p[0].value))


def test_zero_actions_from_yaml_default_to_gate():
    hw = hardware_from_dict(spec(zero_actions={"weight": "skip"}))
    assert hw.zero_actions == ZeroActions(weight="skip", ifmap="gate")
    assert hw.zero_actions.of(Datum.OFMAP) is ZeroAction.NONE
    assert ZeroActions.both("none") == ZeroActions("none", "none")


@pytest.mark.parametrize(
    "data, message",
    [
        (with_rf_storage({"weight": "csx"}), r"toy.yaml: levels\[1\].storage.weight: unknown DRAM code 'csx'; did you mean csc\?"),
        (with_rf_storage({"weight": {"format": "csc", "colum": 8}}), r"levels\[1\].storage.weight: unknown field 'colum'; did you mean 'column'\?"),
        (with_rf_storage({"weight": {"format": "none", "bits": 8}}), r"unknown field 'bits'; 'none' takes no parameters"),
        (with_rf_storage({"weight": {"column": 8}}), r"storage.weight: expected a format name or a mapping with 'format'"),
        (with_rf_storage({"weight": {"format": "csc", "column": 32}}), r"4-bit coordinates cannot address columns of 32"),
        (with_rf_storage({"weight": {"format": "csc", "pointer_bits": 0}}), r"pointer_bits must be an int >= 1"),
        (with_rf_storage({"weights": "csc"}), r"levels\[1\]: MemoryLevel 'RF': storage keys must be ifmap, weight, ofmap \(got 'weights'\)"),
        (with_rf_storage(["csc"]), r"levels\[1\].storage: must map weight/ifmap/ofmap to formats"),
        (spec(zero_actions={"weight": "drop"}), r"zero_actions: ZeroActions: weight must be one of gate, skip, none \(got 'drop'\)"),
        (spec(zero_actions={"psum": "skip"}), r"zero_actions: unknown field 'psum'"),
    ],
)
def test_bad_descriptions_name_file_and_field(data, message):
    with pytest.raises(HardwareConfigError, match=message):
        hardware_from_dict(data, source="toy.yaml")


def test_python_records_validate_storage():
    level = MemoryLevel("RF", "rf", energy=1, ref_bits=16, storage={"ifmap": get_code("bitmask")})
    assert level.format_of("ifmap") is get_code("bitmask") and level.format_of("weight") is None
    with pytest.raises(HardwareConfigError, match=r"storage\[weight\] must be a format with name and coded_bits"):
        MemoryLevel("RF", "rf", energy=1, ref_bits=16, storage={"weight": "csc"})
    with pytest.raises(HardwareConfigError, match="lists 'weight' twice"):
        MemoryLevel("RF", "rf", energy=1, ref_bits=16, storage=[("weight", get_code("csc")), (Datum.WEIGHT, get_code("csc"))])
    with pytest.raises(HardwareConfigError, match="zero_actions must be a ZeroActions"):
        load_hardware("eyeriss").replace(zero_actions="skip")

import pytest
import yaml

from dnnergy.errors import HardwareConfigError
from dnnergy.hardware import Hardware, LevelKind, hardware_from_dict, list_presets, load_hardware

from _good_hardware import GOOD


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads(name):
    hw = load_hardware(name)
    assert isinstance(hw, Hardware) and hw.name == name
    assert hw.level(LevelKind.DRAM) is not None


def test_list_presets_with_pattern():
    assert {"eyeriss", "horowitz45"} <= set(list_presets())
    assert list_presets("eye*") == ["eyeriss", "eyeriss_v2"]
    assert list_presets("horo*") == ["horowitz45"]


def test_eyeriss_preset_matches_the_paper():
    hw = load_hardware("eyeriss")
    assert hw.unit == "MAC-normalized" and hw.word_bits == 16
    # Chen et al. ISCA 2016: MAC 1, RF 1, array 2, global buffer 6, DRAM 200
    assert [(lvl.kind.value, lvl.energy) for lvl in hw.levels] == [("dram", 200), ("buffer", 6), ("array", 2), ("rf", 1)]
    assert hw.mac.energy(16, 16) == pytest.approx(1.0)
    assert hw.level("buffer").capacity_bytes == 108 * 1024
    assert hw.level("rf").per_pe
    pe = hw.pe_array
    assert (pe.rows, pe.cols, pe.filter_words, pe.ifmap_words, pe.psum_words) == (12, 14, 224, 12, 24)


def test_horowitz45_preset_matches_the_table():
    hw = load_hardware("horowitz45")
    assert hw.unit == "pJ" and hw.word_bits == 32
    assert hw.mac.energy(32, 32) == pytest.approx(3.7 + 0.9)  # fp32 default
    assert hw.level("dram").access_energy(32) == 640
    assert hw.level("buffer").access_energy(32) == 5
    assert hw.level("rf").access_energy(32) == 1
    table = {fmt.name: (fmt.ref_bits, fmt.mult, fmt.add) for fmt in hw.mac_formats}
    assert table["int8"] == (8, 0.2, 0.03)
    assert table["int32"] == (32, 3.1, 0.1)
    assert table["fp16"] == (16, 1.1, 0.4)
    # int16 interpolated as the geometric mean of int8 and int32: sqrt(0.2*3.1)=0.787, sqrt(0.03*0.1)=0.0548
    assert table["int16"][1] == pytest.approx((0.2 * 3.1) ** 0.5, rel=1e-3)
    assert table["int16"][2] == pytest.approx((0.03 * 0.1) ** 0.5, rel=1e-3)
    # bfloat16: power law in significand bits through fp16 (11) and fp32 (24), at 8 bits
    e_mult = __import__("math").log(3.7 / 1.1) / __import__("math").log(24 / 11)
    assert table["bfloat16"][1] == pytest.approx(1.1 * (8 / 11) ** e_mult, rel=1e-3)
    assert hw.with_mac_format("int8").mac.energy(8, 8) == pytest.approx(0.23)


def test_user_yaml_loads(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    hw = load_hardware(path)
    assert hw.level("buffer").capacity_bytes == 65536 and hw.pe_array is None
    assert load_hardware(str(path)) == hw


def _write(tmp_path, mutate):
    data = yaml.safe_load(GOOD)
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["levels"][1].update(enrgy=5), r"bad.yaml: levels\[1\]: unknown field 'enrgy'; did you mean 'energy'\?"),
        (lambda d: d.update(word_bit=32), r"bad.yaml: unknown field 'word_bit'; did you mean 'word_bits'\?"),
        (lambda d: d["levels"][1].update(energy=-5), r"bad.yaml: levels\[1\]: MemoryLevel 'SRAM': energy must be >= 0 \(got -5\)"),
        (lambda d: d["levels"][0].pop("ref_bits"), r"bad.yaml: levels\[0\]: missing field 'ref_bits'"),
        (lambda d: d.pop("unit"), r"bad.yaml: missing field 'unit'"),
        (lambda d: d["mac"]["formats"]["fp32"].pop("add"), r"bad.yaml: mac.formats.fp32: missing field 'add'"),
        (lambda d: d["mac"]["formats"]["fp32"].update(mult=-1), r"bad.yaml: mac.formats.fp32: .*mult must be >= 0"),
        (lambda d: d["mac"].update(format="fp64"), r"bad.yaml: mac.format: 'fp64' is not one of mac.formats"),
        (lambda d: d.update(levels=[]), r"bad.yaml: levels: must be a non-empty list"),
        (lambda d: d.update(pe_array={"rows": 2, "cols": 2}), r"bad.yaml: pe_array: missing field 'filter_words'"),
        (lambda d: d.update(levels=list(reversed(d["levels"]))), r"bad.yaml: .*outermost first"),
    ],
)
def test_bad_yaml_names_file_and_field(tmp_path, mutate, match):
    with pytest.raises(HardwareConfigError, match=match):
        load_hardware(_write(tmp_path, mutate))


def test_not_a_mapping_and_not_yaml(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(HardwareConfigError, match="list.yaml: expected a mapping"):
        load_hardware(path)
    path.write_text("name: [unclosed\n")
    with pytest.raises(HardwareConfigError, match="not valid YAML"):
        load_hardware(path)


def test_unknown_preset_suggests_close_name():
    with pytest.raises(HardwareConfigError, match="did you mean eyeriss"):
        load_hardware("eyeris")


def test_from_dict_names_its_source():
    with pytest.raises(HardwareConfigError, match="<dict>: missing field 'name'"):
        hardware_from_dict({})

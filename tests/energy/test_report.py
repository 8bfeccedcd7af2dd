import csv
import io
import json

import pytest

from dnnergy.energy import EnergyRecord, EnergyReport, estimate
from dnnergy.errors import UserInputError
from dnnergy.workload import Layer, OpKind, Workload

RECORDS = (
    EnergyRecord("conv", "conv", "compute", "MAC", 10, 16, 10.0),
    EnergyRecord("conv", "conv", "weight", "DRAM", 2, 16, 400.0),
    EnergyRecord("fc", "fc", "ifmap", "RF", 5, 16, 5.0),
    EnergyRecord("fc", "fc", "weight", "DRAM", 1, 16, 200.0),
)


def report(unit="pJ", mac_energy=4.6):
    return EnergyReport(RECORDS, unit, "hw", "flow", "net", mac_energy=mac_energy, mappings={"conv": {"order": ["N", "M"]}})


def test_views_sum_the_records():
    r = report()
    assert r.total == pytest.approx(615.0)  # 10 + 400 + 5 + 200
    assert r.by_layer() == {"conv": 410.0, "fc": 205.0}
    assert r.by_datum() == {"compute": 10.0, "weight": 600.0, "ifmap": 5.0}
    assert r.by_level() == {"MAC": 10.0, "DRAM": 600.0, "RF": 5.0}
    assert r.by_datum_and_level()[("weight", "DRAM")] == 600.0
    assert r.macs == 10
    assert r.mappings["conv"] == {"order": ["N", "M"]}


def test_normalized_divides_by_one_mac():
    n = report().normalized()
    assert n.unit == "MAC-normalized"
    assert n.total == pytest.approx(615.0 / 4.6)
    assert n.normalized() is n


def test_adding_reports_needs_equal_units():
    total = report() + report()
    assert total.total == pytest.approx(1230.0) and total.unit == "pJ"
    with pytest.raises(UserInputError, match="cannot add reports in 'pJ' and 'MAC-normalized'"):
        report() + report().normalized()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [(dict(unit=""), "EnergyReport: unit must be a non-empty str"), (dict(mac_energy=0), "mac_energy must be > 0")],
)
def test_invalid_report(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        report(**kwargs)


def test_to_frame():
    frame = report().to_frame()
    assert list(frame.columns) == ["layer", "kind", "datum", "level", "accesses", "bits", "energy", "unit"]
    assert len(frame) == 4 and frame["energy"].sum() == pytest.approx(615.0)
    assert frame.groupby("level")["energy"].sum().to_dict() == {"DRAM": 600.0, "MAC": 10.0, "RF": 5.0}


def test_csv_and_json_written_atomically(tmp_path):
    path = tmp_path / "r.csv"
    text = report().to_csv(path)
    assert path.read_text() == text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[1] == {"layer": "conv", "kind": "conv", "datum": "weight", "level": "DRAM", "accesses": "2", "bits": "16", "energy": "400.0", "unit": "pJ"}
    jpath = tmp_path / "r.json"
    data = json.loads(report().to_json(jpath))
    assert json.loads(jpath.read_text()) == data
    assert data["total"] == 615.0 and data["unit"] == "pJ" and len(data["records"]) == 4
    assert {p.name for p in tmp_path.iterdir()} == {"r.csv", "r.json"}  # no temporary files left


def test_failed_write_leaves_no_file(tmp_path):
    from dnnergy.errors import UserInputError

    with pytest.raises(UserInputError, match="folder .* does not exist"):
        report().to_csv(tmp_path / "missing_dir" / "r.csv")
    assert list(tmp_path.iterdir()) == []


def test_estimate_carries_unit_and_row_stationary_mapping():
    conv = Layer("conv", OpKind.CONV, "conv", C=3, H=8, W=8, M=4, R=3, S=3, E=6, F=6, macs=3888, weights=108, ifmap=192, ofmap=144)
    r = estimate(Workload((conv,), "one"), "eyeriss", "row_stationary")
    assert r.unit == "MAC-normalized" and r.hardware == "eyeriss" and r.dataflow == "row_stationary"
    assert "conv" in r.mappings and isinstance(r.mappings["conv"], dict)
    assert estimate(Workload((conv,), "one"), "horowitz45", "row_stationary").unit == "pJ"


def test_report_carries_the_hardware_level_order():
    from dnnergy import estimate, trace
    from torch import nn

    report = estimate(trace(nn.Linear(8, 4), (1, 8)), "eyeriss", "row_stationary")
    assert report.levels == ("DRAM", "global_buffer", "array", "RF")  # eyeriss.yaml, outermost first
    assert report.normalized().levels == report.levels and (report + report).levels == report.levels
    assert report.to_dict()["levels"] == list(report.levels)

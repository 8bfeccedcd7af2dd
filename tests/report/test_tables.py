"""Report tables: plain values with units in the headers, totals that sum the rows, machine forms that round-trip.

Expected numbers are derived by hand in the comments (layer shapes, Horowitz's 45 nm
costs), never read back from the code under test.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest
from torch import nn

from dnnergy import estimate, trace
from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.report import Table, energy_table, layer_breakdown, share_lines, summary_table, unsupported_lines, zoo_table
from dnnergy.workload import Layer, OpKind, UnsupportedOp, Workload


def mlp() -> Workload:
    """784-300-100 MLP, one image: fc 784*300 = 235,200 MACs, relu 300 ops, fc 300*100 = 30,000 MACs."""
    return trace(nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100)), (1, 784), name="mlp")


def column(table: Table, header: str) -> list:
    index = table.columns.index(header)
    return [row[index] for row in table.rows]


#: One layer pair with energies chosen by hand, in pJ; records deliberately list RF before DRAM.
RECORDS = (
    EnergyRecord("conv", "conv", "compute", "MAC", 10, 16, 10.0),
    EnergyRecord("conv", "conv", "ifmap", "RF", 30, 16, 30.0),
    EnergyRecord("conv", "conv", "weight", "DRAM", 2, 16, 400.0),
    EnergyRecord("fc", "fc", "ifmap", "SRAM", 4, 16, 20.0),
    EnergyRecord("fc", "fc", "weight", "DRAM", 3, 16, 540.0),
)


def hand_report() -> EnergyReport:
    """Total 10 + 30 + 400 + 20 + 540 = 1000 pJ: conv 440 (44 %), fc 560 (56 %)."""
    return EnergyReport(RECORDS, "pJ", "hw", "flow", "net", levels=("DRAM", "SRAM", "RF"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(columns=("a", "a"), rows=()), "columns must be distinct non-empty strings"),
        (dict(columns=("a", ""), rows=()), "columns must be distinct non-empty strings"),
        (dict(columns=("a", "b"), rows=[("x",)]), "row 0 has 1 cells for 2 columns"),
        (dict(columns=("a", "b"), rows=[("x", True)]), "cells must be str, int, float or None"),
        (dict(columns=("a", "b"), rows=[("x", [1])]), "cells must be str, int, float or None"),
        (dict(columns=("a", "b"), rows=(), footer=("total",)), "footer has 1 cells for 2 columns"),
    ],
)
def test_table_is_validated_at_birth(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Table("t", **kwargs)


def test_table_reads_units_from_headers_and_stores_tuples():
    table = Table("t", ["layer", "MACs", "energy (pJ)", "share (%)", "energy (MAC-normalized)"], [["fc", 1, 2.0, 3.0, None]])
    assert table.units == ("", "", "pJ", "%", "MAC-normalized")
    assert table.rows == (("fc", 1, 2.0, 3.0, None),) and isinstance(table.columns, tuple)


def test_summary_table_counts_an_mlp_by_hand():
    table = summary_table(mlp())
    assert table.title == "mlp  input (1, 784)"
    assert table.columns == ("layer", "kind", "in CxHxW", "out MxExF", "kernel", "MACs", "ops", "params", "ifmap", "ofmap")
    assert table.units == ("",) * 10  # counts are named after what they count
    assert column(table, "kind") == ["fc", "activation", "fc"]
    assert column(table, "in CxHxW") == ["784x1x1", "300x1x1", "300x1x1"]
    assert column(table, "out MxExF") == ["300x1x1", "300x1x1", "100x1x1"]
    assert column(table, "MACs") == [784 * 300, 0, 300 * 100]  # 235,200 and 30,000
    assert column(table, "ops") == [0, 300, 0]  # one max(0, x) per ReLU output
    assert column(table, "params") == [235_200 + 300, 0, 30_000 + 100]  # weights + biases
    assert column(table, "ifmap") == [784, 300, 300] and column(table, "ofmap") == [300, 300, 100]
    assert table.footer == ("total", "3 layers", None, None, None, 265_200, 300, 265_600, 1_384, 700)
    for header in ("MACs", "ops", "params", "ifmap", "ofmap"):  # totals are the sums of the rows
        assert table.footer[table.columns.index(header)] == sum(column(table, header))


def test_summary_table_kernel_shows_size_stride_and_groups():
    # a 2x2 max pool with stride 2 over 20 channels is depthwise: groups == C == M == 20
    pool = Layer(name="pool", kind=OpKind.POOL, op="aten.max_pool2d", C=20, H=24, W=24, M=20, R=2, S=2, E=12, F=12,
                 stride=(2, 2), groups=20, ops=20 * 12 * 12 * 4, ifmap=20 * 24 * 24, ofmap=20 * 12 * 12)
    table = summary_table(Workload((pool,), "p", ((1, 20, 24, 24),)))
    assert table.rows[0][2:5] == ("20x24x24", "20x12x12", "2x2/s2 g20")
    assert table.rows[0][6] == 11_520  # 2,880 outputs x 4 window elements


def test_energy_table_of_hand_records():
    table = energy_table(hand_report(), per=2)
    assert table.title == "net: energy per image on hw (flow)"
    # data types compute, ifmap, weight, ofmap (those present); levels compute first, then report.levels (DRAM first)
    assert table.columns == ("layer", "kind", "compute (pJ)", "ifmap (pJ)", "weight (pJ)", "@MAC (pJ)", "@DRAM (pJ)",
                             "@SRAM (pJ)", "@RF (pJ)", "total (pJ)", "share (%)")
    # per=2 halves every energy: conv 10/30/400 -> 5/15/200 (total 220), fc 20/540 -> 10/270 (total 280)
    assert table.rows == (
        ("conv", "conv", 5.0, 15.0, 200.0, 5.0, 200.0, 0.0, 15.0, 220.0, pytest.approx(44.0)),
        ("fc", "fc", 0.0, 10.0, 270.0, 0.0, 270.0, 10.0, 0.0, 280.0, pytest.approx(56.0)),
    )
    assert table.footer == ("total", "2 layers", 5.0, 25.0, 470.0, 5.0, 470.0, 10.0, 15.0, 500.0, 100.0)
    title_once = energy_table(hand_report()).title
    assert title_once == "net: energy on hw (flow)" and energy_table(hand_report()).rows[0][9] == 440.0


def test_energy_table_rejects_a_bad_per():
    with pytest.raises(ValueError, match="per must be a positive int"):
        energy_table(hand_report(), per=0)


def test_energy_table_on_horowitz45_by_hand():
    # one Linear(784, 300) on two images, weights_once: every weight read once from DRAM (640 pJ per
    # 32-bit word) and once from SRAM (5 pJ); the input written and read once in SRAM, and so is the
    # last MAC layer's output; fp32 MAC 3.7 + 0.9 = 4.6 pJ. Per image (per=2):
    #   compute 235,200 * 4.6 = 1,081,920; weight 235,200 * (640 + 5) / 2 = 75,852,000;
    #   ifmap 2 * 1,568 * 5 / 2 = 7,840; ofmap 2 * 600 * 5 / 2 = 3,000
    workload = trace(nn.Linear(784, 300), (2, 784), name="fc")
    table = energy_table(estimate(workload, "horowitz45", "weights_once"), per=workload.batch)
    row = dict(zip(table.columns, table.rows[0]))
    assert row["compute (pJ)"] == pytest.approx(1_081_920) and row["@MAC (pJ)"] == pytest.approx(1_081_920)
    assert row["weight (pJ)"] == pytest.approx(75_852_000) and row["@DRAM (pJ)"] == pytest.approx(75_264_000)
    assert row["ifmap (pJ)"] == pytest.approx(7_840) and row["ofmap (pJ)"] == pytest.approx(3_000)
    # SRAM: weights 588,000 + ifmap 7,840 + ofmap 3,000
    assert row["@SRAM (pJ)"] == pytest.approx(598_840)
    assert row["total (pJ)"] == pytest.approx(1_081_920 + 75_852_000 + 7_840 + 3_000) and row["share (%)"] == pytest.approx(100)


def test_energy_table_on_eyeriss_follows_the_hardware_levels():
    report = estimate(mlp(), "eyeriss", "row_stationary")
    table = energy_table(report)
    assert report.levels == ("DRAM", "global_buffer", "array", "RF")  # eyeriss.yaml, outermost first
    levels = [c for c in table.columns if c.startswith("@")]
    assert levels == [f"@{name} (MAC-normalized)" for name in ("MAC", "ALU", "DRAM", "global_buffer", "array", "RF")]
    assert set(table.units[2:-1]) == {"MAC-normalized"} and table.units[-1] == "%"
    assert sum(column(table, "share (%)")) == pytest.approx(100.0)
    numeric = range(2, len(table.columns))
    for i in numeric[:-1]:  # energy totals are the sums of the rows
        assert table.footer[i] == pytest.approx(sum(row[i] for row in table.rows))
    for row in table.rows:  # both splits of a layer add up to its total
        record = dict(zip(table.columns, row))
        by_level = sum(record[c] for c in levels)
        by_datum = sum(record[f"{d} (MAC-normalized)"] for d in ("compute", "ifmap", "weight", "ofmap"))
        assert by_level == pytest.approx(record["total (MAC-normalized)"]) and by_datum == pytest.approx(by_level)
    # the fc layers' MACs cost one MAC-normalized unit each: 235,200 and 30,000
    assert column(table, "@MAC (MAC-normalized)") == pytest.approx([235_200, 0, 30_000])


def test_layer_breakdown_defaults_to_the_report_levels():
    _, datums, levels = layer_breakdown(hand_report())
    assert datums == ["compute", "ifmap", "weight"] and levels == ["MAC", "DRAM", "SRAM", "RF"]
    assert layer_breakdown(hand_report(), ("RF", "SRAM", "DRAM"))[2] == ["MAC", "RF", "SRAM", "DRAM"]


def test_machine_forms_keep_numbers_unformatted():
    table = energy_table(hand_report(), per=3)  # thirds do not print short: 440 / 3 = 146.666...
    records = table.to_records()
    assert records[0]["total (pJ)"] == 440 / 3 and records[1]["layer"] == "fc"
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert list(parsed[0]) == list(table.columns) and len(parsed) == 2  # the footer is not a row
    for row, record in zip(parsed, records):
        assert row["layer"] == record["layer"]
        assert all(float(row[c]) == record[c] for c in table.columns[2:])
    data = json.loads(table.to_json())
    assert data["rows"] == records and data["units"] == list(table.units)
    assert data["footer"]["total (pJ)"] == pytest.approx(1000 / 3) and data["title"] == table.title
    frame = table.to_frame()
    assert list(frame.columns) == list(table.columns) and frame["total (pJ)"].sum() == pytest.approx(1000 / 3)


def test_csv_and_json_write_none_as_empty():
    summary = summary_table(mlp())
    json_footer = json.loads(summary.to_json())["footer"]
    assert json_footer["kernel"] is None and json_footer["MACs"] == 265_200
    first = next(csv.DictReader(io.StringIO(summary.to_csv())))
    assert first["kernel"] == "" and int(first["MACs"]) == 235_200


def test_zoo_table_lists_published_figures():
    table = zoo_table()
    assert table.columns == ("model", "input", "published MACs", "published params", "description")
    rows = {row[0]: row for row in table.rows}
    assert {"lenet5", "lenet300", "alexnet", "resnet50"} <= set(rows)
    # LeNet-5: 288,000 + 1,600,000 + 400,000 + 5,000 MACs; 430,500 weights + 580 biases
    assert rows["lenet5"][1:4] == ("1x1x28x28", 2_293_000, 431_080)
    assert rows["alexnet"][1] == "1x3x227x227"


def test_share_lines_follow_the_table_order():
    # compute 10, ifmap 30 + 20 = 50, weight 400 + 540 = 940 of 1000 pJ; MAC 10, DRAM 940, SRAM 20, RF 30
    assert share_lines(hand_report()) == ["by data type: compute 1%, ifmap 5%, weight 94%",
                                          "by level: MAC 1%, DRAM 94%, SRAM 2%, RF 3%"]


def test_unsupported_lines_name_uncounted_and_free_ops():
    fc = Layer(name="fc", kind=OpKind.FC, op="aten.addmm", C=10, M=10, macs=100, weights=100, ifmap=10, ofmap=10)
    workload = Workload((fc,), "w", unsupported=(UnsupportedOp("aten.conv3d", 1, ("body.0",), 300), UnsupportedOp("aten.fft", 2, ("",))),
                        ignored=(("aten.view", 2), ("aten.zeros", 1)))
    # conv3d carries 300 of 100 + 300 MACs = 75 %; the fft's MACs are unknown; 2 + 1 free ops
    assert unsupported_lines(workload) == [
        "not counted: aten.conv3d x1 in body.0 (75.0% of MACs)",
        "not counted: aten.fft x2 in <root> (MACs unknown)",
        "free ops (views, reshapes, tensor creation): 3",
    ]
    assert unsupported_lines(Workload((fc,), "w")) == []


# -- compression records and trade-off points ------------------------------------------------------

def _points():
    from dnnergy.metrics import Point

    before = Point(val_accuracy=0.95, val_samples=500, test_accuracy=0.956, test_samples=1000, energy=100.0,
                   energy_unit="pJ", weights=400, nonzero_weights=400, macs=400, nonzero_macs=300.0, model_bytes=1600)
    after = Point(label="magnitude", strength=0.9, val_accuracy=0.94, val_samples=500, test_accuracy=0.939,
                  test_samples=1000, energy=25.0, energy_unit="pJ", weights=400, nonzero_weights=40, macs=400,
                  nonzero_macs=30.0, latency_s=0.002, model_bytes=1600)
    return before, after


def test_record_table_rows_are_the_points_in_percent_with_standard_errors():
    from dnnergy.compress import Record
    from dnnergy.report import budget_lines, record_table

    before, after = _points()
    record = Record("magnitude", {}, before, after, "sparsity 0.9", max_accuracy_drop=0.01)
    table = record_table(record)
    assert table.columns[2:6] == ("val SE (%)", "test accuracy (%)", "test SE (%)", "energy (pJ)")
    assert table.title == "magnitude: sparsity 0.9"
    first, second = table.rows
    assert (first[0], first[1], first[3]) == ("before", pytest.approx(95.0), pytest.approx(95.6))
    # SE = sqrt(p (1 - p) / n) in points: val sqrt(0.95 * 0.05 / 500) = 0.9747 %, sqrt(0.94 * 0.06 / 500) = 1.0621 %;
    # test sqrt(0.956 * 0.044 / 1000) = 0.6486 %, sqrt(0.939 * 0.061 / 1000) = 0.7568 %
    assert first[2] == pytest.approx(0.9747, abs=1e-4) and second[2] == pytest.approx(1.0621, abs=1e-4)
    assert first[4] == pytest.approx(0.6486, abs=1e-4) and second[4] == pytest.approx(0.7568, abs=1e-4)
    assert second[5:] == (25.0, 400, 40, 400, 1600)
    # the test loss, 95.6 - 93.9 = 1.7 points, is past the 1-point budget kept on validation
    assert budget_lines(record) == ["test accuracy fell 1.7 points, more than the 1.0-point budget kept on validation "
                                    "(test SE 0.8 points)"]
    assert budget_lines(dataclasses.replace(record, max_accuracy_drop=0.02)) == []


def test_points_table_marks_the_front_and_shows_latency_in_milliseconds():
    from dnnergy.report import points_table

    before, after = _points()
    table = points_table([before, after], "sweep", front=[after])
    assert [row[2] for row in table.rows] == ["", "*"]
    assert table.rows[1][0:2] == ("magnitude", 0.9) and table.rows[1][8] == pytest.approx(2.0)  # 0.002 s = 2 ms
    assert table.rows[0][0] == "-" and table.rows[0][8] is None  # no label, not timed
    assert table.columns[5] == "energy (pJ)" and table.rows[1][5:8] == (25.0, 40, 30.0)


def test_column_reads_cells_by_header():
    table = Table("t", ("layer", "MACs"), [("fc1", 235200), ("fc2", 30000)])
    assert table.column("MACs") == [235200, 30000] and table.column("layer") == ["fc1", "fc2"]
    with pytest.raises(ValueError):
        table.column("weights")

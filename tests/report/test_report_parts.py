"""The pieces of the HTML report: share and precision tables, model comparison, records files, formatting, escaping.

Expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import json

import pytest

from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.errors import UserInputError
from dnnergy.report.compare import ModelCost, comparison_table
from dnnergy.report.html import html_table, report_html
from dnnergy.report.records import load_results
from dnnergy.report.shares import precision_table, share_table
from dnnergy.report.tables import Table
from dnnergy.report.text import text_table, top_rows
from dnnergy.workload import Layer, OpKind, Workload

#: Names that would run or render as markup if not escaped (the names of conftest's tiny model).
SCRIPT = "<script>alert(1)</script>"
MODEL = "tiny <b>net</b>"


def two_fc() -> tuple[Workload, EnergyReport]:
    """fc1: 300 MACs and weights, 10 pJ; fc2: 100 MACs and weights, 30 pJ (total 400 MACs, 400 weights, 40 pJ)."""
    layers = (Layer("fc1", OpKind.FC, "addmm", C=300, M=1, macs=300, weights=300, ifmap=300, ofmap=1, w_bits=8, w_density=0.25),
              Layer("fc2", OpKind.FC, "addmm", C=100, M=1, macs=100, weights=100, ifmap=100, ofmap=1))
    records = (EnergyRecord("fc1", "fc", "weight", "DRAM", 1, 16, 10.0), EnergyRecord("fc2", "fc", "weight", "DRAM", 1, 16, 30.0))
    return Workload(layers, name="two"), EnergyReport(records, "pJ", "hw", "flow", "two", levels=("DRAM",))


def column(table: Table, header: str) -> list:
    return [row[table.columns.index(header)] for row in table.rows]


def test_share_table_sets_energy_beside_macs_and_weights():
    table = share_table(*two_fc())
    assert column(table, "energy share (%)") == pytest.approx([25.0, 75.0])  # 10 / 40, 30 / 40
    assert column(table, "MAC share (%)") == pytest.approx([75.0, 25.0])  # 300 / 400, 100 / 400
    assert column(table, "weight share (%)") == pytest.approx([75.0, 25.0])
    assert column(table, "energy per MAC (pJ)") == pytest.approx([10 / 300, 30 / 100])
    assert table.footer[2:4] == (40.0, 100.0)


def test_precision_table_shows_declared_bits_else_the_word_and_sparsity():
    workload, _ = two_fc()
    rows = precision_table(workload, 16).to_records()
    assert (rows[0]["weight bits"], rows[0]["input bits"], rows[1]["weight bits"]) == (8, 16, 16)
    assert rows[0]["weight sparsity (%)"] == pytest.approx(75.0)  # density 0.25
    assert rows[1]["weight sparsity (%)"] == 0.0


def test_comparison_ratios_follow_the_published_counts():
    # AlexNet 724,406,816 MACs and 60,954,656 weights; SqueezeNet 1.0 818,924,576 MACs and 1,244,448 weights.
    costs = [ModelCost("alexnet", 2.0, "pJ", 724_406_816, 60_954_656), ModelCost("squeezenet1_0", 1.0, "pJ", 818_924_576, 1_244_448)]
    row = comparison_table(costs, "side by side").to_records()[1]
    assert row["energy ratio"] == 0.5
    assert row["MAC ratio"] == pytest.approx(1.1305, abs=1e-4)  # 818.9 / 724.4
    assert row["weight ratio"] == pytest.approx(0.020416, abs=1e-6)  # 1.244 / 60.95: 49x fewer weights
    with pytest.raises(ValueError, match="several units"):
        comparison_table([costs[0], ModelCost("x", 1.0, "MAC-normalized", 1, 1)], "t")


def test_text_table_aligns_as_its_docstring_says():
    table = Table("fc", ("layer", "MACs"), [("fc1", 784 * 300)])
    assert text_table(table) == "fc\nlayer  MACs\n-----  ----\nfc1    235k"


def test_top_rows_keeps_the_largest_in_order():
    table = Table("t", ("layer", "MACs"), [("a", 5), ("b", 9), ("c", 1)], ("total", 15))
    kept, hidden = top_rows(table, "MACs", 2)
    assert [r[0] for r in kept.rows] == ["a", "b"] and hidden == 1 and kept.footer == ("total", 15)


def test_html_table_escapes_every_string():
    table = Table(f"model {MODEL}", ("layer", "MACs"), [(SCRIPT, 32)])
    html = html_table(table)
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "tiny &lt;b&gt;net&lt;/b&gt;" in html


def test_report_page_holds_no_markup_from_names(tiny_workload_report):
    workload, report = tiny_workload_report
    page = report_html(workload, report, word_bits=16)
    assert "<script" not in page.lower() and "<b>net" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # energy, share and precision tables
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page  # only SVG namespaces
    assert "<metadata" not in page


def test_records_files_become_series_per_method(records_files):
    results = load_results(records_files)
    assert list(results.series) == ["structured", "magnitude"]
    assert [p.label for p in results.series["structured"]] == ["before", "structured"]
    # SWEEP: (60, 0.90) is dominated by (40, 0.95); the others are on magnitude's front.
    assert [p.energy for p in results.fronts()["magnitude"]] == [100.0, 40.0, 20.0]
    # All together: structured's (50, 0.97) is not dominated (only (100, 0.98) is more accurate): on the front too;
    # the record's "before" and the sweep's strength 0 are equal points (100, 0.98), and equal points both stay.
    assert sorted(p.energy for p in results.front()) == [20.0, 40.0, 50.0, 100.0, 100.0]
    assert results.unit == "MAC-normalized" and len(results.records) == 1 and len(results.sweeps) == 1


@pytest.mark.parametrize(("content", "match"), [
    ("{bad", "not JSON \\(line 1"),
    ('{"format": "something/1"}', "not a compression record or sweep"),
    ('[1, 2]', "not a compression record or sweep"),
    ('{"points": []}', "non-empty list of points"),
    ('{"points": [{"nope": 1}]}', "invalid point"),
    ('{"format": "dnnergy.record/1", "method": "m"}', "invalid record"),
])
def test_bad_records_files_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserInputError, match=match) as info:
        load_results([path])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_records_in_several_units_are_refused(tmp_path, make_record, sweep_points):
    import dataclasses

    other = make_record("structured", 0.97, 50.0)
    other = dataclasses.replace(other, after=dataclasses.replace(other.after, energy_unit="pJ"))
    (tmp_path / "a.json").write_text(other.to_json())
    (tmp_path / "b.json").write_text(json.dumps({"points": [p.to_dict() for p in sweep_points]}))
    with pytest.raises(UserInputError, match="several units"):
        load_results([tmp_path / "a.json", tmp_path / "b.json"])
    with pytest.raises(UserInputError, match="not found"):
        load_results([tmp_path / "missing.json"])

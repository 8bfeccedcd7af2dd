"""``str()`` and ``_repr_html_`` of reports, workloads, points, sweeps and records: compact text, full HTML tables."""

from __future__ import annotations

from dnnergy.explore.tradeoff import Sweep


def test_energy_report_prints_a_compact_table(tiny_workload_report):
    workload, report = tiny_workload_report
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("tiny <b>net</b>: energy on eyeriss (row_stationary)")
    assert "EnergyRecord(" not in text and "@DRAM" not in text  # data types only; levels go to the note line
    assert any(line.startswith("<script>alert(1)</script>") for line in lines)
    assert lines[-2].startswith("by data type:") and lines[-1].startswith("by level:")
    html = report._repr_html_()
    assert html.startswith("<table>") and "@DRAM" in html and "&lt;script&gt;" in html and "<script" not in html


def test_workload_text_keeps_the_top_layers_by_macs(tiny_workload_report):
    workload, _ = tiny_workload_report
    text = str(workload)
    assert "Workload(" not in text and "fc2" in text and "total" in text
    # 3 layers: all shown; the MAC column reads 32 and 8 (8 * 4 and 4 * 2)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[3:6]}
    assert "32" in rows["<script>alert(1)</script>"] and "8" in rows["fc2"]


def test_sweep_marks_its_pareto_front(sweep_points):
    sweep = Sweep(sweep_points)
    lines = str(sweep).splitlines()
    assert lines[0].startswith("magnitude: 4 points")
    # (60, 90 %) is dominated by (40, 95 %): the only unmarked row (strength 0.5)
    marked = {line.split()[1]: "*" in line.split() for line in lines[3:]}
    assert marked == {"0": True, "0.5": False, "0.75": True, "0.9": True}
    assert "latency" not in lines[1]  # an empty column is dropped from the text
    assert "<table>" in sweep._repr_html_() and isinstance(sweep, list)


def test_point_and_record_print_as_tables(sweep_points, make_record):
    assert str(sweep_points[1]).splitlines()[0] == "magnitude at strength 0.5, in MAC-normalized"
    record = make_record("structured", 0.95, 50.0)  # 98 -> 95 %: 3 points, more than the 1-point budget
    text = str(record)
    assert text.splitlines()[0] == "structured: structured by hand, in MAC-normalized" and "Record(" not in text
    assert "test accuracy fell 3.0 points" in text
    assert "<td>before</td>" in record._repr_html_()

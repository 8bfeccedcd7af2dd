"""What the HTML report shows and refuses: the share chart's bars, the model each records file names, --compare names.

The share chart is checked on GoogLeNet (140 layers, most of them pools, concatenations
and activations with almost no energy) against energies summed independently from the
estimate's records; the model checks against records written by hand and by a real run.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnergy.compress.record import Record
from dnnergy.errors import UserInputError
from dnnergy.report.html import report_html
from dnnergy.report.records import load_results, model_lines
from dnnergy.report.shares import MIN_SHARE, share_bars, share_table
from dnnergy.report.tables import Table

OTHER = re.compile(r"^other: (\d+) layers?, (\d+\.\d)% of energy$")


def test_share_bars_follow_the_docstring_example():
    columns = ("layer", "energy share (%)", "MAC share (%)", "weight share (%)")
    table = Table("t", columns, [("a", 90.0, 80.0, 100.0), ("b", 9.8, 20.0, 0.0), ("c", 0.2, 0.0, 0.0)])
    bars = share_bars(table, min_share=0.5)
    assert bars.labels == ("a", "b", "other: 1 layer, 0.2% of energy") and bars.other == 1
    assert bars.series["energy"] == (90.0, 9.8, 0.2) and bars.series["MAC"] == (80.0, 20.0, 0.0)
    # nothing below the threshold: no "other" bar at all
    assert share_bars(table, min_share=0.1).labels == ("a", "b", "c")
    # top=1 keeps the largest layer and sums the two others (9.8 + 0.2 = 10 % of energy)
    assert share_bars(table, min_share=0.1, top=1).labels == ("a", "other: 2 layers, 10.0% of energy")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0, 1000)] * 3), min_size=1, max_size=60), st.floats(0, 5), st.integers(1, 50))
def test_share_bars_keep_every_share_whatever_the_threshold(sizes, min_share, top):
    totals = [sum(column) for column in zip(*sizes)]
    shares = [tuple(100 * v / t if t else 0.0 for v, t in zip(row, totals)) for row in sizes]
    table = Table("t", ("layer", "energy share (%)", "MAC share (%)", "weight share (%)"),
                  [(f"l{i}", *row) for i, row in enumerate(shares)])
    bars = share_bars(table, min_share, top)
    shown = bars.labels[:len(bars.labels) - (bars.other > 0)]
    assert len(shown) <= top and len(shown) + bars.other == len(shares)
    for name, column in zip(("energy", "MAC", "weight"), zip(*shares)):
        assert sum(bars.series[name]) == pytest.approx(sum(column), abs=1e-9)  # nothing dropped
    assert all(max(shares[int(name[1:])]) >= min_share for name in shown)  # no bar below the threshold


@pytest.fixture(scope="module")
def googlenet():
    from dnnergy import estimate, trace, zoo

    workload = trace(zoo.create_model("googlenet"), zoo.model_info("googlenet").input_shape, name="googlenet", compute=False)
    return workload, estimate(workload, "eyeriss", "row_stationary")


def test_share_bars_of_googlenet_account_for_all_its_energy(googlenet):
    workload, report = googlenet
    energy = defaultdict(float)  # independent of share_table: summed straight from the records
    for record in report.records:
        energy[record.layer] += record.energy
    total = sum(energy.values())
    layers = {layer.name: layer for layer in workload}
    bars = share_bars(share_table(workload, report))
    *shown, other = bars.labels
    assert 0 < len(shown) <= 40 and bars.other == len(workload) - len(shown) > 0  # pools and the like are summed
    count, percent = OTHER.match(other).groups()
    rest = 100 * (total - sum(energy[name] for name in shown)) / total
    assert int(count) == bars.other and float(percent) == pytest.approx(rest, abs=0.051)
    assert bars.series["energy"][:-1] == pytest.approx([100 * energy[name] / total for name in shown])
    assert sum(bars.series["energy"]) == pytest.approx(100.0)  # the bars hold every joule
    for name in shown:  # no bar is empty: each layer holds at least MIN_SHARE % of energy, MACs or weights
        layer = layers[name]
        weights = layer.weights if layer.weight_is_param else 0
        assert max(100 * energy[name] / total, 100 * layer.macs / workload.macs, 100 * weights / workload.weights) >= MIN_SHARE


def test_share_caption_says_what_the_other_bar_holds(tiny_workload_report):
    workload, report = tiny_workload_report  # relu: no MACs, no weights, 0.4 % of energy
    page = report_html(workload, report, word_bits=16)
    assert "the last bar sums the other 1 layer (0.4% of energy, 0.0% of MACs, 0.0% of weights)" in page


# -- the model a records file names ---------------------------------------------------------------------


def _files(tmp_path, make_record, sweep_points, record_model, sweep_model):
    rec = tmp_path / "rec.json"
    rec.write_text(Record(**{**_fields(make_record("structured", 0.97, 50.0)), "model": record_model}).to_json())
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"model": sweep_model, "points": [p.to_dict() for p in sweep_points]}))
    return [rec, sweep]


def _fields(record: Record) -> dict:
    import dataclasses

    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def test_records_of_another_model_are_flagged_next_to_their_curve(tmp_path, tiny_workload_report, make_record, sweep_points):
    workload, report = tiny_workload_report
    results = load_results(_files(tmp_path, make_record, sweep_points, "lenet5", "runs/other.dnnergy"))
    warnings, notes = model_lines(results, [workload.name])
    assert notes == [] and set(warnings) == {"structured", "magnitude"}
    page = report_html(workload, report, word_bits=16, results=results)
    assert (f'<p class="warning">warning: the curve structured [other model]: {tmp_path / "rec.json"} is a run of lenet5, '
            f"not of tiny &lt;b&gt;net&lt;/b&gt;</p>") in page
    assert "is a run of runs/other.dnnergy" in page and "<b>net" not in page


def test_records_of_the_same_model_are_not_flagged(tmp_path, tiny_workload_report, make_record, sweep_points):
    workload, report = tiny_workload_report
    # the sweep names a saved model's file, the report that file's stem; the record the saved model's architecture
    results = load_results(_files(tmp_path, make_record, sweep_points, "lenet300", "runs/small.dnnergy"))
    assert model_lines(results, ["small", "lenet300"]) == ({}, [])
    page = report_html(workload, report, word_bits=16, results=results, aliases=["small", "lenet300"])
    assert 'class="warning"' not in page
    results = load_results(_files(tmp_path, make_record, sweep_points, workload.name, workload.name))
    assert 'class="warning"' not in report_html(workload, report, word_bits=16, results=results)


def test_old_records_without_a_model_still_load(tmp_path, tiny_workload_report, records_files):
    workload, report = tiny_workload_report
    data = json.loads(records_files[0].read_text())
    data.pop("model", None)  # as written before records named their model
    records_files[0].write_text(json.dumps(data))
    results = load_results(records_files)  # the sweep names none either
    assert results.records[0][1].model == "" and [s.model for s in results.sources] == [None, None]
    warnings, notes = model_lines(results, [workload.name])
    assert warnings == {} and len(notes) == 2 and all("model not recorded" in line for line in notes)
    page = report_html(workload, report, word_bits=16, results=results)
    # a note per file, and the record's own before/after table says it too
    assert page.count("model not recorded") == 3 and 'class="warning"' not in page


def test_a_model_must_be_a_name(tmp_path, sweep_points, make_record):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"model": 3, "points": [p.to_dict() for p in sweep_points]}))
    with pytest.raises(UserInputError, match="'model' must be the name of a model"):
        load_results([path])
    path.write_text(json.dumps({**make_record("structured", 0.97, 50.0).to_dict(), "model": ["lenet5"]}))
    with pytest.raises(UserInputError, match="invalid record.*model must be the name of a model"):
        load_results([path])


@pytest.fixture
def factory(tmp_path, monkeypatch):
    """An importable 8x8 -> 10 factory, ``tiny_report_models:mlp`` (the synthetic data's shape)."""
    import sys

    (tmp_path / "tiny_report_models.py").write_text(textwrap.dedent("""
        from torch import nn
        def mlp():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tiny_report_models:mlp"
    sys.modules.pop("tiny_report_models", None)


def test_a_compression_record_names_the_architecture_it_ran_on(factory):
    from torch import nn

    import dnnergy
    from dnnergy import zoo
    from dnnergy.compress.artifact import build_architecture
    from dnnergy.compress.contract import _model_name
    from dnnergy.data import load_dataset

    context = dnnergy.CompressionContext.build(load_dataset("synthetic"), fine_tuning=None, max_accuracy_drop=None)
    record = dnnergy.run(build_architecture(factory), "magnitude", context, sparsity=0.5).record
    assert record.model == factory and Record.from_dict(json.loads(record.to_json())).model == factory
    assert _model_name(zoo.create_model("lenet5")) == "lenet5" and _model_name(nn.Linear(2, 2)) == "Linear"


def test_cli_warns_on_stderr_about_a_record_of_another_model(tmp_path, capsys, make_record, sweep_points):
    from dnnergy.cli import main

    files = _files(tmp_path, make_record, sweep_points, "lenet300", "lenet5")
    with pytest.raises(SystemExit) as info:
        main(["report", "lenet5", "-o", str(tmp_path / "x.html"), "--no-zoo", *(f"--records={f}" for f in files)])
    assert info.value.code in (0, None)
    err = capsys.readouterr().err.splitlines()
    assert err[:-1] == [f"warning: --records: the curve structured: {files[0]} is a run of lenet300, not of lenet5"]
    assert "is a run of lenet300, not of lenet5</p>" in (tmp_path / "x.html").read_text(encoding="utf-8")


def test_a_saved_model_goes_by_its_architecture_too(tmp_path):
    import dnnergy
    from dnnergy import zoo
    from dnnergy.cli.report import _aliases

    path = dnnergy.save(tmp_path / "small.dnnergy", zoo.create_model("lenet5"))
    assert _aliases(str(path)) == ["lenet5"] and _aliases("lenet5") == []


# -- --compare names are checked before anything is traced ----------------------------------------------


@pytest.fixture
def no_tracing(monkeypatch):
    """Fail the test if the report's model is loaded or traced."""
    import dnnergy.cli._resolve as resolve
    from dnnergy import workload

    def traced(*args, **kwargs):
        raise AssertionError("the model was loaded or traced before --compare was checked")

    for module, name in ((resolve, "load_model"), (resolve, "load_workload"), (workload, "trace")):
        monkeypatch.setattr(module, name, traced)


@pytest.mark.parametrize(("compare", "message"), [
    ("alexnt", "error: --compare alexnt: unknown model 'alexnt' (did you mean alexnet"),
    ("lenet5,gone.onnx", "error: --compare gone.onnx: file not found: gone.onnx"),
])
def test_a_bad_compare_name_fails_before_any_tracing(tmp_path, capsys, no_tracing, compare, message):
    from dnnergy.cli import main

    with pytest.raises(SystemExit) as info:
        main(["report", "googlenet", "-o", str(tmp_path / "x.html"), "--compare", compare])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith(message)
    assert not (tmp_path / "x.html").exists()


def test_good_compare_names_pass_the_check(tmp_path):
    from dnnergy.cli.report import _check_specs

    (tmp_path / "m.onnx").write_bytes(b"")
    _check_specs(["alexnet", "pkg.models:build", str(tmp_path / "m.onnx")])  # raises nothing

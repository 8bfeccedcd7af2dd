"""The dnnergy command: tables, machine formats, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest



def test_zoo_lists_the_architectures(cli):
    code, out, _ = cli("zoo")
    assert code == 0
    for name in ("lenet5", "lenet300", "alexnet", "resnet50", "mobilenet_v1"):
        assert name in out


def test_summary_json_counts_lenet5(cli):
    code, out, _ = cli("summary", "lenet5", "--json")
    assert code == 0
    data = json.loads(out)
    # conv1 20*1*5*5*24*24 + conv2 50*20*5*5*8*8 + fc1 800*500 + fc2 500*10
    # = 288,000 + 1,600,000 + 400,000 + 5,000 (seed 002: 2293K edges)
    assert data["totals"]["macs"] == 2_293_000
    # 500 + 25,000 + 400,000 + 5,000 weights plus 20 + 50 + 500 + 10 biases
    assert data["totals"]["params"] == 431_080


def test_summary_csv_has_one_row_per_layer(cli):
    code, out, _ = cli("summary", "lenet300", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    fc = [r for r in rows if r["kind"] == "fc"]
    assert [int(r["macs"]) for r in fc] == [784 * 300, 300 * 100, 100 * 10]


def test_summary_table_shows_totals(cli):
    code, out, _ = cli("summary", "lenet5")
    assert code == 0
    assert "2.29M" in out and "total" in out


def test_batch_option_scales_macs(cli):
    code, out, _ = cli("summary", "lenet5", "--batch", "4", "--json")
    assert code == 0
    assert json.loads(out)["totals"]["macs"] == 4 * 2_293_000


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["summary", "lenet6"], "did you mean"),
        (["summary", "missing.onnx"], "file not found: missing.onnx"),
        (["summary", "os.path:no_such_factory"], "has no attribute 'no_such_factory'"),
        (["summary", "no_such_pkg.mod:build"], "cannot import module 'no_such_pkg.mod'"),
        (["summary", "builtins:dict", "--input-shape", "1,3"], "must give a torch.nn.Module"),
        (["summary", "lenet5", "--input-shape", "1,3,28,28"], "expects 1 input channels"),
        (["summary", "lenet5", "--input-shape", "1,a"], "input shape must be integers"),
    ],
)
def test_user_errors_are_one_line_with_status_2(cli, argv, expected):
    code, out, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ")
    assert expected in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_console_script_exits_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "dnnergy", "summary", "nonexistent_model"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown model 'nonexistent_model'" in proc.stderr


def test_estimate_reproduces_seed_002_lenet5_total(cli):
    code, out, _ = cli("estimate", "lenet5", "--hardware", "horowitz45", "--dataflow", "weights_once", "--non-mac", "exclude", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["unit"] == "pJ"
    # seed 002, "LeNet5 (Original)": 288.27 uJ per image
    assert abs(report["total"] - 288.27e6) <= 0.01 * 288.27e6


def test_estimate_table_plot_and_lower_bits(cli, tmp_path):
    plot = tmp_path / "lenet5.png"
    code, out, err = cli("estimate", "lenet5", "--plot", str(plot))
    assert code == 0
    assert "by data type:" in out and "@DRAM" in out
    # eyeriss prices in MAC-normalized units; levels follow the hardware, DRAM first, after the compute levels
    assert "lenet5: energy on eyeriss (row_stationary), in MAC-normalized" in out
    assert out.index("@ALU") < out.index("@DRAM") < out.index("@global_buffer") < out.index("@array") < out.index("@RF")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _, full, _ = cli("estimate", "lenet5", "--json")
    _, eight, _ = cli("estimate", "lenet5", "--bits", "8,8", "--json")
    # memory energy is linear in bits: halving every word must lower the total
    assert json.loads(eight)["total"] < json.loads(full)["total"]


def test_estimate_profile_random_and_csv(cli):
    code, out, _ = cli("estimate", "lenet5", "--profile", "random", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["datum"] for r in rows} >= {"compute", "ifmap", "weight", "ofmap"}


def rendered_text(table) -> str:
    """What the CLI prints for a report table."""
    from rich.console import Console

    from dnnergy.cli._format import render

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(render(table))
    return console.export_text()


def test_render_formats_numbers_and_keeps_units_once():
    from dnnergy.cli._format import render
    from dnnergy.report import Table

    columns = ("layer", "kind", "MACs", "weight (pJ)", "@DRAM (pJ)", "share (%)")
    text = rendered_text(Table("net: energy", columns, [("fc1", "fc", 235_200, 2.1e6, 640.0, 80.66)], ("total", "1 layers", 235_200, 2.1e6, None, 100.0)))
    # 235,200 MACs -> 235k; 2.1e6 pJ = 2.1 uJ; 640 pJ stays pJ; 80.66 % to one decimal
    assert "net: energy" in text and "235k" in text and "2.1uJ" in text and "640pJ" in text and "80.7%" in text and "100.0%" in text
    assert "(pJ)" not in text and "(%)" not in text and "@DRAM" in text
    normalized = Table("net: energy", ("layer", "@DRAM (MAC-normalized)"), [("fc1", 1_500_000)])
    assert render(normalized).title == "net: energy, in MAC-normalized"
    assert "1.5M" in rendered_text(normalized) and "(MAC-normalized)" not in rendered_text(normalized)
    mixed = rendered_text(Table("t", ("layer", "a (MAC-normalized)", "b (s)"), [("fc1", 2.0, 3.0)]))
    assert "a (MAC-normalized)" in mixed and "b (s)" in mixed  # two units: each stays in its header


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["estimate", "lenet5", "--hardware", "eyeris"], "eyeriss"),
        (["estimate", "lenet5", "--bits", "8,x"], "--bits takes"),
        (["estimate", "lenet5", "--dataflow", "row_stationery"], "row_stationary"),
        (["estimate", "lenet5", "--profile", "digits"], "use --profile random"),
    ],
)
def test_estimate_user_errors(cli, argv, expected):
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ") and expected in err


@pytest.mark.slow
def test_demo_runs_end_to_end(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path))
    code, out, err = cli("demo")
    assert code == 0, err
    assert "lenet5" in out and "alexnet" in out and "by level:" in out
    assert "energy-aware pruning of LeNet-300-100" in out and "Pareto" in out
    # energy must fall on both presets: "(N.Nx less)" with N > 1
    import re

    factors = [float(f) for f in re.findall(r"\((\d+(?:\.\d+)?)x less\)", out)]
    assert len(factors) == 2 and all(f > 1 for f in factors)


def test_summary_reads_onnx_files(cli, tmp_path):
    import warnings

    import torch

    from dnnergy.zoo import create_model

    path = tmp_path / "lenet5.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(create_model("lenet5").eval(), torch.randn(1, 1, 28, 28), str(path), dynamo=False,
                          opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    code, out, err = cli("summary", str(path), "--batch", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == 2 * 2_293_000  # two images of LeNet-5
    (tmp_path / "bad.onnx").write_text("not a protobuf")
    code, _, err = cli("summary", str(tmp_path / "bad.onnx"))
    assert code == 2 and "not a readable ONNX model" in err

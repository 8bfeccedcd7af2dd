"""dnnergy compress / tradeoff / methods end to end on scikit-learn digits (seconds)."""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Literal

import pytest
import torch

import dnnergy
from dnnergy.cli._params import convert
from dnnergy.errors import UserInputError

FACTORY = """
import torch.nn as nn

def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))

digits_mlp.input_shape = (1, 1, 8, 8)
"""
N_WEIGHTS = 64 * 48 + 48 * 32 + 32 * 10  # 3,072 + 1,536 + 320 = 4,928


@pytest.fixture()
def factory(tmp_path, monkeypatch):
    (tmp_path / "digits_models.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path / "cache"))
    yield "digits_models:digits_mlp"
    sys.modules.pop("digits_models", None)


def _nonzero(model: torch.nn.Module) -> int:
    return sum(int(m.weight.count_nonzero()) for m in model.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize(("method", "options"), [("magnitude", ["--sparsity", "0.5,0.8", "--scope", "global"]),
                                                 ("eliminate", [])])
def test_compress_saves_a_smaller_model_within_budget(cli, tmp_path, factory, method, options):
    out = tmp_path / f"{method}.dnnergy"
    code, stdout, err = cli("compress", factory, "--method", method, "--data", "digits", "--max-accuracy-drop", "3",
                            "--epochs", "1", *options, "--out", str(out), "--json")
    assert code == 0, err
    record = json.loads(stdout)
    before, after = record["before"], record["after"]
    # fewer non-zero weights, lower energy, validation loss within the 3-point budget
    assert after["nonzero_weights"] < before["nonzero_weights"] == N_WEIGHTS
    assert after["energy"] < before["energy"] and record["energy_reduction"] == pytest.approx(before["energy"] / after["energy"])
    assert after["val_accuracy"] >= before["val_accuracy"] - 0.03 - 1e-9
    assert (before["val_samples"], before["test_samples"]) == (180, 360)
    assert record["method"] == method and record["max_accuracy_drop"] == 0.03
    # the saved model reloads (architecture from the factory) and its weights are the record's
    loaded = dnnergy.load(out)
    assert _nonzero(loaded.model) == after["nonzero_weights"]
    assert loaded.record.to_dict() == record
    assert json.loads((tmp_path / f"{method}.dnnergy.json").read_text())["method"] == method
    # summary and estimate read the saved file directly
    code, stdout, err = cli("summary", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["totals"]["macs"] == after["macs"]
    code, stdout, err = cli("estimate", str(out), "--json")
    assert code == 0, err and json.loads(stdout)["total"] > 0


def test_compress_human_output_and_chained_methods(cli, factory):
    code, stdout, err = cli("compress", factory, "--method", "magnitude,structured", "--data", "digits",
                            "--max-accuracy-drop", "5", "--epochs", "1", "--sparsity", "0.5", "--ratio", "0.25")
    assert code == 0, err
    assert "magnitude,structured: magnitude: sparsity 0.500" in stdout and "structured: criterion l1 (ratio 0.25)" in stdout
    for row in ("before", "magnitude", "structured"):
        assert f"\n│ {row}" in stdout or f"│ {row} " in stdout
    assert "x less" in stdout


def test_compress_eliminates_several_layers_and_input_features(cli, tmp_path, factory):
    code, stdout, err = cli("compress", factory, "--method", "eliminate", "--layer", "inputs,1,3", "--data", "digits",
                            "--max-accuracy-drop", "3", "--steps", "8", "--samples", "400", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    plan = record["info"]["plan"]
    assert set(plan) == {"inputs", "1", "3"} and record["info"]["sizes"] == {"inputs": 64, "1": 48, "3": 32}
    assert plan["inputs"] < 64 or plan["1"] < 48 or plan["3"] < 32
    assert record["after"]["weights"] == plan["inputs"] * plan["1"] + plan["1"] * plan["3"] + plan["3"] * 10
    accepted = [s for s in record["steps"] if s["accepted"]]
    assert all(s["accuracy"] >= record["before"]["val_accuracy"] - 0.03 - 1e-9 for s in accepted)


def test_a_saved_model_compresses_further(cli, tmp_path, factory):
    first = tmp_path / "first.dnnergy"
    assert cli("compress", factory, "--method", "magnitude", "--sparsity", "0.5", "--data", "digits",
               "--max-accuracy-drop", "10", "--epochs", "1", "--out", str(first))[0] == 0
    code, stdout, err = cli("compress", str(first), "--method", "structured", "--ratio", "0.25", "--data", "digits",
                            "--epochs", "0", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    # the second run starts from the first run's weights: its before is the first run's after
    assert record["before"]["nonzero_weights"] == dnnergy.load(first).record.after.nonzero_weights
    assert record["after"]["weights"] == 64 * 36 + 36 * 24 + 24 * 10  # 25 % of 48 and of 32 neurons removed


def test_tradeoff_points_and_plot(cli, tmp_path, factory):
    plot = tmp_path / "curve.png"
    code, stdout, err = cli("tradeoff", factory, "--data", "digits", "--strengths", "0,0.5,0.9", "--plot", str(plot), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    sparsity = [p["strength"] for p in data["points"]]
    nonzero = [p["nonzero_weights"] for p in data["points"]]
    # magnitude pruning (per layer) at sparsity s keeps n - round(s * n_layer) per layer
    assert nonzero == [N_WEIGHTS - round(s * 64 * 48) - round(s * 48 * 32) - round(s * 32 * 10) for s in sparsity]
    energies = [p["energy"] for p in data["points"]]
    assert energies[0] > energies[1] > energies[2]
    assert all(p["latency_s"] > 0 for p in data["points"])
    assert data["pareto"] and plot.read_bytes()[:4] == b"\x89PNG"
    assert (data["method"], data["data"], data["seed"], data["version"]) == ("magnitude", "digits", 0, dnnergy.__version__)


def test_tradeoff_of_structured_sweeps_its_ratio(cli, factory):
    code, stdout, err = cli("tradeoff", factory, "--method", "structured", "--data", "digits", "--strengths", "0,0.5", "--json")
    assert code == 0, err
    weights = [p["weights"] for p in json.loads(stdout)["points"]]
    assert weights == [N_WEIGHTS, 64 * 24 + 24 * 16 + 16 * 10]  # half of 48 and of 32 neurons removed


def test_methods_lists_every_registered_method_with_its_parameters(cli):
    code, stdout, err = cli("methods")
    assert code == 0, err
    for name in dnnergy.list_methods():
        assert f"\n{name}" in "\n" + stdout
    assert "magnitude (sweeps --sparsity)" in stdout and "    --scope layer    ('layer' or 'global')" in stdout
    assert "    --sparsity 0.5,0.75,0.9,0.95    (float or a comma-separated list of float)" in stdout
    assert "    --plan none    (name=value pairs, comma-separated or none)" in stdout
    code, stdout, _ = cli("methods", "struct*")
    assert stdout.startswith("structured (sweeps --ratio)") and "magnitude" not in stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compress", "lenet300", "--method", "quantum"], "unknown compression method 'quantum'"),
        (["compress", "lenet300", "--method", "eap", "--rounds", "0"], "rounds must be a positive int (got 0)"),
        (["compress", "lenet300", "--method", "eap", "--hardware", "eyeris"], "did you mean eyeriss"),
        (["tradeoff", "lenet300", "--dataflow", "row_stationery"], "unknown dataflow 'row_stationery'"),
        (["compress", "lenet300", "--method", "structured", "--criterion", "l3"], "criterion must be one of"),
        (["tradeoff", "lenet300", "--method", "magnitude", "--strengths", "0.5,1.5"], "sparsity must be a fraction"),
        (["compress", "lenet300", "--method", "magnitude", "--data", "digits"], "its images are (1, 8, 8)"),
        (["compress", "lenet300", "--method", "magnitude", "--sparsity", "0.5,2"], "sparsity must be a fraction in [0, 1]"),
        (["compress", "lenet300", "--method", "magnitude", "--sparsty", "0.5"], "--sparsty: no method of 'magnitude' takes it"),
        (["compress", "lenet300", "--method", "magnitude", "--scope", "row"], "--scope: cannot read 'row' as 'layer' or 'global'"),
        (["compress", "lenet300", "--method", "magnitude", "--sparsity"], "--sparsity needs a value"),
        (["compress", "lenet300", "--method", "magnitude", "--weights", "nowhere.pt"], "file not found: nowhere.pt"),
        (["compress", "lenet300", "--method", "eap", "--out", "/nowhere/x.dnnergy"], "folder /nowhere does not exist"),
        (["tradeoff", "lenet300", "--method", "eap"], "--method eap: it has no strength to sweep"),
        (["summary", "missing.dnnergy"], "file not found: missing.dnnergy"),
    ],
)
def test_compress_user_errors(cli, argv, expected, monkeypatch):
    import dnnergy.cli.compress as job

    def no_work(*args, **kwargs):
        raise AssertionError("the job was prepared before the error")

    if "--data" not in argv and "--weights" not in argv and "summary" not in argv:
        monkeypatch.setattr(job, "prepare", no_work)  # every other error is found before any model is loaded
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ") and expected in err


def test_a_test_loss_beyond_the_budget_is_said(cli, factory):
    # a zero budget kept on validation; the test split moves by itself
    code, stdout, err = cli("compress", factory, "--method", "eliminate", "--data", "digits", "--max-accuracy-drop", "0",
                            "--json")
    assert code == 0, err
    record = json.loads(stdout)
    broken = record["before"]["test_accuracy"] - record["after"]["test_accuracy"] > 1e-12
    assert record["test_budget_broken"] == broken
    assert ("warning: test accuracy fell" in err) == broken


@pytest.mark.parametrize(
    ("text", "annotation", "expected"),
    [
        ("0.5", float | tuple[float, ...], 0.5),
        ("0.5,0.9", float | tuple[float, ...], (0.5, 0.9)),
        ("fc1", tuple[str, ...], ("fc1",)),
        ("inputs, fc1", tuple[str, ...], ("inputs", "fc1")),
        ("none", float | None, None),
        ("3", int, 3),
        ("yes", bool, True),
        ("global", Literal["layer", "global"], "global"),
        ("fc1=40,fc2=30", dict[str, int] | None, {"fc1": 40, "fc2": 30}),
        ("l1", str | None, "l1"),
    ],
)
def test_parameters_are_read_by_their_annotation(text, annotation, expected):
    assert convert(text, annotation, "x") == expected


def test_unreadable_parameters_say_what_was_expected():
    with pytest.raises(UserInputError, match="--ratio: cannot read 'half' as float or none"):
        convert("half", float | None, "ratio")
    with pytest.raises(UserInputError, match="cannot read 'fc1' as name=value pairs"):
        convert("fc1", dict[str, int], "plan")

"""dnnergy compress / tradeoff end to end on scikit-learn digits (seconds)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import torch


FACTORY = """
import torch.nn as nn

def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))

digits_mlp.input_shape = (1, 1, 8, 8)
"""


@pytest.fixture()
def factory(tmp_path, monkeypatch):
    (tmp_path / "digits_models.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path / "cache"))
    yield "digits_models:digits_mlp"
    sys.modules.pop("digits_models", None)


@pytest.mark.parametrize("method", ["magnitude", "eliminate"])
def test_compress_saves_a_smaller_model_within_budget(cli, tmp_path, factory, method):
    out = tmp_path / f"{method}.pt"
    code, stdout, err = cli("compress", factory, "--method", method, "--data", "digits", "--max-accuracy-drop", "3",
                            "--sparsity", "0.5,0.8", "--epochs", "1", "--out", str(out), "--json")
    assert code == 0, err
    record = json.loads(stdout)
    # fewer non-zero weights, lower energy, accuracy loss on validation bounded by the budget
    assert record["nonzero_weights_after"] < record["nonzero_weights_before"]
    assert record["energy_after"] < record["energy_before"]
    assert record["accuracy_after"] >= record["accuracy_before"] - 0.10  # test split; budget applies on validation
    payload = torch.load(out, weights_only=True)
    assert payload["format"] == "dnnergy.compressed/1"
    nonzero = sum(int(t.count_nonzero()) for k, t in payload["state_dict"].items() if k.endswith("weight"))
    assert nonzero == record["nonzero_weights_after"]
    assert json.loads((tmp_path / f"{method}.pt.json").read_text())["method"] == method


def test_compress_eliminates_several_layers_and_input_features(cli, tmp_path, factory):
    out = tmp_path / "eliminated.pt"
    code, stdout, err = cli("compress", factory, "--method", "eliminate", "--layer", "inputs,1,3", "--data", "digits",
                            "--max-accuracy-drop", "3", "--out", str(out), "--json")
    assert code == 0, err
    record = json.loads(stdout)
    plan = record["details"]["info"]["plan"]
    assert set(plan) == {"inputs", "1", "3"}
    assert plan["inputs"] < 64 or plan["1"] < 48 or plan["3"] < 32
    assert record["weights_after"] == plan["inputs"] * plan["1"] + plan["1"] * plan["3"] + plan["3"] * 10
    assert record["accuracy_after"] >= record["accuracy_before"] - 0.10  # test split; budget applies on validation
    assert all(p["accuracy_drop"] <= 0.03 + 1e-9 for p in record["details"]["search"] if p["accepted"])


def test_tradeoff_points_and_plot(cli, tmp_path, factory):
    plot = tmp_path / "curve.png"
    code, stdout, err = cli("tradeoff", factory, "--data", "digits", "--strengths", "0,0.5,0.9", "--plot", str(plot), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    sparsity = [p["strength"] for p in data["points"]]
    nonzero = [p["nonzero_weights"] for p in data["points"]]
    # magnitude pruning at sparsity s keeps round((1 - s) * n) of the n = 64*48 + 48*32 + 32*10 weights
    n = 64 * 48 + 48 * 32 + 32 * 10
    assert nonzero == [n - round(s * 64 * 48) - round(s * 48 * 32) - round(s * 32 * 10) for s in sparsity]
    energies = [p["energy"] for p in data["points"]]
    assert energies[0] > energies[1] > energies[2]
    assert data["pareto"] and plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compress", "lenet300", "--method", "quantum"], "unknown method 'quantum'"),
        (["compress", "lenet300", "--method", "magnitude", "--data", "digits"], "its images are (1, 8, 8)"),
        (["compress", "lenet300", "--method", "magnitude", "--sparsity", "0.5,2"], "--sparsity takes fractions"),
        (["compress", "lenet300", "--method", "magnitude", "--weights", "nowhere.pt"], "file not found: nowhere.pt"),
        (["tradeoff", "lenet300", "--method", "eap"], "tradeoff supports --method"),
    ],
)
def test_compress_user_errors(cli, argv, expected):
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("error: ") and expected in err

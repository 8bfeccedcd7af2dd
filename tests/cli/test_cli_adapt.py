"""dnnergy adapt end to end on scikit-learn digits: the budget is met, the outputs are written and reload."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from torch import nn

import dnnergy
from dnnergy.explore import History

FACTORY = """
import torch.nn as nn

def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))

digits_mlp.input_shape = (1, 1, 8, 8)
"""
MACS = 64 * 48 + 48 * 32 + 32 * 10  # 3,072 + 1,536 + 320 = 4,928 (one sample, dense)


@pytest.fixture()
def factory(tmp_path, monkeypatch):
    (tmp_path / "adapt_models.py").write_text(textwrap.dedent(FACTORY))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path / "cache"))
    yield "adapt_models:digits_mlp"
    sys.modules.pop("adapt_models", None)


def _macs(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return sum(m.in_features * m.out_features for m in linears)


def test_adapt_meets_a_macs_budget_and_writes_model_history_and_plot(cli, tmp_path, factory):
    out = tmp_path / "adapted.dnnergy"
    code, stdout, err = cli("adapt", factory, "--data", "digits", "--budget", "macs=0.5", "--epochs", "1",
                            "--short-term", "128", "--step", "0.2", "--out", str(out), "--json")
    assert code == 0, err
    history = History.from_dict(json.loads(stdout))
    assert history.original == MACS and history.budget == MACS / 2 and history.stopped == "budget met"
    assert (history.seed, history.version) == (0, dnnergy.__version__)  # what ran it, in the JSON
    loaded = dnnergy.load(out)
    assert _macs(loaded.model) == history.final["resource"] <= MACS / 2  # the saved model is the adapted one
    assert loaded.record.method == "netadapt" and loaded.record.after.macs == _macs(loaded.model)
    assert json.loads((tmp_path / "adapted.dnnergy.history.json").read_text()) == history.to_dict()
    assert json.loads((tmp_path / "adapted.dnnergy.json").read_text())["method"] == "netadapt"
    assert (tmp_path / "adapted.dnnergy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("adapted.dnnergy", "adapted.dnnergy.json", "adapted.dnnergy.history.json", "adapted.dnnergy.png"):
        assert f"wrote {tmp_path / name}" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "power=0.5"], "metric must be one of energy, latency, macs, weights"),
    (["--budget", "macs"], "--budget takes metric=value"),
    (["--budget", "macs=0.5", "--executor", "dask"], "executor must be 'local' or 'ray'"),
    (["--budget", "macs=0.001", "--epochs", "0"], "budget 4.928 MACs is below the smallest network"),
])
def test_adapt_refuses_bad_input_in_one_line(cli, tmp_path, factory, args, message):
    code, _, err = cli("adapt", factory, "--data", "digits", *args, "--out", str(tmp_path / "x.dnnergy"))
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.dnnergy").exists()


def test_adapt_refuses_a_missing_output_folder(cli, tmp_path, factory):
    code, _, err = cli("adapt", factory, "--budget", "macs=0.5", "--out", str(tmp_path / "nowhere" / "x.dnnergy"))
    assert code == 2 and "does not exist" in err

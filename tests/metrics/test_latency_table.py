"""The per-layer latency table: keys, sums, the on-disk cache (reused, not re-timed), the whole-model check."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from torch import nn

import dnnergy.metrics.latency_table as latency_table
from dnnergy.errors import UserInputError
from dnnergy.metrics import LatencyCheck, LatencyTable

torch.set_num_threads(1)


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


KEYS = ["torch.nn.modules.linear.Linear(in_features=4, out_features=3, bias=True) <- float32[1, 4]",
        "torch.nn.modules.activation.ReLU() <- float32[1, 3]",
        "torch.nn.modules.linear.Linear(in_features=3, out_features=2, bias=True) <- float32[1, 3]"]


@pytest.fixture()
def fake_timer(monkeypatch):
    """Timing replaced by a known value per layer: 1 ms per output feature of a Linear, 0.5 ms for anything else;
    the calls are counted."""
    calls = []

    def timed(fn, *args, repeats, warmup):
        calls.append((fn, repeats, warmup))
        return getattr(fn, "out_features", 0.5) * 1e-3

    monkeypatch.setattr(latency_table, "measure_latency", timed)
    return calls


def test_the_prediction_is_the_sum_of_the_layers_entries(tmp_path, fake_timer):
    table = LatencyTable((1, 4), tmp_path / "t.json", repeats=7, warmup=2)
    assert table(model()) == pytest.approx(3e-3 + 0.5e-3 + 2e-3)  # Linear(4, 3) + ReLU + Linear(3, 2)
    assert [key for _, key, _ in table.layers(model())] == KEYS
    assert table.by_module(model()) == pytest.approx({"0": 3e-3, "1": 0.5e-3, "2": 2e-3})
    assert [(r, w) for _, r, w in fake_timer] == [(7, 2)] * 3 and table.timed == 3


def test_a_second_run_reads_the_cache_and_times_nothing(tmp_path, fake_timer):
    path = tmp_path / "latency" / "table.json"
    first = LatencyTable((1, 4), path)
    predicted = first(model())
    assert first.timed == 3 and path.exists()
    assert set(json.loads(path.read_text())["entries"]) == set(KEYS)
    second = LatencyTable((1, 4), path)
    assert second(model()) == predicted and second.timed == 0 and len(fake_timer) == 3
    # a new configuration is timed once and added to the same file, old entries kept
    wider = nn.Sequential(nn.Linear(4, 5), nn.ReLU())
    assert second(wider) == pytest.approx(5e-3 + 0.5e-3) and second.timed == 2
    assert len(json.loads(path.read_text())["entries"]) == 5


def test_a_layer_called_twice_counts_twice_but_is_timed_once(tmp_path, fake_timer):
    relu = nn.ReLU()
    twice = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)
    table = LatencyTable((1, 4), tmp_path / "t.json")
    assert table(twice) == pytest.approx(4e-3 + 0.5e-3 + 4e-3 + 0.5e-3)
    assert table.timed == 2  # Linear(4, 4) on [1, 4] and ReLU on [1, 4]: two configurations


def test_a_single_layer_model_is_its_own_entry(tmp_path, fake_timer):
    table = LatencyTable((1, 4), tmp_path / "t.json")
    assert table(nn.Linear(4, 3)) == pytest.approx(3e-3) and table.by_module(nn.Linear(4, 3)) == {"": pytest.approx(3e-3)}


def test_the_check_against_the_whole_model(tmp_path, fake_timer, monkeypatch):
    monkeypatch.setattr(latency_table, "model_latency", lambda m, x, repeats, warmup: 4e-3)
    check = LatencyTable((1, 4), tmp_path / "t.json").check(model())
    assert check == LatencyCheck(5.5e-3, 4e-3) and check.error == pytest.approx((5.5 - 4) / 4)


def test_real_timings_are_positive_and_the_table_pickles(tmp_path):
    table = LatencyTable(torch.randn(2, 4), tmp_path / "t.json", repeats=3, warmup=1)
    assert table(model()) > 0 and table.unit == "s"
    clone = pickle.loads(pickle.dumps(table))
    assert clone(model()) == table(model()) and clone.timed == table.timed == 3


def test_the_default_table_lives_in_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path))
    path = LatencyTable((1, 4)).path
    assert path.parent == tmp_path / "latency" and path.suffix == ".json"


def test_bad_tables_and_arguments(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(UserInputError, match="bad.json: not a dnnergy latency table"):
        LatencyTable((1, 4), bad)
    with pytest.raises(UserInputError, match="repeats must be an int >= 1"):
        LatencyTable((1, 4), tmp_path / "t.json", repeats=0)
    with pytest.raises(UserInputError, match="example_input is required"):
        LatencyTable(None)

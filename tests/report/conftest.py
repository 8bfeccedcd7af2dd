"""Shared pieces of the report tests: a tiny model whose names need escaping, hand-built records and sweeps."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
from torch import nn

from dnnergy.compress.record import Record
from dnnergy.metrics import Point

#: A layer name and a model name that would run or render as markup if not escaped.
SCRIPT = "<script>alert(1)</script>"
MODEL = "tiny <b>net</b>"


def tiny_model() -> nn.Module:
    """8 -> 4 -> 2 MLP: the first layer (named SCRIPT) has 8 * 4 = 32 MACs, the last 4 * 2 = 8."""
    return nn.Sequential(OrderedDict([(SCRIPT, nn.Linear(8, 4)), ("relu", nn.ReLU()), ("fc2", nn.Linear(4, 2))]))


def point(label: str, strength: float | None, accuracy: float, energy: float) -> Point:
    return Point(label, strength, val_accuracy=accuracy, val_samples=500, test_accuracy=accuracy, test_samples=1000,
                 energy=energy, energy_unit="MAC-normalized", weights=1000, nonzero_weights=1000, macs=2000)


def record(method: str, accuracy: float, energy: float) -> Record:
    """A record from (energy 100, 98 %) to the given point."""
    return Record(method, {"sparsity": 0.9}, point("before", None, 0.98, 100.0), point("", None, accuracy, energy),
                  summary=f"{method} by hand", max_accuracy_drop=0.01)


#: A sweep by hand: energies/accuracies (100, 0.98), (60, 0.90), (40, 0.95), (20, 0.80); (60, 0.90) is dominated
#: by (40, 0.95), every other point is on the front.
SWEEP = [point("magnitude", 0.0, 0.98, 100.0), point("magnitude", 0.5, 0.90, 60.0), point("magnitude", 0.75, 0.95, 40.0),
         point("magnitude", 0.9, 0.80, 20.0)]


@pytest.fixture
def make_record():
    """:func:`record`, for tests that build their own."""
    return record


@pytest.fixture
def sweep_points():
    """SWEEP, the hand-made sweep."""
    return list(SWEEP)


@pytest.fixture
def tiny_workload_report():
    """The traced tiny model (name MODEL) and its estimate on eyeriss."""
    from dnnergy import estimate, trace

    workload = trace(tiny_model(), (1, 8), name=MODEL)
    return workload, estimate(workload, "eyeriss", "row_stationary")


@pytest.fixture
def records_files(tmp_path):
    """A compress record (structured: 100 -> 50 at 97 %) and a tradeoff --json sweep (SWEEP), as files."""
    rec = tmp_path / "structured.json"
    rec.write_text(record("structured", 0.97, 50.0).to_json())
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"points": [p.to_dict() for p in SWEEP], "pareto": [0.0, 0.75, 0.9]}))
    return [rec, sweep]

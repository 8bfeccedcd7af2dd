"""dnnergy.save / dnnergy.load error paths, CompressionContext and Record validation, masks surviving a reload."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, Masks, Record, Step, Transforms
from dnnergy.compress.artifact import architecture_of, build_architecture
from dnnergy.data import load_dataset
from dnnergy.errors import UserInputError
from dnnergy.io import write_container
from dnnergy.metrics import Point
from dnnergy.train import FINE_TUNE, fine_tune


def test_save_needs_to_know_the_architecture(tmp_path):
    with pytest.raises(UserInputError, match="cannot tell how to rebuild a Sequential; pass architecture="):
        dnnergy.save(tmp_path / "m.dnnergy", nn.Sequential(nn.Linear(2, 2)))


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("lenet300", {"zoo": "lenet300", "kwargs": {}}),
        ("torch.nn:Identity", {"factory": "torch.nn:Identity", "kwargs": {}}),
        ({"zoo": "lenet5", "kwargs": {"num_classes": 3}}, {"zoo": "lenet5", "kwargs": {"num_classes": 3}}),
    ],
)
def test_architecture_references(reference, expected):
    assert architecture_of(reference) == expected


@pytest.mark.parametrize("bad", [{"zoo": "a", "factory": "b:c"}, {"factory": "no colon"}, 3])
def test_bad_architecture_references_are_refused(bad):
    with pytest.raises(UserInputError, match="architecture"):
        architecture_of(bad)


def test_build_architecture_imports_factories_and_reports_failures():
    assert isinstance(build_architecture("torch.nn:Identity"), nn.Identity)
    with pytest.raises(UserInputError, match="cannot import the architecture 'nowhere.module:build'"):
        build_architecture("nowhere.module:build")


def test_load_refuses_other_kinds_and_weights_that_do_not_fit(tmp_path):
    other = write_container(tmp_path / "cp.dnnergy", "checkpoint", {}, {"w": torch.zeros(2)})
    with pytest.raises(UserInputError, match="is a checkpoint file, expected model"):
        dnnergy.load(other)
    model = dnnergy.zoo.create_model("lenet300")
    path = dnnergy.save(tmp_path / "lenet.dnnergy", model, architecture="lenet5")  # the wrong architecture
    with pytest.raises(UserInputError, match="weights do not fit the rebuilt architecture"):
        dnnergy.load(path)


def test_a_loaded_model_keeps_its_masks_through_fine_tuning(tmp_path, digits):
    model = dnnergy.zoo.create_model("lenet300", num_classes=10)
    keep = torch.rand(model.fc1.weight.shape, generator=torch.Generator().manual_seed(0)) < 0.1
    Masks(model, reversible=False).set("fc1.weight", keep)
    loaded = dnnergy.load(dnnergy.save(tmp_path / "m.dnnergy", model)).model
    transforms = Transforms.of(loaded, create=False)
    assert transforms is not None and torch.equal(Masks(loaded)["fc1.weight"], keep)
    data = load_dataset("synthetic", n=60, shape=(1, 28, 28), classes=10)
    fine_tune(loaded, data, dataclasses.replace(FINE_TUNE, epochs=1), hooks=[transforms])
    assert int(loaded.fc1.weight[~keep].count_nonzero()) == 0
    assert int(loaded.fc1.weight[keep].count_nonzero()) == int(keep.sum())  # the kept ones trained


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"max_accuracy_drop": 1.5}, "max_accuracy_drop must be a fraction"),
        ({"fine_tuning": {"epochs": 1}}, "fine_tuning must be a TrainConfig or None"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"energy": 3.0}, "energy must be a model -> float objective"),
        ({"example": torch.zeros(0, 1, 8, 8)}, "example must be a non-empty batch"),
    ],
)
def test_context_validation(digits, changes, match):
    with pytest.raises(UserInputError, match=f"CompressionContext: {match}"):
        CompressionContext(digits, **changes)
    with pytest.raises(UserInputError, match="data must be a dnnergy.data.Dataset"):
        CompressionContext(digits.train)


def test_context_budget(digits):
    context = CompressionContext(digits, max_accuracy_drop=0.02)
    with pytest.raises(UserInputError, match="the budget needs reference_accuracy"):
        context.floor()
    assert context.replace(reference_accuracy=0.9).floor() == pytest.approx(0.88)  # 0.90 - 0.02
    assert context.with_reference(0.9).reference_accuracy == 0.9
    assert context.with_reference(0.9).with_reference(0.5).reference_accuracy == 0.9  # the first reference stays
    assert context.replace(max_accuracy_drop=None).with_reference(0.9).reference_accuracy is None
    assert context.replace(max_accuracy_drop=None).within_budget(0.0)
    with pytest.raises(UserInputError, match="eap needs an energy objective"):
        context.require("energy", "eap")
    assert context.calibration(5).shape == (5, 1, 8, 8) and len(context.calibration(10_000)) == 1257
    assert context.examples.shape == (32, 1, 8, 8)  # the first 32 validation images
    assert "tensor" not in repr(context) and "max_accuracy_drop=0.02" in repr(context)
    with pytest.raises(UserInputError, match="build sets energy itself"):
        CompressionContext.build(digits, energy=len)


def _point(**fields) -> Point:
    return Point(val_accuracy=0.9, val_samples=100, test_accuracy=0.8, test_samples=200, energy=10.0, **fields)


def test_record_derived_values_and_validation():
    record = Record("m", {"s": (0.5, 0.9)}, _point(), dataclasses.replace(_point(), energy=2.5, test_accuracy=0.78),
                    steps=(Step(0, "fc1", 0.5, 0.9),), max_accuracy_drop=0.01)
    assert record.params == {"s": [0.5, 0.9]}  # plain data
    assert record.energy_reduction == 4.0  # 10 / 2.5
    assert record.accuracy_drop("test") == pytest.approx(0.02) and record.test_budget_broken  # 2 points > 1
    assert not dataclasses.replace(record, max_accuracy_drop=0.05).test_budget_broken
    with pytest.raises(ValueError, match="Record: method must be a non-empty string"):
        Record("", {}, _point(), _point())
    with pytest.raises(UserInputError, match="Record.params\\['f'\\]: expected plain data"):
        Record("m", {"f": object()}, _point(), _point())
    with pytest.raises(UserInputError, match="Record: expected a dict with format 'dnnergy.record/1'"):
        Record.from_dict({"format": "other"})
    with pytest.raises(ValueError, match="Step: iteration must be a non-negative int"):
        Step(-1)

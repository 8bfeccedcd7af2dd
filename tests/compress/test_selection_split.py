"""Searches decide on the ``select`` split; the budget on ``val`` stays unseen by their decisions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from dnnergy.compress import CompressionContext, get_method
from dnnergy.data import Dataset, load_dataset
from dnnergy.errors import UserInputError

torch.set_num_threads(1)


def _with_select(data: Dataset, wrong_select_labels: bool = False) -> Dataset:
    """``data`` whose first half of val becomes ``select`` (labels shifted by one class if asked)."""
    x, y = data.val.tensors
    half = len(y) // 2
    labels = (y[:half] + 1) % data.num_classes if wrong_select_labels else y[:half]
    return Dataset(data.name, data.train, TensorDataset(x[half:], y[half:]), data.test, data.input_shape,
                   data.num_classes, select=TensorDataset(x[:half], labels))


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = data.train.tensors
    for _ in range(120):
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval(), data


def test_selection_reference_and_floor_come_from_the_select_split(trained):
    model, data = trained
    data = _with_select(data, wrong_select_labels=True)  # every selection image is wrong: accuracy 0
    context = CompressionContext(data, max_accuracy_drop=0.05, fine_tuning=None, reference_accuracy=0.9)
    assert context.selection_split == "select"
    with pytest.raises(UserInputError, match="selection_reference"):
        context.selection_floor()
    measured = context.with_selection_reference(model)
    assert measured.selection_reference == 0.0 and measured.selection_floor() == pytest.approx(-0.05)
    assert measured.floor() == pytest.approx(0.85)  # the validation budget is untouched


def test_without_a_select_split_the_selection_is_validation(trained):
    model, data = trained
    context = CompressionContext(data, max_accuracy_drop=0.05, fine_tuning=None, reference_accuracy=0.9)
    assert context.selection_split == "val"
    assert context.with_selection_reference(model).selection_floor() == pytest.approx(0.85)


def test_eap_takes_every_accept_decision_on_the_select_split(trained):
    model, data = trained
    events = []
    context = CompressionContext.build(_with_select(data), hardware="horowitz45", dataflow="weights_once",
                                       max_accuracy_drop=0.02, fine_tuning=None, progress=events.append)
    result = get_method("eap")(model, context, step=0.3, max_iterations=1, calibration=500)
    evaluated = [e.message for e in events if e.kind == "evaluated"]
    on_val = [m for m in evaluated if not m.startswith("selection accuracy")]
    # every accept decision on select; validation is asked once per iteration, for the budget itself
    assert len(result.record.steps) >= 2 and len(evaluated) - len(on_val) >= len(result.record.steps)
    assert len(on_val) == 1 and on_val[0].startswith("validation accuracy")
    assert result.record.after.val_samples == len(data.val) // 2 + len(data.val) % 2


def test_eap_undoes_an_iteration_that_breaks_the_validation_budget(trained, monkeypatch):
    model, data = trained
    real = CompressionContext.evaluate

    def evaluate(self, m, split="val"):  # validation says every pruned model failed; the selection split is real
        return 0.0 if split == "val" else real(self, m, split)

    monkeypatch.setattr(CompressionContext, "evaluate", evaluate)
    context = CompressionContext.build(_with_select(data), hardware="horowitz45", dataflow="weights_once",
                                       max_accuracy_drop=0.02, fine_tuning=None)
    result = get_method("eap")(model, context, step=0.3, max_iterations=2, calibration=500)
    assert any(step.accepted for step in result.record.steps)  # the selection split accepted layer steps ...
    for name, p in result.model.named_parameters():  # ... and the validation check undid all of them
        assert torch.equal(p, dict(model.named_parameters())[name]), name


def test_elimination_search_decides_on_select_and_leaves_validation_unmeasured(trained):
    model, data = trained
    events = []
    context = CompressionContext.build(_with_select(data), hardware="horowitz45", dataflow="weights_once",
                                       max_accuracy_drop=0.02, fine_tuning=None, progress=events.append)
    result = get_method("eliminate")(model, context, layer=("inputs", "1"), steps=4, samples=300)
    assert result.record.steps and all(s.accuracy is not None for s in result.record.steps)
    assert all(e.message.startswith("selection accuracy") for e in events if e.kind == "evaluated")
    tried = result.record.info["tried"]
    assert all(t["val_accuracy"] is None and 0 <= t["info"]["select_accuracy"] <= 1 for t in tried)

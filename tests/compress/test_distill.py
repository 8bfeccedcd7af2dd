"""The method ``distill``: fine-tuning on soft targets, a zoo student trained from scratch, chains, and its checks."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, check_params, run
from dnnergy.data import load_dataset
from dnnergy.errors import UserInputError
from dnnergy.train import FINE_TUNE, DistillationLoss, pretrained, train
from dnnergy.zoo import create_model
from dnnergy.zoo.lenet import StudentMLP


@pytest.fixture(scope="module")
def mlp(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
    train(model, digits, epochs=6, lr=3e-3, batch_size=32)
    return model.eval()


@pytest.fixture(scope="module")
def context(digits):
    return CompressionContext.build(digits, max_accuracy_drop=0.05, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1),
                                    seed=3)


def test_alpha_zero_is_the_plain_fine_tuning(mlp, context):
    result = run(mlp, "distill", context, alpha=0.0)
    plain = copy.deepcopy(mlp)
    context.fine_tune(plain)  # cross-entropy, the same policy and seed
    for a, b in zip(plain.parameters(), result.model.parameters()):
        assert torch.equal(a, b)
    assert result.record.info["teacher"] == "a copy of the model the compression started from"


def test_the_soft_targets_change_the_fine_tuning(mlp, context):
    soft = run(mlp, "distill", context, alpha=0.9, temperature=4.0).model
    plain = copy.deepcopy(mlp)
    context.fine_tune(plain)
    assert not torch.equal(soft[1].weight, plain[1].weight)


def test_after_structured_pruning_the_teacher_is_the_chains_original(mlp, context):
    result = run(mlp, "structured,distill", context, ratio=0.25)
    stages = result.record.stages
    assert [s.method for s in stages] == ["structured", "distill"]
    assert stages[1].info["teacher"] == "a copy of the model the compression started from"
    # the teacher is the unpruned network: its validation accuracy is the chain's starting one
    assert stages[1].info["teacher_val_accuracy"] == pytest.approx(stages[0].before.val_accuracy)
    assert (result.model[1].out_features, result.model[3].out_features) == (36, 24)  # 25 % of 48 and 32 removed
    assert stages[1].before.to_dict() == stages[0].after.to_dict()


def test_a_zoo_student_trains_from_scratch_on_the_teachers_soft_targets(tmp_path):
    data = load_dataset("mnist")
    teacher = pretrained("lenet300")
    policy = dataclasses.replace(FINE_TUNE, epochs=1, lr=1e-3)
    ctx = CompressionContext.build(data, examples=8, max_accuracy_drop=None, fine_tuning=policy)
    result = run(teacher, "distill", ctx, student="lenet64")
    assert isinstance(result.model, StudentMLP)
    assert result.record.after.weights == 784 * 64 + 64 * 32 + 32 * 10 == 52_544
    assert result.record.after.energy < result.record.before.energy
    # the same recipe by hand: a seeded fresh lenet64 trained with DistillationLoss(teacher, 4, 0.9)
    torch.manual_seed(ctx.seed)
    by_hand = create_model("lenet64")
    train(by_hand, data, dataclasses.replace(policy, seed=ctx.seed),
          loss_fn=DistillationLoss(copy.deepcopy(teacher), 4.0, 0.9))
    for a, b in zip(by_hand.parameters(), result.model.parameters()):
        assert torch.equal(a, b)
    loaded = dnnergy.load(dnnergy.save(tmp_path / "student.dnnergy", result.model, result.record))
    x = data.test.tensors[0][:32]
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model(x))


@pytest.mark.parametrize(("params", "match"), [
    ({"temperature": 0.0}, "temperature must be a finite number > 0"),
    ({"alpha": 2.0}, "alpha must be a fraction in \\[0, 1\\]"),
    ({"student": "lenet1000"}, "lenet100"),  # an unknown zoo name lists the close ones
    ({"teacher": "no/such/file.dnnergy"}, "neither a file nor a zoo model name"),
])
def test_bad_parameters_fail_before_any_work(params, match):
    with pytest.raises(UserInputError, match=match):
        check_params("distill", params)


def test_a_student_that_does_not_fit_the_data_is_named(mlp, context):
    with pytest.raises(UserInputError, match="student 'lenet100' does not accept inputs of shape \\(1, 1, 8, 8\\)"):
        run(mlp, "distill", context, student="lenet100")


def test_a_zoo_teacher_without_a_recipe_for_the_data_is_refused(mlp, context):
    with pytest.raises(UserInputError, match="no pretraining recipe for model 'lenet300' on dataset 'digits'"):
        run(mlp, "distill", context, teacher="lenet300")


def test_distillation_needs_a_fine_tuning_policy(mlp, context):
    with pytest.raises(UserInputError, match="needs a fine-tuning policy"):
        run(mlp, "distill", context.replace(fine_tuning=None))


FACTORY = """
import torch.nn as nn

def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
"""


def test_a_teacher_from_a_file_gives_the_same_soft_targets_as_the_model_it_holds(mlp, context, tmp_path, monkeypatch):
    from dnnergy.compress.artifact import build_architecture

    (tmp_path / "distill_models.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_architecture("distill_models:mlp")
    model.load_state_dict(mlp.state_dict())
    path = dnnergy.save(tmp_path / "teacher.dnnergy", model)
    from_file = run(model, "distill", context, teacher=str(path))
    from_copy = run(model, "distill", context)
    assert from_file.record.info["teacher"] == f"file {path}"
    for a, b in zip(from_file.model.parameters(), from_copy.model.parameters()):
        assert torch.equal(a, b)

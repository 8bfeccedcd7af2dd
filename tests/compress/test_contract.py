"""The compression contract, for every registered method (a new method is tested the day it is registered).

Each method runs on a tiny trained MLP and a tiny CNN for scikit-learn's digits. Its record
must match independent measurements of the returned model, round-trip through JSON, and
the saved file must reload (through the architecture, the edit log, the weights, the
hints and the transforms) to a model with identical outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import textwrap

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, Outcome, Record, Step, contract, get_method, list_methods, register_method, run
from dnnergy.errors import UserInputError
from dnnergy.train import FINE_TUNE, evaluate, train

MODELS = """
import torch.nn as nn

def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))

def cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(scope="module")
def factories(tmp_path_factory):
    folder = tmp_path_factory.mktemp("factories")
    (folder / "contract_models.py").write_text(textwrap.dedent(MODELS))
    sys.path.insert(0, str(folder))
    yield "contract_models"
    sys.path.remove(str(folder))
    sys.modules.pop("contract_models", None)


@pytest.fixture(scope="module")
def trained(factories, digits):
    """``{"mlp": model, "cnn": model}`` trained on digits, each knowing its architecture (module:factory)."""
    from dnnergy.compress.artifact import build_architecture

    out = {}
    for name in ("mlp", "cnn"):
        torch.manual_seed(0)
        model = build_architecture(f"{factories}:{name}")
        train(model, digits, epochs=8, lr=3e-3, batch_size=32)
        out[name] = model.eval()
    return out


@pytest.fixture(scope="module")
def context(digits):
    return CompressionContext.build(digits, max_accuracy_drop=0.05, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1))


def _nonzero_weights(model: nn.Module) -> int:
    return sum(int(m.weight.count_nonzero()) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("name", list_methods())
def test_every_method_keeps_the_contract(name, kind, trained, context, digits, tmp_path):
    model = trained[kind]
    original = copy.deepcopy(model.state_dict())
    result = get_method(name)(model, context)

    # the input model is untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())
    record = result.record
    assert isinstance(record, Record) and record.method == name
    assert set(record.params) == {p.name for p in get_method(name).params}  # every parameter, defaults included
    assert record.seed == context.seed and record.version == dnnergy.__version__ and record.max_accuracy_drop == 0.05
    # before / after agree with independent measurements of the two models
    x_val, y_val = digits.val.tensors
    assert record.before.val_accuracy == evaluate(model, digits.val)
    assert record.after.val_accuracy == evaluate(result.model, digits.val)
    assert record.after.test_accuracy == evaluate(result.model, digits.test)
    assert (record.before.val_samples, record.after.test_samples) == (180, 360)  # digits: 1,257 / 180 / 360
    assert record.after.energy == pytest.approx(context.energy(result.model))
    assert record.after.energy_unit == "MAC-normalized"
    assert record.after.nonzero_weights == _nonzero_weights(result.model)
    assert record.before.nonzero_weights == _nonzero_weights(model)
    assert record.input_shape == (1, 1, 8, 8)
    # plain data, through JSON and back
    text = json.dumps(record.to_dict())
    assert Record.from_dict(json.loads(text)).to_dict() == record.to_dict()

    # the saved file rebuilds a model with identical outputs, and the same record
    path = dnnergy.save(tmp_path / f"{name}.dnnergy", result.model, record)
    loaded = dnnergy.load(path)
    x = digits.test.tensors[0]
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model.eval()(x))
    assert loaded.record.to_dict() == record.to_dict()
    assert loaded.input_shape == (1, 1, 8, 8)
    assert context.energy(loaded.model) == pytest.approx(record.after.energy)


def test_run_chains_methods_and_keeps_each_stage(trained, context, digits):
    model = trained["mlp"]
    result = run(model, "magnitude,structured", context, sparsity=0.5, scope="global", ratio=0.25)
    record = result.record
    assert record.method == "magnitude,structured" and [s.method for s in record.stages] == ["magnitude", "structured"]
    assert record.stages[0].params["sparsity"] == 0.5 and record.stages[1].params["ratio"] == 0.25
    assert record.before.to_dict() == record.stages[0].before.to_dict()
    assert record.stages[1].before.to_dict() == record.stages[0].after.to_dict()  # each stage starts from the last
    assert record.after.to_dict() == record.stages[1].after.to_dict()
    # structure: 25 % of fc1's 48 and fc2's 32 neurons removed (12 and 8); the masks still hold half the weights at zero
    fc1, fc2 = result.model[1], result.model[3]
    assert (fc1.out_features, fc2.out_features) == (36, 24)
    assert record.after.nonzero_weights == _nonzero_weights(result.model) < 64 * 36 + 36 * 24 + 24 * 10
    assert Record.from_dict(json.loads(json.dumps(record.to_dict()))).to_dict() == record.to_dict()


@pytest.mark.parametrize(
    ("methods", "params", "match"),
    [
        ("magnitude,eap", {"sparsity": 1.5}, "magnitude: sparsity must be a fraction in \\[0, 1\\]"),
        ("magnitude", {"scope": "row"}, "magnitude: scope must be 'layer' or 'global'"),
        ("eap", {"calibration": 0}, "eap: calibration must be a positive int"),
        ("eliminate", {"plan": {"fc1": 0}}, "eliminate: plan\\['fc1'\\] must be a positive int"),
        ("activation", {"threshold": (0.3, 0.1)}, "increasing schedule"),
        ("snapea", {"samples": -1}, "snapea: samples must be a positive int"),
    ],
)
def test_bad_parameter_values_fail_before_any_work(methods, params, match, trained, context, monkeypatch):
    from dnnergy.compress import check_params

    with pytest.raises(UserInputError, match=match):
        check_params(methods, params)
    monkeypatch.setattr(CompressionContext, "measure", lambda *a, **k: pytest.fail("measured before checking"))
    with pytest.raises(UserInputError, match=match):
        run(trained["mlp"], methods, context, **params)


def test_run_routes_parameters_and_refuses_unknown_ones(trained, context):
    with pytest.raises(UserInputError, match="no method of 'magnitude' takes a parameter 'ratio'"):
        run(trained["mlp"], "magnitude", context, ratio=0.5)
    with pytest.raises(UserInputError, match="unknown compression method 'magnitud'; did you mean magnitude"):
        run(trained["mlp"], "magnitud", context)
    with pytest.raises(UserInputError, match="at least one registered method"):
        run(trained["mlp"], "magnitude,", context)
    with pytest.raises(UserInputError, match="magnitude: no parameter 'ratio'"):
        get_method("magnitude")(trained["mlp"], context, ratio=0.5)


def test_the_budget_is_measured_from_the_first_model_of_a_chain(trained, context, digits, monkeypatch):
    """Both stages of a chain see the reference accuracy of the chain's input, not of their own input."""
    seen = []

    def probe(model, context, *, level: float = 0.0) -> Outcome:
        seen.append(context.reference_accuracy)
        with torch.no_grad():
            model[-1].bias.add_(level)  # shifting every logit by the same amount keeps the predictions
        return Outcome(model, "probe")

    monkeypatch.setattr(contract, "METHODS", contract.METHODS.copy())
    register_method("probe")(probe)
    run(trained["mlp"], "probe,probe", context)
    assert seen == [evaluate(trained["mlp"], digits.val)] * 2


def test_a_new_method_is_one_registration(trained, context, monkeypatch):
    monkeypatch.setattr(contract, "METHODS", contract.METHODS.copy())

    @register_method("halve", strength="ratio")
    def halve(model, context, *, ratio: float = 0.5) -> Outcome:
        """Scale every weight by ``ratio`` (a toy)."""
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(ratio)
        return Outcome(model, f"weights x {ratio}", (Step(0, "", ratio),))

    assert "halve" in list_methods() and get_method("halve") is halve
    assert halve.summary == "Scale every weight by ``ratio`` (a toy)." and halve.strength == "ratio"
    result = run(trained["mlp"], "halve", context, ratio=0.25)
    assert torch.equal(result.model[1].weight, trained["mlp"][1].weight * 0.25)
    assert result.record.summary == "weights x 0.25" and result.record.steps == (Step(0, "", 0.25),)
    with pytest.raises(RuntimeError, match="'halve' is already registered"):
        register_method("halve")(halve.impl)


@pytest.mark.parametrize(
    ("impl", "match"),
    [
        (lambda model, context, ratio=0.5: None, "keyword-only with a default"),
        (lambda model, context, *, ratio: None, "keyword-only with a default"),
        (lambda net, ctx, *, ratio=0.5: None, r"must start \(model, context"),
    ],
)
def test_register_method_checks_the_signature(impl, match):
    with pytest.raises(TypeError, match=match):
        register_method("bad_signature")(impl)


def test_strength_must_be_a_parameter():
    with pytest.raises(TypeError, match="strength 'sparsity' is not one of its parameters"):
        register_method("no_strength", strength="sparsity")(lambda model, context, *, ratio=0.5: None)


def test_an_implementation_must_return_an_outcome(trained, context, monkeypatch):
    monkeypatch.setattr(contract, "METHODS", contract.METHODS.copy())
    register_method("broken")(lambda model, context: model)
    with pytest.raises(TypeError, match="returned Sequential; implementations return Outcome"):
        run(trained["mlp"], "broken", context)

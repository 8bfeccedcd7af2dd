"""The model registry: ModelInfo validation, register/list/create/model_info, and the close-name errors."""

from __future__ import annotations

import fnmatch
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from dnnergy.errors import UserInputError
from dnnergy.zoo import ModelInfo, create_model, list_models, model_info, register_model
from dnnergy.zoo import _registry


@pytest.fixture
def scratch_registry(monkeypatch):
    """A private copy of the registry so test registrations never leak into other tests."""
    monkeypatch.setattr(_registry, "_MODELS", _registry._MODELS.copy())


# -- ModelInfo --------------------------------------------------------------------------


def test_model_info_valid_and_read_only():
    info = ModelInfo("tiny", [1, 784], "one layer", {"macs": 7840, "source": "784*10"})
    assert info.input_shape == (1, 784)
    assert info.published["macs"] == 7840
    with pytest.raises(TypeError):
        info.published["macs"] = 1  # a mapping proxy: the record cannot be changed through it
    with pytest.raises(AttributeError):
        info.name = "other"
    assert hash(info) == hash(ModelInfo("tiny", (1, 784), "one layer", {}))  # hashed by name, shape, description


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="ResNet"), "ModelInfo: name must be lowercase"),
        (dict(name="9net"), "ModelInfo: name must be lowercase"),
        (dict(input_shape=()), "input_shape must be a non-empty tuple of positive ints"),
        (dict(input_shape=(1, 0, 28)), "input_shape must be a non-empty tuple of positive ints"),
        (dict(input_shape=(1, 2.0)), "input_shape must be a non-empty tuple of positive ints"),
        (dict(input_shape="1x784"), "input_shape must be a non-empty tuple of positive ints"),
        (dict(description="  "), "description must be a non-empty string"),
        (dict(published={"flops": 1, "source": "x"}), r"published has unknown keys \['flops'\]"),
        (dict(published={"macs": -5, "source": "x"}), r"published\['macs'\] must be a positive number"),
        (dict(published={"params": "61M", "source": "x"}), r"published\['params'\] must be a positive number"),
        (dict(published={"weights": 10}), "published figures need a 'source'"),
    ],
)
def test_model_info_invalid(kwargs, match):
    args = dict(name="tiny", input_shape=(1, 784), description="one layer", published={}) | kwargs
    with pytest.raises(ValueError, match=match):
        ModelInfo(**args)


@given(st.lists(st.integers(1, 512), min_size=1, max_size=5))
def test_model_info_accepts_any_positive_shape(shape):
    assert ModelInfo("tiny", shape, "d").input_shape == tuple(shape)


@given(st.lists(st.integers(1, 512), min_size=1, max_size=5), st.integers(0, 4), st.integers(-3, 0))
def test_model_info_refuses_any_non_positive_dimension(shape, index, bad):
    shape[index % len(shape)] = bad
    with pytest.raises(ValueError, match="ModelInfo 'tiny': input_shape"):
        ModelInfo("tiny", shape, "d")


# -- register / list / create -----------------------------------------------------------


def test_register_returns_factory_unchanged_and_refuses_duplicates(scratch_registry):
    def tiny(num_classes: int = 10) -> nn.Module:
        return nn.Linear(784, num_classes)

    decorated = register_model(input_shape=(1, 784), description="one layer")(tiny)
    assert decorated is tiny
    assert "tiny" in list_models()
    assert model_info("tiny").input_shape == (1, 784)
    assert create_model("tiny", num_classes=3).out_features == 3
    with pytest.raises(RuntimeError, match="'tiny' is already registered"):
        register_model(input_shape=(1, 784), description="again")(tiny)
    register_model("tiny2", input_shape=(1, 784), description="explicit name")(tiny)
    assert model_info("tiny2").description == "explicit name"
    register_model("tiny2", input_shape=(1, 784), description="replaced", override=True)(tiny)
    assert model_info("tiny2").description == "replaced"


def test_register_validates_at_decoration(scratch_registry):
    with pytest.raises(ValueError, match="ModelInfo 'bad': published figures need a 'source'"):
        register_model("bad", input_shape=(1, 3), description="d", published={"macs": 1})(lambda: nn.Identity())
    assert "bad" not in list_models()


def test_create_model_rejects_unknown_options():
    with pytest.raises(UserInputError, match=r"model 'lenet5': got an unexpected keyword argument 'classes' \(its options: num_classes\)"):
        create_model("lenet5", classes=3)


def test_list_models_fnmatch():
    everything = list_models()
    assert everything == sorted(everything)
    assert list_models("resnet*") == [n for n in everything if fnmatch.fnmatch(n, "resnet*")] == ["resnet18", "resnet50"]
    assert list_models("squeezenet1_?") == ["squeezenet1_0", "squeezenet1_1"]
    assert list_models("no_such_*") == []


@pytest.mark.parametrize("call", [create_model, model_info])
def test_unknown_name_names_close_matches(call):
    with pytest.raises(UserInputError, match=r"unknown model 'resnet5'; did you mean .*resnet50") as info:
        call("resnet5")
    assert "resnet18" in str(info.value)
    with pytest.raises(UserInputError, match=r"unknown model 'mobilenetv2'; did you mean mobilenet_v2"):
        call("mobilenetv2")


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(UserInputError, match=r"unknown model 'zzzz' \(known: alexnet, caffenet"):
        create_model("zzzz")


def test_created_models_record_their_architecture():
    model = create_model("lenet5", num_classes=3)
    assert model.dnnergy_architecture == {"zoo": "lenet5", "kwargs": {"num_classes": 3}}
    assert create_model("lenet300").dnnergy_architecture == {"zoo": "lenet300", "kwargs": {}}
    record = json.loads(json.dumps(model.dnnergy_architecture))  # plain data: survives JSON
    rebuilt = create_model(record["zoo"], **record["kwargs"])
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes
    assert shapes["fc2.weight"] == (3, 500)  # LeNet-5's 500-unit layer feeds the 3 classes asked for

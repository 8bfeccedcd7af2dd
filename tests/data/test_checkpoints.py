"""Checkpoint cache: round trip, keys, corrupt and unsafe files, unwritable directories, recipes."""

from __future__ import annotations

import collections
import dataclasses
import os

import platformdirs
import pytest
import torch
from torch import nn

from dnnergy.data import checkpoints as checkpoints_mod
from dnnergy.data import (
    CACHE_ENV,
    TrainConfig,
    cache_dir,
    checkpoint_path,
    evaluate,
    list_pretrained,
    load_dataset,
    pretrained,
    synthetic,
    train_cached,
)
from dnnergy.errors import UserInputError

CONFIG = TrainConfig(epochs=10, lr=3e-2, batch_size=32, seed=0)


def _net(hidden: int = 8) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 4))


@pytest.fixture(scope="module")
def toy():
    return synthetic(n=120, shape=(1, 4, 4), classes=4, seed=0, noise=0.25)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path / "checkpoints"


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _no_training(*args, **kwargs):
    raise AssertionError("train() must not run when the checkpoint is cached")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path / "checkpoints"
    monkeypatch.delenv(CACHE_ENV)
    assert str(cache_dir()) == os.path.join(platformdirs.user_cache_dir("dnnergy"), "checkpoints")


def test_round_trip_trains_once_then_loads(cache, toy, monkeypatch):
    first = train_cached("toy", _net, toy, CONFIG)
    path = checkpoint_path("toy", _net(), toy, CONFIG)
    assert _files(cache) == [path.name]  # no temporary files left behind
    assert path.name.startswith("toy-synthetic-seed0-") and path.suffix == ".pt"
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == 1 and 0.0 <= payload["test_accuracy"] <= 1.0
    assert payload["test_accuracy"] == evaluate(first, toy)
    monkeypatch.setattr(checkpoints_mod, "train", _no_training)
    second = train_cached("toy", _net, toy, CONFIG)
    assert not second.training
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key


def test_key_covers_model_data_and_config(toy):
    base = checkpoint_path("toy", _net(), toy, CONFIG)
    assert base == checkpoint_path("toy", _net(), toy, CONFIG)
    others = [
        checkpoint_path("toy", _net(), toy, dataclasses.replace(CONFIG, lr=2e-2)),
        checkpoint_path("toy", _net(), toy, dataclasses.replace(CONFIG, seed=1)),
        checkpoint_path("toy", _net(hidden=9), toy, CONFIG),
        checkpoint_path("toy", _net(), synthetic(n=120, shape=(1, 4, 4), classes=4, seed=1, noise=0.25), CONFIG),
        checkpoint_path("toy2", _net(), toy, CONFIG),
    ]
    assert len({base, *others}) == 6
    assert others[1].name.startswith("toy-synthetic-seed1-")
    with pytest.raises(UserInputError, match="checkpoint name must be letters, digits"):
        checkpoint_path("../evil", _net(), toy, CONFIG)


def test_retrain_ignores_the_cache(cache, toy, monkeypatch):
    train_cached("toy", _net, toy, CONFIG)
    monkeypatch.setattr(checkpoints_mod, "train", _no_training)
    with pytest.raises(AssertionError, match="must not run"):
        train_cached("toy", _net, toy, CONFIG, retrain=True)


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a checkpoint",  # garbage bytes
        {"format": 1, "state_dict": {"0.weight": torch.zeros(3)}},  # wrong architecture
        {"format": 99, "state_dict": {}},  # unknown layout
        collections.OrderedDict(a=1),  # readable but not ours
    ],
    ids=["garbage", "wrong-shapes", "wrong-format", "foreign"],
)
def test_corrupt_checkpoint_is_retrained_with_a_warning(cache, toy, content):
    reference = train_cached("toy", _net, toy, CONFIG)
    path = checkpoint_path("toy", _net(), toy, CONFIG)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        _write(path, content)
    with pytest.warns(UserWarning, match=r"cached checkpoint .*toy-synthetic-seed0-.*\.pt is unreadable .*retraining"):
        again = train_cached("toy", _net, toy, CONFIG)
    # Retraining is deterministic, so the repaired model equals the first one ...
    for key, value in reference.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    # ... and the file was overwritten with a loadable checkpoint.
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["1.weight"], reference[1].weight)


class _Payload:
    """An arbitrary Python object: a pickle of it must never be unpickled."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_is_never_executed(cache, toy):
    path = checkpoint_path("toy", _net(), toy, CONFIG)
    _write(path, {"format": 1, "state_dict": _Payload()})
    with pytest.warns(UserWarning, match="unreadable \\(UnpicklingError"):
        train_cached("toy", _net, toy, CONFIG)


def test_unwritable_cache_still_returns_the_trained_model(tmp_path, monkeypatch, toy):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with pytest.warns(UserWarning, match=f"could not write checkpoint .*set {CACHE_ENV} to a writable"):
        model = train_cached("toy", _net, toy, CONFIG)
    assert evaluate(model, toy) > 0.5  # trained: chance is 0.25


def test_pretrained_knows_only_its_recipes():
    assert list_pretrained() == [("lenet300", "mnist"), ("lenet5", "mnist")]
    with pytest.raises(UserInputError, match="no pretraining recipe for model 'lenet5' on dataset 'digits'; "
                                             "available: lenet300 on mnist, lenet5 on mnist"):
        pretrained("lenet5", "digits")


@pytest.mark.slow
def test_pretrained_lenet300_reaches_95_percent(cache):
    # Han et al. 2015 report 98.4 % with all 60,000 MNIST images; 3,500 give about 95.5 %.
    model = pretrained("lenet300")
    assert evaluate(model, load_dataset("mnist")) >= 0.95
    assert len(_files(cache)) == 1

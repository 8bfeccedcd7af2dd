"""Checkpoint cache: round trip, keys, corrupt, foreign and unsafe files, unwritable directories, recipes."""

from __future__ import annotations

import collections
import dataclasses
import importlib
import os

import platformdirs
import pytest
import torch
from torch import nn

from dnnergy.data import load_dataset, synthetic
from dnnergy.errors import UserInputError
from dnnergy.io import read_container, write_container
from dnnergy.train import (
    CACHE_ENV,
    TrainConfig,
    cache_dir,
    checkpoint_path,
    evaluate,
    list_pretrained,
    pretrained,
    train_cached,
)

# NB: ``dnnergy.train.pretrained`` is the function (re-exported by the package), which shadows
# the module of the same name as an attribute: fetch the module itself to patch its ``train``.
pretrained_mod = importlib.import_module("dnnergy.train.pretrained")

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
    assert path.name.startswith("toy-synthetic-seed0-") and path.suffix == ".dnnergy"
    container = read_container(path)
    assert container.kind == "checkpoint" and 0.0 <= container.header["test_accuracy"] <= 1.0
    assert container.header["test_accuracy"] == evaluate(first, toy)
    assert container.header["seconds"] > 0 and container.header["cpu_seconds"] > 0
    assert set(container.tensors) == set(first.state_dict())
    monkeypatch.setattr(pretrained_mod, "train", _no_training)
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
    monkeypatch.setattr(pretrained_mod, "train", _no_training)
    with pytest.raises(AssertionError, match="must not run"):
        train_cached("toy", _net, toy, CONFIG, retrain=True)


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-10])


@pytest.mark.parametrize(
    "spoil, reason",
    [
        (lambda p: p.write_bytes(b"this is not a checkpoint"), "not a dnnergy file"),  # garbage bytes
        (lambda p: write_container(p, "checkpoint", {}, {"0.weight": torch.zeros(3)}), "RuntimeError"),  # wrong architecture
        (lambda p: write_container(p, "record", {}, {}), "is a record file, expected checkpoint"),  # not a checkpoint
        (_truncate, "truncated|corrupted"),  # damaged in transit
        (lambda p: _write(p, collections.OrderedDict(a=1)), "a PyTorch checkpoint, not a dnnergy file"),  # foreign
        (lambda p: _write(p, {"format": 1, "state_dict": {"0.weight": torch.zeros(3)}}), "a PyTorch checkpoint"),  # old layout
    ],
    ids=["garbage", "wrong-shapes", "wrong-kind", "truncated", "foreign", "old-torch-save"],
)
def test_corrupt_checkpoint_is_retrained_with_a_warning(cache, toy, spoil, reason):
    reference = train_cached("toy", _net, toy, CONFIG)
    path = checkpoint_path("toy", _net(), toy, CONFIG)
    spoil(path)
    with pytest.warns(UserWarning, match=rf"cached checkpoint .*toy-synthetic-seed0-.*\.dnnergy is unreadable "
                                         rf"\(.*({reason}).*\); retraining"):
        again = train_cached("toy", _net, toy, CONFIG)
    # Retraining is deterministic, so the repaired model equals the first one ...
    for key, value in reference.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    # ... and the file was overwritten with a loadable checkpoint.
    assert torch.equal(read_container(path, kind="checkpoint").tensors["1.weight"], reference[1].weight)


class _Payload:
    """An arbitrary Python object: unpickling it would create the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def test_unsafe_pickle_is_never_executed(cache, toy, tmp_path):
    marker = tmp_path / "pwned"
    path = checkpoint_path("toy", _net(), toy, CONFIG)
    _write(path, {"format": 1, "state_dict": _Payload(marker)})
    with pytest.warns(UserWarning, match="unreadable \\(UserInputError: .*; retraining"):
        train_cached("toy", _net, toy, CONFIG)
    assert not marker.exists()  # the pickle was never loaded (what the warning calls it: see the test above)
    assert read_container(path).kind == "checkpoint"  # replaced by a container


def test_unwritable_cache_still_returns_the_trained_model(tmp_path, monkeypatch, toy):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    with pytest.warns(UserWarning, match=f"could not write checkpoint .*set {CACHE_ENV} to a writable"):
        model = train_cached("toy", _net, toy, CONFIG)
    assert evaluate(model, toy) > 0.5  # trained: chance is 0.25


def test_pretrained_knows_only_its_recipes():
    assert list_pretrained() == [("lenet300", "fashion-mnist"), ("lenet300", "mnist"), ("lenet5", "fashion-mnist"),
                                 ("lenet5", "mnist")]
    with pytest.raises(UserInputError, match="no pretraining recipe for model 'lenet5' on dataset 'digits'; "
                                             "available: lenet300 on fashion-mnist, lenet300 on mnist, lenet5 on fashion-mnist, lenet5 on mnist"):
        pretrained("lenet5", "digits")


@pytest.mark.slow
def test_pretrained_lenet300_reaches_95_percent(cache):
    # Han et al. 2015 report 98.4 % with all 60,000 MNIST images; 3,500 give about 95.5 %.
    model = pretrained("lenet300")
    assert evaluate(model, load_dataset("mnist")) >= 0.95
    assert len(_files(cache)) == 1

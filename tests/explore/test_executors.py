"""The executor interface: local (serial, spawned process pool) and Ray give the same results for the same seed."""

from __future__ import annotations

import dataclasses
import importlib.util
import operator
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from dnnergy.compress import CompressionContext
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError
from dnnergy.explore import Budget, LocalExecutor, as_executor, elimination_search, netadapt_search, tradeoff
from dnnergy.explore.executors import RayExecutor, runs_here
from dnnergy.metrics import macs_objective
from dnnergy.train import FINE_TUNE

torch.set_num_threads(1)

HAS_RAY = importlib.util.find_spec("ray") is not None


def _data():
    return synthetic(n=200, shape=(1, 4, 4), classes=4, noise=0.3)


def _model(descend, data):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
    return descend(model, *data.train.tensors, 150)


def _context(data):
    x = data.val.tensors[0][:4]
    return CompressionContext(data, energy=macs_objective(x[:1], nonzero=False), example=x, max_accuracy_drop=None,
                              fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1, lr=1e-2, batch_size=32))


def test_local_executor_serial_and_spawned_pool_keep_the_order():
    items = [-3, 1, -2, 5]
    assert LocalExecutor().map(abs, items) == [3, 1, 2, 5]
    assert LocalExecutor(workers=2).map(abs, items) == [3, 1, 2, 5]  # spawned processes, results in item order
    assert LocalExecutor().map(operator.add, [1, 2], [10, 20]) == [11, 22]


def test_as_executor_resolves_names_and_passes_objects_through():
    assert isinstance(as_executor(None), LocalExecutor) and as_executor("local", workers=3).workers == 3
    with ThreadPoolExecutor(1) as pool:
        assert as_executor(pool) is pool
    assert runs_here(None) and runs_here("local") and runs_here(LocalExecutor(1)) and not runs_here(LocalExecutor(2))
    with pytest.raises(UserInputError, match="executor must be one of local, ray"):
        as_executor("dask")
    with pytest.raises(UserInputError, match="--ray-address needs --executor ray"):
        as_executor("local", address="auto")
    with pytest.raises(UserInputError, match="workers must be an int >= 0"):
        LocalExecutor(-1)


def test_a_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserInputError, match=r"pip install 'dnnergy\[ray\]'"):
        as_executor("ray")


def test_tradeoff_and_elimination_take_executor_names(descend):
    data = _data()
    model, context = _model(descend, data), _context(data).replace(fine_tuning=None)
    serial = tradeoff(model, context, "magnitude", [0.25, 0.75], latency=False)
    named = tradeoff(model, context, "magnitude", [0.25, 0.75], latency=False, executor="local")
    assert [p.to_dict() for p in named] == [p.to_dict() for p in serial]
    budgeted = context.replace(max_accuracy_drop=0.2)
    with ThreadPoolExecutor(2) as pool:  # the proposals of each round go through the executor's map
        pooled = elimination_search(model, budgeted, ["1", "3"], steps=4, samples=64, executor=pool)
    plain = elimination_search(model, budgeted, ["1", "3"], steps=4, samples=64)
    assert pooled.plan == plain.plan and [p.to_dict() for p in pooled.accepted] == [p.to_dict() for p in plain.accepted]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (optional extra: pip install 'dnnergy[ray]')")
def test_netadapt_on_ray_equals_local(descend):
    """Same seed, same results: every proposal's resource and accuracy, every choice and the adapted weights."""
    data = _data()
    model, context = _model(descend, data), _context(data)
    local = netadapt_search(model, context, Budget("macs", 0.6), step=0.15, short_term=64)
    with RayExecutor(num_cpus=2) as executor:
        remote = netadapt_search(model, context, Budget("macs", 0.6), step=0.15, short_term=64, executor=executor)
        squares = executor.map(abs, [-1, 2, -3])
    assert squares == [1, 2, 3]
    assert len(local.history.iterations) >= 2
    assert remote.history.to_dict() == local.history.to_dict()
    for (name, a), b in zip(local.model.state_dict().items(), remote.model.state_dict().values()):
        assert torch.equal(a, b), name

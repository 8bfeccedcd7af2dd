"""NetAdapt (Yang et al., ECCV 2018): budgets, proposals checked against hand MAC counts, the greedy choice, resuming."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dnnergy.compress import CompressionContext, get_method
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError
from dnnergy.explore import Budget, History, netadapt_search
from dnnergy.metrics import macs_objective
from dnnergy.train import FINE_TUNE

torch.set_num_threads(1)

A, B = 12, 8  # hidden sizes of the test MLP 16 -> A -> B -> 4


def hand_macs(a: int, b: int) -> int:
    """MACs of one sample through 16 -> a -> b -> 4: 16a + ab + 4b (A, B = 12, 8: 192 + 96 + 32 = 320)."""
    return 16 * a + a * b + 4 * b


def mlp(descend, data) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, A), nn.ReLU(), nn.Linear(A, B), nn.ReLU(), nn.Linear(B, 4))
    x, y = data.train.tensors
    return descend(model, x, y, 150)


@pytest.fixture(scope="module")
def data():
    return synthetic(n=200, shape=(1, 4, 4), classes=4, noise=0.3)  # 140 train / 20 val / 40 test


def context(data, **fields) -> CompressionContext:
    """Resource: dense MACs of one sample (hand-countable); fine-tuning one short epoch when asked."""
    x = data.val.tensors[0][:4]
    return CompressionContext(data, **{"energy": macs_objective(x[:1], nonzero=False), "example": x,
                                       "max_accuracy_drop": None, "fine_tuning": None, **fields})


def sizes(model: nn.Module) -> tuple[int, int]:
    return model[1].out_features, model[3].out_features


def test_budget_met_and_every_proposal_is_just_enough(descend, data):
    model = mlp(descend, data)
    assert hand_macs(*sizes(model)) == 320
    adapted = netadapt_search(model, context(data), Budget("macs", 0.5), step=0.1)
    history = adapted.history
    assert history.original == 320 and history.budget == 160 and history.stopped == "budget met"
    assert history.met and hand_macs(*sizes(adapted.model)) == history.resource <= 160
    a, b = A, B
    for i, it in enumerate(history.iterations):
        assert it.target == max(160, (hand_macs(a, b)) - 32)  # 10 % of 320 per iteration, never below the budget
        for p in it.proposals:  # each claims the MACs its shapes give, removes just enough, and runs
            def after(n, p=p, a=a, b=b):
                return hand_macs(a - n, b) if p.layer == "1" else hand_macs(a, b - n)
            assert p.size == (a if p.layer == "1" else b)
            assert p.resource == after(p.removed) <= it.target < after(p.removed - 1)
            assert 0.0 <= p.accuracy <= 1.0
        assert it.accuracy == max(p.accuracy for p in it.proposals)
        chosen = next(p for p in it.proposals if p.layer == it.layer)
        assert len(it.indices) == chosen.removed and it.resource == chosen.resource
        a, b = (a - chosen.removed, b) if it.layer == "1" else (a, b - chosen.removed)
    assert sizes(adapted.model) == (a, b)
    assert sizes(model) == (A, B)  # the input model is untouched
    x = data.test.tensors[0]
    assert adapted.model(x).shape == (len(x), 4)


def test_a_budget_below_the_smallest_network_is_a_clear_error(descend, data):
    # one neuron left in each hidden layer: 16 + 1 + 4 = 21 MACs; 0.05 * 320 = 16 is out of reach
    with pytest.raises(UserInputError, match=r"macs budget 16 MACs is below the smallest network .*21 MACs"):
        netadapt_search(mlp(descend, data), context(data), Budget("macs", 0.05))
    adapted = netadapt_search(mlp(descend, data), context(data), Budget("macs", 0.07), step=0.5)  # 22.4: reachable
    assert adapted.history.met and adapted.history.resource >= 21


def test_a_run_that_cannot_go_on_says_why(descend, data):
    adapted = netadapt_search(mlp(descend, data), context(data), Budget("macs", 0.5), step=0.1, max_iterations=2)
    assert len(adapted.history.iterations) == 2 and not adapted.history.met
    assert adapted.history.stopped == "max_iterations (2) reached before the budget"


def test_the_greedy_choice_keeps_the_layer_whose_removal_costs_nothing(data):
    """Hidden layer "1" has 4 dead neurons (zero weights in and out: the lowest L2 norms); removing them changes no
    output, while any neuron of layer "3" carries signal. The known best proposal is layer "1"."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, A), nn.ReLU(), nn.Linear(A, B), nn.ReLU(), nn.Linear(B, 4))
    with torch.no_grad():
        for layer in (model[1], model[3], model[5]):
            layer.weight.mul_(3.0)
        model[1].weight[:4] = 0.0
        model[1].bias[:4] = 0.0
        model[3].weight[:, :4] = 0.0
    x = data.val.tensors[0]
    reference = model(x)
    # cut 10 % of 320 MACs: layer "1" needs ceil(32 / (16 + 8)) = 2 neurons, layer "3" ceil(32 / (12 + 4)) = 2
    adapted = netadapt_search(model, context(data), Budget("macs", 0.9), step=0.1)
    (it,) = adapted.history.iterations
    assert {p.layer: p.removed for p in it.proposals} == {"1": 2, "3": 2}
    assert it.layer == "1" and set(it.indices) <= {0, 1, 2, 3}
    assert torch.allclose(adapted.model(x), reference, atol=1e-5)
    accuracy = float((reference.argmax(1) == data.val.tensors[1]).float().mean())
    assert it.accuracy == pytest.approx(accuracy)


def test_the_greedy_choice_follows_the_accuracy_not_the_module_order(descend, data, monkeypatch):
    """A scripted accuracy, 1 - 0.05 per neuron gone from layer "1" - 0.01 per neuron gone from layer "3": every
    iteration must keep layer "3" (listed second) until it cannot reach the target alone."""
    def scripted(self, model, split="val"):
        a, b = sizes(model)
        return 1.0 - 0.05 * (A - a) - 0.01 * (B - b)

    monkeypatch.setattr(CompressionContext, "evaluate", scripted)
    adapted = netadapt_search(mlp(descend, data), context(data), Budget("macs", 0.6), step=0.1)
    a, b = A, B
    for it in adapted.history.iterations:
        by_layer = {p.layer: p for p in it.proposals}
        # "3" loses ceil(32 / (a + 4)) <= 2 neurons (<= 0.02), "1" ceil(32 / (16 + b)) >= 2 (>= 0.10): "3" whenever it can
        assert it.layer == ("3" if "3" in by_layer else "1")
        for p in it.proposals:
            gone = (A - a + p.removed, B - b) if p.layer == "1" else (A - a, B - b + p.removed)
            assert p.accuracy == pytest.approx(1.0 - 0.05 * gone[0] - 0.01 * gone[1])
        a, b = (a - by_layer["1"].removed, b) if it.layer == "1" else (a, b - by_layer["3"].removed)
    layers = [it.layer for it in adapted.history.iterations]
    assert layers[:3] == ["3", "3", "3"] and "1" in layers and adapted.history.met  # "3" alone cannot reach 192 MACs


def test_resuming_from_a_history_continues_identically(descend, data):
    ctx = context(data, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1, lr=1e-2, batch_size=32))
    model = mlp(descend, data)
    whole = netadapt_search(model, ctx, Budget("macs", 0.5), step=0.1, short_term=64, max_iterations=4)
    half = netadapt_search(model, ctx, Budget("macs", 0.5), step=0.1, short_term=64, max_iterations=2)
    saved = History.from_dict(json.loads(half.history.to_json()))  # through JSON, as from a file
    resumed = netadapt_search(half.model, ctx, Budget("macs", 0.5), step=0.1, short_term=64, max_iterations=4,
                              history=saved)
    assert resumed.history.to_dict() == whole.history.to_dict()
    assert len(whole.history.iterations) == 4
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_method_fine_tunes_and_records_the_history(descend, data):
    ctx = context(data, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1, batch_size=32))
    result = get_method("netadapt")(mlp(descend, data), ctx, metric="macs", budget=0.5, short_term=32)
    history = History.from_dict(result.record.info["history"])
    assert history.met and history.final["resource"] == hand_macs(*sizes(result.model)) <= 160
    assert result.record.after.macs == hand_macs(*sizes(result.model))
    assert [s.layer for s in result.record.steps] == [it.layer for it in history.iterations]
    assert all(s.fine_tuned for s in result.record.steps) and "met" in result.record.summary


def test_the_method_shuts_down_the_executor_it_started(descend, data, monkeypatch):
    import dnnergy.explore.netadapt as module

    class Recording:  # runs here, remembers being shut down (as RayExecutor stops a Ray it started)
        stopped = False

        def map(self, fn, items):
            return [fn(item) for item in items]

        def shutdown(self):
            Recording.stopped = True

    monkeypatch.setattr(module, "as_executor", lambda executor, address=None: Recording())
    ctx = context(data, fine_tuning=None)
    get_method("netadapt")(mlp(descend, data), ctx, metric="macs", budget=0.5, short_term=0, executor="ray")
    assert Recording.stopped


@pytest.mark.parametrize(("text", "expected"), [("energy=0.5", Budget("energy", 0.5)), ("macs=0.25", Budget("macs", 0.25)),
                                                 (" latency=1", Budget("latency", 1.0))])
def test_budget_parse(text, expected):
    assert Budget.parse(text) == expected


@pytest.mark.parametrize(("text", "match"), [("energy", "metric=value"), ("power=0.5", "metric must be one of"),
                                             ("energy=1.5", r"fraction of the original in \(0, 1\]"),
                                             ("macs=x", "metric=value"), ("macs=0", "fraction")])
def test_bad_budgets(text, match):
    with pytest.raises(UserInputError, match=match):
        Budget.parse(text)


@given(st.floats(0.01, 1.0), st.floats(1.0, 1e9))
@settings(max_examples=30, deadline=None)
def test_a_relative_budget_is_that_fraction_of_the_original(fraction, original):
    assert Budget("energy", fraction).target(original) == pytest.approx(fraction * original)
    assert Budget("energy", original, absolute=True).target(123.0) == original

"""Magnitude pruning (Han et al. 2015) against brute force, and the registered method ``magnitude``."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy.compress.context as context_module
from dnnergy.compress import CompressionContext, Masks, get_method, run
from dnnergy.compress.magnitude import magnitude_prune
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError
from dnnergy.train import FINE_TUNE

torch.set_num_threads(1)

magnitude = get_method("magnitude")


def _two_layers(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    with torch.no_grad():
        model[0].weight.mul_(0.01)  # layer 0 has much smaller weights than layer 2
    return model


@pytest.fixture(scope="module")
def toy8():
    """8 features, 4 classes: fits ``_two_layers``."""
    return synthetic(n=80, shape=(8,), classes=4, seed=0, noise=0.25)


def _zeros(model, index):
    return int((model[index].weight == 0).sum())


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(-10, 10, width=32).filter(lambda v: abs(v) > 1e-6), min_size=1, max_size=40, unique_by=abs),
       sparsity=st.floats(0.0, 1.0))
def test_zeroes_exactly_round_s_n_smallest(values, sparsity):
    model = nn.Linear(len(values), 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([values], dtype=torch.float32))
    original = model.weight.detach().numpy().ravel().copy()
    magnitude_prune(model, sparsity).remove()
    count = round(sparsity * len(values))
    smallest = set(np.argsort(np.abs(original), kind="stable")[:count].tolist())  # brute force
    pruned = model.weight.detach().numpy().ravel()
    assert {i for i, v in enumerate(pruned) if v == 0} == smallest
    assert all(pruned[i] == original[i] for i in range(len(values)) if i not in smallest)  # remove() keeps values


def test_global_threshold_differs_from_per_layer():
    model_layer, model_global = _two_layers(), _two_layers()
    n0, n2 = 48, 24  # 8*6 and 6*4 weights
    magnitude_prune(model_layer, 0.5, scope="layer").remove()
    magnitude_prune(model_global, 0.5, scope="global").remove()
    # per layer: half of each tensor
    assert _zeros(model_layer, 0) == n0 // 2 and _zeros(model_layer, 2) == n2 // 2
    # global: round(0.5 * 72) = 36 smallest overall; layer 0 (scaled by 0.01) holds all of them
    assert _zeros(model_global, 0) == 36 and _zeros(model_global, 2) == 0
    all_w = torch.cat([_two_layers()[0].weight.abs().flatten(), _two_layers()[2].weight.abs().flatten()])
    threshold = all_w.sort().values[35]  # brute-force global threshold
    assert threshold < _two_layers()[2].weight.abs().min()


def test_layers_restricts_pruning_and_masks_accumulate():
    model = _two_layers()
    masks = magnitude_prune(model, 0.25, layers=["2"])
    assert list(masks) == ["2.weight"] and _zeros(model, 0) == 0
    magnitude_prune(model, 0.5, layers=["2"], masks=masks)
    assert masks.sparsity() == 0.5 and _zeros(model, 2) == 12  # 0.5 * 24


def test_model_without_prunable_layers_is_an_error():
    with pytest.raises(UserInputError, match="no prunable"):
        magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)


# -- the registered method: prune_on_schedule --------------------------------------------
def _nonzero_parameters(model):
    return float(sum(int((p != 0).sum()) for p in model.parameters()))


def test_schedule_fine_tunes_each_step_records_it_and_leaves_the_input_untouched(toy8):
    model = _two_layers()
    before = [p.detach().clone() for p in model.parameters()]
    tuned_at = []  # the masks' sparsity each time the context fine-tuned the model

    def progress(event):
        if event.kind == "fine_tuned":
            tuned_at.append(Masks(event.model).sparsity())

    context = CompressionContext(toy8, energy=_nonzero_parameters, max_accuracy_drop=None, progress=progress,
                                 fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1))
    result = magnitude(model, context, sparsity=(0.5, 0.75))
    record = result.record
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # layer scope: round(0.5 * 48) + round(0.5 * 24) = 36 of 72; round(0.75 * 48) + round(0.75 * 24) = 54 of 72
    assert tuned_at == [0.5, 0.75]  # fine-tuned after each step with the masks of that step
    assert [(s.iteration, s.strength, s.fine_tuned, s.accepted) for s in record.steps] == [
        (0, 0.5, True, True), (1, 0.75, True, True)]
    assert record.info["layers"] == {"0.weight": 36 / 48, "2.weight": 18 / 24}
    # energy here = non-zero parameters: 48 + 6 + 24 + 4 before, 12 + 6 + 6 + 4 after
    assert record.before.energy == 48 + 6 + 24 + 4 and record.after.energy == 12 + 6 + 6 + 4
    assert (record.before.weights, record.after.nonzero_weights) == (72, 18)
    # the masks stay attached to the result, so masked weights stayed exactly 0 through fine-tuning
    masks = Masks(result.model)
    assert set(masks) == {"0.weight", "2.weight"} and masks.sparsity() == 0.75
    for name, keep in masks.items():
        assert bool((dict(result.model.named_parameters())[name][~keep] == 0).all()), name


@pytest.mark.parametrize("schedule, match", [((), "fraction in"), ((0.5, 1.5), "fraction in"), ((0.8, 0.5), "must not decrease")])
def test_method_rejects_bad_schedules(schedule, match, toy8):
    with pytest.raises(UserInputError, match=f"magnitude: .*{match}"):
        magnitude(_two_layers(), CompressionContext(toy8, fine_tuning=None), sparsity=schedule)


def _zero_fraction_accuracy(model, data):
    """A stand-in evaluation: 1 - (fraction of zero weights over the Linear layers)."""
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    return 1 - zeros / sum(w.numel() for w in weights)


def test_schedule_stops_below_the_budget_and_keeps_the_last_step_within_it(monkeypatch):
    # Accuracy = 1 - (fraction of zero weights), so the dense model scores 1.0 and the budget
    # 0.65 puts the floor at 0.35: steps 0.5 and 0.6 give 0.5 and 0.4, the 0.7 step gives
    # 0.3 < 0.35, so the loop must stop there, undo it and return the 0.6-sparse model.
    monkeypatch.setattr(context_module, "evaluate", _zero_fraction_accuracy)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))
    data = synthetic(n=40, shape=(10,), classes=10, seed=0)
    context = CompressionContext(data, max_accuracy_drop=0.65, fine_tuning=None)
    result = magnitude(net, context, sparsity=(0.5, 0.6, 0.7, 0.9))
    record = result.record
    assert _zero_fraction_accuracy(result.model, None) == pytest.approx(0.4)  # 60 of each layer's 100 weights are 0
    assert [s.accepted for s in record.steps] == [True, True, False]  # 0.9 is never tried
    assert [s.accuracy for s in record.steps] == pytest.approx([0.5, 0.4, 0.3])
    assert record.before.val_accuracy == 1.0 and record.after.val_accuracy == pytest.approx(0.4)
    assert Masks(result.model).sparsity() == pytest.approx(0.6)  # the rolled-back step's masks are gone too
    assert result.model[0].dnnergy_hints == {"w_density": pytest.approx(0.4)}
    assert record.summary == "sparsity 0.600 (step 2 of 4)"


def test_no_step_within_the_budget_returns_the_dense_model(monkeypatch):
    monkeypatch.setattr(context_module, "evaluate", _zero_fraction_accuracy)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))
    data = synthetic(n=40, shape=(10,), classes=10, seed=0)
    result = magnitude(net, CompressionContext(data, max_accuracy_drop=0.1, fine_tuning=None), sparsity=(0.5, 0.9))
    assert [s.accepted for s in result.record.steps] == [False]  # 0.5 < 1.0 - 0.1
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), result.model.parameters()))
    assert len(Masks(result.model)) == 0 and result.record.summary == "no step within the accuracy budget"


def test_without_fine_tuning_nothing_retrains(toy8):
    model = _two_layers()
    events = []
    context = CompressionContext(toy8, fine_tuning=None, max_accuracy_drop=None, progress=events.append)
    result = magnitude(model, context, sparsity=(0.5, 0.75))
    assert [s.fine_tuned for s in result.record.steps] == [False, False]
    assert [e.kind for e in events] == ["evaluated", "evaluated"]  # one evaluation per step, no "fine_tuned"
    for original, pruned in zip(model.parameters(), result.model.parameters()):
        kept = pruned != 0  # kept weights and all biases keep their values exactly
        assert torch.equal(pruned[kept], original[kept])
    assert _nonzero_parameters(result.model) == 12 + 6 + 6 + 4  # round(0.75 * 48) and round(0.75 * 24) zeros


@pytest.mark.parametrize("scope, zeros", [("layer", (24, 12)), ("global", (36, 0))])
def test_method_scope_counts(scope, zeros, toy8):
    # layer: half of each of the 48 and 24 weights; global: round(0.5 * 72) = 36 smallest overall,
    # all in layer 0 (its weights are scaled by 0.01, below every weight of layer 2)
    context = CompressionContext(toy8, fine_tuning=None, max_accuracy_drop=None)
    result = run(_two_layers(), "magnitude", context, sparsity=0.5, scope=scope)
    assert (_zeros(result.model, 0), _zeros(result.model, 2)) == zeros
    assert result.record.info["layers"] == {"0.weight": zeros[0] / 48, "2.weight": zeros[1] / 24}
    assert result.record.params["scope"] == scope and result.record.method == "magnitude"


def test_method_layers_restricts_pruning(toy8):
    context = CompressionContext(toy8, fine_tuning=None, max_accuracy_drop=None)
    result = magnitude(_two_layers(), context, sparsity=0.25, layers=("2",))
    assert (_zeros(result.model, 0), _zeros(result.model, 2)) == (0, 6)  # round(0.25 * 24)
    assert list(Masks(result.model)) == ["2.weight"] and result.record.info["layers"] == {"2.weight": 0.25}

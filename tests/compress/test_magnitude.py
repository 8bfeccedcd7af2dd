"""Magnitude pruning (Han et al. 2015) against brute force."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dnnergy.compress.magnitude import iterative_magnitude_prune, magnitude_prune
from dnnergy.errors import UserInputError

torch.set_num_threads(1)


def _two_layers(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
    with torch.no_grad():
        model[0].weight.mul_(0.01)  # layer 0 has much smaller weights than layer 2
    return model


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
    assert int((model_layer[0].weight == 0).sum()) == n0 // 2 and int((model_layer[2].weight == 0).sum()) == n2 // 2
    # global: round(0.5 * 72) = 36 smallest overall; layer 0 (scaled by 0.01) holds all of them
    assert int((model_global[0].weight == 0).sum()) == 36 and int((model_global[2].weight == 0).sum()) == 0
    all_w = torch.cat([_two_layers()[0].weight.abs().flatten(), _two_layers()[2].weight.abs().flatten()])
    threshold = all_w.sort().values[35]  # brute-force global threshold
    assert threshold < _two_layers()[2].weight.abs().min()


def test_layers_restricts_pruning_and_masks_accumulate():
    model = _two_layers()
    masks = magnitude_prune(model, 0.25, layers=["2"])
    assert list(masks) == ["2.weight"] and int((model[0].weight == 0).sum()) == 0
    magnitude_prune(model, 0.5, layers=["2"], masks=masks)
    assert masks.sparsity() == 0.5 and int((model[2].weight == 0).sum()) == 12  # 0.5 * 24


def test_iterative_schedule_record_and_input_untouched():
    model = _two_layers()
    before = [p.detach().clone() for p in model.parameters()]
    calls = []
    pruned, record = iterative_magnitude_prune(
        model, (0.5, 0.75), fine_tune=lambda m, k: calls.append(k.sparsity()), evaluate=lambda m: 0.5,
        energy_fn=lambda m: float(sum(int((p != 0).sum()) for p in m.parameters())),
    )
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert calls == [0.5, 0.75]  # fine-tuned after each step with the masks of that step
    assert [(s.iteration, s.sparsity, s.fine_tuned) for s in record.steps] == [(0, 0.5, True), (1, 0.75, True)]
    assert record.layer_sparsity() == {"0.weight": 36 / 48, "2.weight": 18 / 24}  # round(0.75 n)
    assert record.energy_before == 48 + 6 + 24 + 4 and record.energy_after == 12 + 6 + 6 + 4
    assert (record.accuracy_before, record.accuracy_after) == (0.5, 0.5)


@pytest.mark.parametrize("schedule, match", [((), "non-empty"), ((0.5, 1.5), "non-empty"), ((0.8, 0.5), "must not decrease")])
def test_iterative_rejects_bad_schedules(schedule, match):
    with pytest.raises(UserInputError, match=match):
        iterative_magnitude_prune(_two_layers(), schedule)


def test_model_without_prunable_layers_is_an_error():
    with pytest.raises(UserInputError, match="no prunable"):
        magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)


def test_iterative_schedule_stops_below_min_accuracy_and_keeps_the_previous_step():
    # A stand-in accuracy of 1 - (fraction of zero weights): the 0.7 step gives 0.3 < 0.35,
    # so the loop must stop there and return the 0.6-sparse model.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))

    def accuracy(model):
        weights = [m.weight for m in model if isinstance(m, nn.Linear)]
        zeros = sum(int((w == 0).sum()) for w in weights)
        return 1 - zeros / sum(w.numel() for w in weights)

    pruned, record = iterative_magnitude_prune(net, [0.5, 0.6, 0.7, 0.9], evaluate=accuracy, min_accuracy=0.35)
    assert accuracy(pruned) == pytest.approx(0.4)  # 60 of each layer's 100 weights are zero
    assert [s.accepted for s in record.steps] == [True, True, False]
    assert record.accuracy_after == pytest.approx(0.4)
    with pytest.raises(UserInputError, match="min_accuracy needs an evaluate"):
        iterative_magnitude_prune(net, [0.5], min_accuracy=0.5)

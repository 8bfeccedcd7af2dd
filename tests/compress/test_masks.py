"""Masks: reversible state, permanence, interop with torch.nn.utils.prune, records."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from dnnergy.compress.masks import (
    LayerSparsity,
    Masks,
    PruneStep,
    PruningRecord,
    lowest_score_masks,
    prunable_parameters,
    weight_sparsity,
)
from dnnergy.errors import UserInputError

torch.set_num_threads(1)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Unflatten(1, (1, 5)), nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(6, 3))


# -- value objects -------------------------------------------------------------------
def test_layer_sparsity_valid():
    row = LayerSparsity("fc1.weight", 8, 3)
    assert (row.nonzeros, row.sparsity) == (5, 3 / 8)  # 8 - 3 = 5; 3 / 8 = 0.375


@pytest.mark.parametrize("args, match", [(("", 4, 1), "name"), (("a", -1, 0), "numel"), (("a", 4, 5), "zeros")])
def test_layer_sparsity_invalid(args, match):
    with pytest.raises(ValueError, match=f"LayerSparsity.*{match}"):
        LayerSparsity(*args)


def test_prune_step_and_record_valid():
    step = PruneStep(0, "fc1", 0.5, 0.9)
    record = PruningRecord("magnitude", (LayerSparsity("a", 10, 5), LayerSparsity("b", 30, 3)), (step,), 0.95, 0.9, 10.0, 4.0, "pJ")
    assert record.sparsity == pytest.approx(8 / 40)  # (5 + 3) zeros of 40
    data = record.to_dict()
    assert data["steps"][0]["layer"] == "fc1" and data["layers"][1]["zeros"] == 3 and data["energy_unit"] == "pJ"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"iteration": -1}, "iteration"), ({"sparsity": 1.5}, "sparsity"), ({"accuracy": 2.0}, "accuracy")],
)
def test_prune_step_invalid(kwargs, match):
    base = {"iteration": 0, "layer": "x", "sparsity": 0.5, "accuracy": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        PruneStep(**base)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"method": ""}, "method"), ({"accuracy_after": 1.2}, "accuracy_after"), ({"energy_before": -1.0}, "energy_before")],
)
def test_pruning_record_invalid(kwargs, match):
    with pytest.raises(ValueError, match=f"PruningRecord.*{match}"):
        PruningRecord(**({"method": "m", "layers": ()} | kwargs))


# -- selection --------------------------------------------------------------------------
def test_prunable_parameters_names_and_errors():
    model = _net()
    assert list(prunable_parameters(model)) == ["0.weight", "3.weight", "5.weight"]
    assert list(prunable_parameters(model, ["3", "5.weight"])) == ["3.weight", "5.weight"]
    with pytest.raises(UserInputError, match="no parameter or prunable module named 'nope'"):
        prunable_parameters(model, ["nope"])


def test_lowest_score_masks_docstring_example_and_ties():
    keep = lowest_score_masks({"a": torch.tensor([3.0, 1.0, 2.0, 0.0])}, 0.5)["a"]
    assert keep.tolist() == [True, False, True, False]
    tie = lowest_score_masks({"a": torch.ones(4)}, 0.5)["a"]  # ties: earlier positions go first
    assert tie.tolist() == [False, False, True, True]
    with pytest.raises(UserInputError, match="sparsity must be in"):
        lowest_score_masks({"a": torch.ones(4)}, 1.5)
    with pytest.raises(UserInputError, match="scope must be"):
        lowest_score_masks({"a": torch.ones(4)}, 0.5, scope="row")


# -- mask state -------------------------------------------------------------------------
def test_set_zeroes_and_masks_only_shrink():
    model = _net()
    masks = Masks(model)
    first = torch.tensor([[True, False] * 3] * 5)
    masks.set("0.weight", first)
    assert bool((model[0].weight[~first] == 0).all())
    second = torch.ones(5, 6, dtype=torch.bool)
    second[0] = False
    masks.set("0.weight", second)  # AND: the first mask's zeros stay
    assert masks["0.weight"].sum().item() == 4 * 3  # rows 1..4, every other column
    assert masks.sparsity("0.weight") == pytest.approx(1 - 12 / 30)
    assert [r.name for r in masks.report()] == ["0.weight"]


def test_remove_keeps_values_and_restore_recovers_originals():
    model = _net()
    before = model[0].weight.detach().clone()
    keep = before.abs() > before.abs().median()
    masks = Masks(model)
    masks.set("0.weight", keep)
    kept_values = model[0].weight.detach().clone()
    masks.remove()
    assert torch.equal(model[0].weight.detach(), torch.where(keep, before, torch.zeros(())))
    assert torch.equal(model[0].weight.detach(), kept_values)
    assert isinstance(model[0].weight, nn.Parameter)
    with pytest.raises(UserInputError, match="removed or restored"):
        masks.set("0.weight", keep)

    model2 = _net()
    masks2 = Masks(model2)
    masks2.set("0.weight", keep)
    masks2.restore()
    assert torch.equal(model2[0].weight.detach(), before)
    with pytest.raises(UserInputError, match="reversible=True"):
        m3 = Masks(_net(), reversible=False)
        m3.set("0.weight", keep)
        m3.restore()


def test_set_rejects_bad_name_and_shape():
    masks = Masks(_net())
    with pytest.raises(UserInputError, match="no parameter 'fc9.weight'"):
        masks.set("fc9.weight", torch.ones(2, dtype=torch.bool))
    with pytest.raises(UserInputError, match=r"shape \(2,\), parameter has \(5, 6\)"):
        masks.set("0.weight", torch.ones(2, dtype=torch.bool))
    with pytest.raises(UserInputError, match="torch.nn.Module"):
        Masks("model")


def test_from_torch_prune_matches_torch_reparametrisation():
    model = _net()
    original = model[0].weight.detach().clone()
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    expected_mask = model[0].weight_mask.detach().bool().clone()
    masks = Masks.from_torch_prune(model)
    assert isinstance(model[0].weight, nn.Parameter) and not hasattr(model[0], "weight_orig")
    assert torch.equal(masks["0.weight"], expected_mask)
    assert torch.equal(model[0].weight.detach(), original * expected_mask)
    assert expected_mask.sum().item() == 15  # 50 % of 30 kept
    masks.restore()
    assert torch.equal(model[0].weight.detach(), original)


def test_weight_sparsity_counts_exact_zeros():
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 3.0, 4.0, 5.0]]))
    assert weight_sparsity(model) == (LayerSparsity("weight", 8, 3),)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), optimizer=st.sampled_from(["sgd", "adam", "adamw"]), density=st.floats(0.1, 0.9))
def test_pruned_weights_stay_zero_through_training(seed, optimizer, density):
    """Property: with masks attached, any optimizer created afterwards leaves masked weights exactly 0."""
    model = _net(seed)
    gen = torch.Generator().manual_seed(seed)
    masks = Masks(model)
    for name, p in prunable_parameters(model).items():
        masks.set(name, torch.rand(p.shape, generator=gen) < density)
    opt = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
        "adam": lambda ps: torch.optim.Adam(ps, lr=0.01),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    }[optimizer](model.parameters())
    x = torch.randn(16, 6, generator=gen)
    y = torch.randint(0, 3, (16,), generator=gen)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for name, keep in masks.items():
        assert bool((dict(model.named_parameters())[name][~keep] == 0).all()), name


def test_pruned_weights_stay_zero_through_shared_fine_tune():
    from dnnergy.data.training import fine_tune

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    masks = Masks(model)
    keep = torch.arange(128).reshape(8, 16) % 3 != 0
    masks.set("1.weight", keep)
    gen = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(40, 1, 4, 4, generator=gen), torch.randint(0, 3, (40,), generator=gen))
    fine_tune(model, data, masks, epochs=2)
    assert int((model[1].weight[~keep] != 0).sum()) == 0
    assert np.count_nonzero(model[1].weight.detach().numpy()) == int(keep.sum())  # kept ones trained, non-zero

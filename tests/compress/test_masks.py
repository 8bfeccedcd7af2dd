"""Masks: reversible state, permanence, copies, rollback, interop with torch.nn.utils.prune, records."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import prune

from dnnergy.compress import (
    LayerSparsity,
    Masks,
    Record,
    Step,
    Transforms,
    lowest_score_masks,
    prunable_parameters,
    weight_sparsity,
)
from dnnergy.compress.transforms import rollback, snapshot
from dnnergy.errors import UserInputError
from dnnergy.metrics import Point
from dnnergy.train import fine_tune

torch.set_num_threads(1)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Unflatten(1, (1, 5)), nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(6, 3))


#: Keep every other column of the 5 x 6 first-layer weight: 15 of 30 kept, w_density 0.5.
KEEP_HALF = torch.tensor([[True, False] * 3] * 5)


def _rows_1_to_4():
    keep = torch.ones(5, 6, dtype=torch.bool)
    keep[0] = False
    return keep  # AND-ed with KEEP_HALF: rows 1..4, every other column = 12 of 30 kept, w_density 0.4


def _batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(16, 6, generator=gen), torch.randint(0, 3, (16,), generator=gen)


def _grads(model, batch):
    """Gradients of the cross-entropy of ``model`` on ``batch``, by parameter name."""
    model.zero_grad(set_to_none=True)
    x, y = batch
    nn.functional.cross_entropy(model(x), y).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _plain_grads(model, batch):
    """Peer: the same weights in a fresh, hook-free network (no transforms, no gradient filters)."""
    plain = _net()
    plain.load_state_dict(model.state_dict())
    return _grads(plain, batch)


# -- value objects -------------------------------------------------------------------
def test_layer_sparsity_valid():
    row = LayerSparsity("fc1.weight", 8, 3)
    assert (row.nonzeros, row.sparsity) == (5, 3 / 8)  # 8 - 3 = 5; 3 / 8 = 0.375


@pytest.mark.parametrize("args, match", [(("", 4, 1), "name"), (("a", -1, 0), "numel"), (("a", 4, 5), "zeros")])
def test_layer_sparsity_invalid(args, match):
    with pytest.raises(ValueError, match=f"LayerSparsity.*{match}"):
        LayerSparsity(*args)


def test_step_and_record_valid():
    step = Step(0, "fc1", 0.5, 0.9)
    before = Point(val_accuracy=0.95, val_samples=100, weights=40, nonzero_weights=40, energy=10.0, energy_unit="pJ")
    after = Point(val_accuracy=0.9, val_samples=100, weights=40, nonzero_weights=32, energy=4.0, energy_unit="pJ")
    record = Record("magnitude", {"sparsity": (0.5,)}, before, after, steps=(step,),
                    info={"layers": {"a": 5 / 10, "b": 3 / 30}})
    assert record.energy_reduction == 2.5  # 10 / 4
    assert record.accuracy_drop("val") == pytest.approx(0.05)  # 0.95 - 0.90
    data = record.to_dict()
    assert data["steps"][0]["layer"] == "fc1" and data["info"]["layers"]["b"] == 0.1 and data["after"]["energy_unit"] == "pJ"
    assert data["params"] == {"sparsity": [0.5]}  # plain data: the tuple became a list
    assert data["after"]["weights"] - data["after"]["nonzero_weights"] == 8  # (5 + 3) zeros of 40
    assert Record.from_dict(json.loads(record.to_json())) == record


@pytest.mark.parametrize(
    "kwargs, match",
    [({"iteration": -1}, "iteration"), ({"iteration": True}, "iteration"), ({"accuracy": 2.0}, "accuracy")],
)
def test_step_invalid(kwargs, match):
    base = {"iteration": 0, "layer": "x", "strength": 0.5, "accuracy": 0.5} | kwargs
    with pytest.raises(ValueError, match=f"Step.*{match}"):
        Step(**base)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Record("", {}, Point(), Point()), "Record: method"),
        (lambda: Record("m", {}, {"val_accuracy": 0.5}, Point()), "Record: before and after must be Point"),
        (lambda: Point(val_accuracy=1.2), "Point: val_accuracy"),
        (lambda: Point(energy=-1.0), "Point: energy"),
    ],
    ids=["method", "before", "accuracy_after", "energy_before"],
)
def test_record_invalid(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_record_params_must_be_plain_data():
    with pytest.raises(UserInputError, match=r"Record.params\['model'\]: expected plain data"):
        Record("m", {"model": nn.Linear(1, 1)}, Point(), Point())


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
    first = KEEP_HALF
    masks.set("0.weight", first)
    assert bool((model[0].weight[~first] == 0).all())
    masks.set("0.weight", _rows_1_to_4())  # AND: the first mask's zeros stay
    assert masks["0.weight"].sum().item() == 4 * 3  # rows 1..4, every other column
    assert masks.sparsity("0.weight") == pytest.approx(1 - 12 / 30)
    assert [r.name for r in masks.report()] == ["0.weight"]


def test_masks_write_the_kept_fraction_as_a_density_hint():
    model = _net()
    masks = Masks(model)
    masks.set("0.weight", KEEP_HALF)
    assert model[0].dnnergy_hints == {"w_density": 0.5}  # 15 of 30 kept
    masks.set("0.weight", _rows_1_to_4())
    assert model[0].dnnergy_hints == {"w_density": pytest.approx(0.4)}  # 12 of 30 kept
    assert not getattr(model[3], "dnnergy_hints", None)  # unmasked modules get no hint


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


# -- the transform set: rollback, copies, pickling, permanence ---------------------------
def test_rollback_restores_weights_masks_hints_and_gradient_filters():
    model = _net()
    unmasked = model[0].weight.detach().clone()
    masks = Masks(model)
    masks.set("0.weight", KEEP_HALF)
    saved_weights = {k: v.clone() for k, v in model.state_dict().items()}
    saved = snapshot(model)
    masks.set("0.weight", _rows_1_to_4())  # tighten one mask, mask another layer, move the weights
    masks.set("5.weight", torch.zeros(3, 6, dtype=torch.bool))
    with torch.no_grad():
        model[3].weight.add_(1.0)
        model[0].bias.add_(1.0)
    assert model[0].dnnergy_hints == {"w_density": pytest.approx(0.4)} and model[5].dnnergy_hints == {"w_density": 0.0}

    rollback(model, saved)
    for key, value in saved_weights.items():
        assert torch.equal(model.state_dict()[key], value), key
    restored = Masks(model)
    assert list(restored) == ["0.weight"] and torch.equal(restored["0.weight"], KEEP_HALF)
    assert masks.sparsity() == 0.5  # the view made before the rollback sees the restored set: 15 of 30 masked
    assert model[0].dnnergy_hints == {"w_density": 0.5}  # back to 15 of 30
    assert not getattr(model[5], "dnnergy_hints", None)  # the later layer's hint is gone with its mask
    # gradients are filtered by the restored masks only: no hook of the undone masks is left behind
    batch = _batch()
    peer = _plain_grads(model, batch)
    got = _grads(model, batch)
    assert torch.equal(got["0.weight"], peer["0.weight"] * KEEP_HALF)
    assert torch.equal(got["5.weight"], peer["5.weight"])
    assert bool((peer["0.weight"][0] * KEEP_HALF[0] != 0).any())  # row 0 would have been zeroed by the undone mask
    masks.restore()  # the values from before masking were rolled back with the set
    assert torch.equal(model[0].weight.detach(), unmasked) and not getattr(model[0], "dnnergy_hints", None)


def test_rollback_to_a_snapshot_without_masks_detaches_everything():
    model = _net()
    original = model[0].weight.detach().clone()
    saved = snapshot(model)
    Masks(model).set("0.weight", KEEP_HALF)
    rollback(model, saved)
    assert torch.equal(model[0].weight.detach(), original)
    assert Transforms.of(model, create=False) is None
    assert not getattr(model[0], "dnnergy_hints", None)
    batch = _batch()
    assert torch.equal(_grads(model, batch)["0.weight"], _plain_grads(model, batch)["0.weight"])


def test_deepcopy_keeps_masks_working_on_the_copy_and_leaves_the_original_alone():
    model = _net()
    masks = Masks(model)
    masks.set("0.weight", KEEP_HALF)
    original_weights = {k: v.clone() for k, v in model.state_dict().items()}
    clone = copy.deepcopy(model)
    clone_masks = Masks(clone)
    assert torch.equal(clone_masks["0.weight"], KEEP_HALF) and clone[0].dnnergy_hints == {"w_density": 0.5}
    clone_masks.set("0.weight", _rows_1_to_4())  # tighten the copy only: 12 of 30 kept
    assert clone[0].dnnergy_hints == {"w_density": pytest.approx(0.4)}
    assert torch.equal(masks["0.weight"], KEEP_HALF) and model[0].dnnergy_hints == {"w_density": 0.5}

    # the copy's gradients are filtered by the copy's own (tighter) masks
    batch = _batch()
    got = _grads(clone, batch)
    assert torch.equal(got["0.weight"], _plain_grads(clone, batch)["0.weight"] * (KEEP_HALF & _rows_1_to_4()))
    # an optimizer of the user's own loop on the copy keeps its masked weights at zero ...
    optimizer = torch.optim.SGD(clone.parameters(), lr=0.5, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        _grads(clone, batch)
        optimizer.step()
        clone_masks.apply()
    assert bool((clone[0].weight[~(KEEP_HALF & _rows_1_to_4())] == 0).all())
    # ... and the original did not move, and its gradients are filtered by its own (looser) masks
    for key, value in original_weights.items():
        assert torch.equal(model.state_dict()[key], value), key
    got = _grads(model, batch)
    assert torch.equal(got["0.weight"], _plain_grads(model, batch)["0.weight"] * KEEP_HALF)


def test_pickling_round_trips_a_masked_model():
    model = _net()
    before = model[0].weight.detach().clone()
    Masks(model).set("0.weight", KEEP_HALF)
    loaded = pickle.loads(pickle.dumps(model))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    loaded_masks = Masks(loaded)
    assert list(loaded_masks) == ["0.weight"] and torch.equal(loaded_masks["0.weight"], KEEP_HALF)
    assert loaded[0].dnnergy_hints == {"w_density": 0.5}
    batch = _batch()
    assert torch.equal(_grads(loaded, batch)["0.weight"], _plain_grads(loaded, batch)["0.weight"] * KEEP_HALF)
    loaded_masks.restore()  # the values from before masking travelled with the pickle
    assert torch.equal(loaded[0].weight.detach(), before)
    assert torch.equal(model[0].weight.detach(), before * KEEP_HALF)  # the original is still masked


def test_make_permanent_keeps_values_and_drops_the_set_and_its_density_hint():
    model = _net()
    model[0].dnnergy_hints = {"w_bits": 8}  # a hint the user set: not the transform set's to remove
    before = model[0].weight.detach().clone()
    Masks(model).set("0.weight", KEEP_HALF)
    assert model[0].dnnergy_hints == {"w_bits": 8, "w_density": 0.5}
    Transforms.of(model).make_permanent()
    assert torch.equal(model[0].weight.detach(), before * KEEP_HALF)  # masked values stay 0, kept ones unchanged
    assert Transforms.of(model, create=False) is None
    assert model[0].dnnergy_hints == {"w_bits": 8}
    batch = _batch()  # no gradient filter is left: masked weights get their full gradient again
    assert torch.equal(_grads(model, batch)["0.weight"], _plain_grads(model, batch)["0.weight"])
    assert len(Masks(model)) == 0  # a new view starts from an empty set


# -- training through the masks ------------------------------------------------------------
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
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    masks = Masks(model)
    keep = torch.arange(128).reshape(8, 16) % 3 != 0
    masks.set("1.weight", keep)
    gen = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(40, 1, 4, 4, generator=gen), torch.randint(0, 3, (40,), generator=gen))
    fine_tune(model, data, hooks=[masks], epochs=2)
    assert int((model[1].weight[~keep] != 0).sum()) == 0
    assert np.count_nonzero(model[1].weight.detach().numpy()) == int(keep.sum())  # kept ones trained, non-zero

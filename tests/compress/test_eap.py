"""Energy-aware pruning (Yang et al. CVPR 2017) on a small MLP trained on scikit-learn digits."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, get_method
from dnnergy.compress.eap import EAPConfig, layer_energies, select_by_output_error
from dnnergy.data import load_dataset, synthetic
from dnnergy.errors import UserInputError
from dnnergy.metrics import energy_objective
from dnnergy.train import FINE_TUNE

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits")  # 1,257 train / 180 val / 360 test images, 1 x 8 x 8
    xt, yt = data.train.tensors
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):  # full-batch Adam: about a second
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    return model.eval(), data


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_output_error_selection_beats_magnitude_on_the_same_layer(trained):
    model, data = trained
    xt = data.train.tensors[0]
    with torch.no_grad():
        hidden = torch.relu(model[1](model[0](xt))).double().numpy()  # input rows X of layer "3"
    w = model[3].weight.detach().double().numpy()
    gram = torch.from_numpy(hidden.T @ hidden)
    count = w.size // 2  # 256 of 512 weights
    keep, new_w = select_by_output_error(gram, torch.from_numpy(w), torch.ones(w.shape, dtype=torch.bool), count)
    keep, new_w = keep.numpy(), new_w.numpy()
    assert (~keep).sum() == count and np.all(new_w[~keep] == 0)

    def error(weights):
        return np.sum((hidden @ weights.T - hidden @ w.T) ** 2)

    mag_keep = np.ones(w.size, dtype=bool)
    mag_keep[np.argsort(np.abs(w).ravel(), kind="stable")[:count]] = False
    mag_keep = mag_keep.reshape(w.shape)
    mag_refit = np.zeros_like(w)
    for r in range(w.shape[0]):  # magnitude selection, then the best least-squares re-fit (numpy)
        cols = np.flatnonzero(mag_keep[r])
        mag_refit[r, cols] = np.linalg.lstsq(hidden[:, cols], hidden @ w[r], rcond=None)[0]
    assert error(new_w) < error(mag_refit) < error(w * mag_keep)


def test_single_removal_is_the_brute_force_best():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(30, 6)), rng.normal(size=(1, 6))
    keep, _ = select_by_output_error(torch.from_numpy(x.T @ x), torch.from_numpy(w), torch.ones(1, 6, dtype=torch.bool), 1,
                                     rounds=1, damping=0.0)
    errors = []
    for q in range(6):  # remove q, re-fit the rest by numpy least squares
        cols = [c for c in range(6) if c != q]
        fit = np.linalg.lstsq(x[:, cols], x @ w[0], rcond=None)[0]
        errors.append(np.sum((x[:, cols] @ fit - x @ w[0]) ** 2))
    assert np.flatnonzero(~keep.numpy()[0]).tolist() == [int(np.argmin(errors))]


def test_layer_order_from_layerwise_and_plain_objectives(trained):
    model = trained[0]

    class Fake:
        unit = "pJ"

        def __call__(self, m):
            return 9.0

        def by_module(self, m):
            return {"1": 1.0, "3": 5.0, "5": 3.0, "2": 99.0}

    assert layer_energies(model, Fake(), ["1", "3", "5"]) == {"1": 1.0, "3": 5.0, "5": 3.0}

    def nonzeros(m):  # plain model -> float: falls back to the energy saved by zeroing each layer alone
        return float(sum(int((p != 0).sum()) for n, p in m.named_parameters() if n.endswith("weight")))

    assert layer_energies(model, nonzeros, ["1", "3", "5"]) == {"1": 2048.0, "3": 512.0, "5": 160.0}  # 64*32, 32*16, 16*10


def test_energy_aware_prune_end_to_end(trained):
    model, data = trained
    xv, yv = data.val.tensors
    original = [p.detach().clone() for p in model.parameters()]
    energy = energy_objective(xv[:2], "eyeriss", "row_stationary")
    drop = 0.03
    context = CompressionContext(data, energy=energy, max_accuracy_drop=drop,
                                 fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1))
    result = get_method("eap")(model, context, step=0.25, rounds=2, max_iterations=2)
    pruned, record = result.model, result.record
    assert all(torch.equal(a, b) for a, b in zip(original, model.parameters()))  # the input model is untouched

    # order: per-layer energies estimated independently with trace + estimate, highest first
    workload = dnnergy.trace(model, xv[:2], measure=True)
    from dnnergy.energy import estimate

    per_layer = estimate(workload, "eyeriss", "row_stationary").by_layer()
    by_module = {}
    for layer in workload.layers:
        by_module[layer.module] = by_module.get(layer.module, 0.0) + per_layer.get(layer.name, 0.0)
    assert record.info["order"][0] == sorted(["1", "3", "5"], key=lambda n: -by_module[n])

    acc0, acc1 = _accuracy(model, xv, yv), _accuracy(pruned, xv, yv)  # validation: where the budget applies
    assert record.before.val_accuracy == pytest.approx(acc0) and record.after.val_accuracy == pytest.approx(acc1)
    assert acc1 >= acc0 - drop  # accuracy kept within the threshold
    assert record.before.energy == pytest.approx(energy(model)) and record.after.energy == pytest.approx(energy(pruned))
    assert record.after.energy < record.before.energy and record.after.energy_unit == "MAC-normalized"
    counted = {f"{n}.weight": float((pruned.get_submodule(n).weight == 0).float().mean()) for n in ("1", "3", "5")}
    assert record.info["layers"] == pytest.approx(counted)
    zeros = sum(int((pruned.get_submodule(n).weight == 0).sum()) for n in ("1", "3", "5"))
    assert zeros / (64 * 32 + 32 * 16 + 16 * 10) > 0.3
    assert record.after.nonzero_weights == 64 * 32 + 32 * 16 + 16 * 10 - zeros
    assert {s.layer for s in record.steps if s.layer} == {"1", "3", "5"}
    assert all(s.accuracy >= acc0 - drop for s in record.steps if s.accepted and s.layer)
    assert any(s.fine_tuned and s.layer == "" for s in record.steps)  # one fine-tune step per iteration
    assert record.to_dict()["method"] == "eap"


def test_eap_needs_an_energy_objective_and_a_budget(trained):
    model, data = trained
    with pytest.raises(UserInputError, match="eap needs an energy objective"):
        get_method("eap")(model, CompressionContext(data, fine_tuning=None))
    with pytest.raises(UserInputError, match="eap needs an accuracy budget"):
        get_method("eap")(model, CompressionContext(data, energy=lambda m: 1.0, max_accuracy_drop=None, fine_tuning=None))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_sparsity": 1.5}, "max_sparsity"),
        ({"step": 0.0}, "step"),
        ({"rounds": 0}, "rounds"),
        ({"layer_drop": -0.1}, "layer_drop"),
        ({"damping": -1.0}, "damping"),
    ],
)
def test_eap_config_invalid(kwargs, match):
    with pytest.raises(UserInputError, match=f"EAPConfig: {match}"):
        EAPConfig(**kwargs)


def test_accuracy_budget_is_a_fraction_of_the_context():
    # the target accuracy moved from EAPConfig.accuracy_drop to the context's budget
    with pytest.raises(UserInputError, match=r"max_accuracy_drop must be a fraction in \[0, 1\]"):
        CompressionContext(synthetic(n=40), max_accuracy_drop=1.5)


def test_eap_config_valid_defaults():
    config = EAPConfig()
    assert (config.step, config.max_sparsity, config.layer_drop) == (0.2, 0.99, None)
    assert CompressionContext(synthetic(n=40)).max_accuracy_drop == 0.01  # one point of validation accuracy
    params = {p.name: p.default for p in get_method("eap").params}
    assert (params["step"], params["max_sparsity"], params["layer_drop"]) == (0.2, 0.99, None)


def test_removal_costs_equal_the_direct_obs_formula_for_every_row_pattern():
    # OBS cost of removing weight q from row r: w_q^2 / [(G_KK)^-1]_qq over the row's kept set
    # K, computed here by inverting each G_KK directly (numpy).
    from dnnergy.compress.eap import _removal_costs

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 9))
    gram = x.T @ x
    weight = rng.normal(size=(5, 9))
    keep = np.ones((5, 9), dtype=bool)
    for r, removed in enumerate([[], [0], [1, 2], [3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7]]):
        keep[r, removed] = False
    costs = _removal_costs(torch.from_numpy(gram), torch.from_numpy(weight), torch.from_numpy(keep), damping=0.0).numpy()
    for r in range(5):
        cols = np.flatnonzero(keep[r])
        direct = weight[r, cols] ** 2 / np.diag(np.linalg.inv(gram[np.ix_(cols, cols)]))
        np.testing.assert_allclose(costs[r, cols], direct, rtol=1e-9)
        assert np.all(np.isinf(costs[r, ~keep[r]]))


def test_steps_remove_a_fraction_of_the_remaining_weights_up_to_the_cap():
    # 8 x 8 = 64 weights, step 0.5 of what remains, cap 0.9 -> floor(57.6) = 57 zeros:
    # zeros 32, 48, 56, then 57 (the cap), i.e. sparsities 1 - 0.5^k until the cap
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8))
    data = synthetic(n=100, shape=(8,), classes=8)  # 70 training images calibrate
    # a budget of the whole accuracy accepts every step (the old test's constant accuracy)
    context = CompressionContext(data, energy=lambda m: float((m[0].weight != 0).sum()), max_accuracy_drop=1.0,
                                 fine_tuning=None)
    result = get_method("eap")(model, context, step=0.5, max_sparsity=0.9, rounds=1, max_iterations=1, calibration=64)
    assert [round(s.strength * 64) for s in result.record.steps if s.layer] == [32, 48, 56, 57]
    assert all(s.accepted for s in result.record.steps)
    assert int((result.model[0].weight == 0).sum()) == 57

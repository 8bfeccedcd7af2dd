"""Neuron elimination (Zhang, Davoodi, Hu; seed 002): representative neurons by pivoted QR, least-squares refit."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from torch import nn

import dnnergy
from dnnergy.compress.eliminate import (
    _left_singular,
    INPUTS,
    EliminationPoint,
    activation_matrix,
    eliminate_neurons,
    eliminate_plan,
    elimination_search,
    elimination_sweep,
    representative_neurons,
)
from dnnergy.compress.removal import InputSubsetLinear, StructuredRecord, load_pruned, save_pruned
from dnnergy.errors import UserInputError


def redundant_mlp() -> nn.Module:
    """5 -> 8 -> 4 -> 3 in float64, where hidden neurons 5, 6, 7 are positive multiples of 0, 1, 2.

    relu(a z) = a relu(z) for a > 0, so the 8 hidden activations span at most 5 dimensions.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        model[0].weight[5:] = model[0].weight[:3] * torch.tensor([[2.0], [0.5], [3.0]], dtype=torch.float64)
        model[0].bias[5:] = model[0].bias[:3] * torch.tensor([2.0, 0.5, 3.0], dtype=torch.float64)
    return model.eval()


def _pre_activations(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = []
    handle = layer.register_forward_hook(lambda m, a, o: out.append(o.detach()))
    with torch.no_grad():
        model(x)
    handle.remove()
    return out[0]


def _hidden(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.relu(model[0](x)).numpy().T  # n x K


def digits_mlp(*hidden: int, samples: int | None = None) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """An MLP 64-hidden...-10 trained briefly on (the first ``samples``) scikit-learn digits, with its data."""
    digits = load_digits()
    x = torch.tensor(digits.data[:samples] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:samples])
    torch.manual_seed(0)
    sizes, layers = (64, *hidden), []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(sizes[-1], 10))
    for _ in range(40):  # plain full-batch gradient descent (torch.optim's first use imports torch._dynamo: slow)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= 0.5 * param.grad
    return model.eval(), x, y


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def weights(model: nn.Module) -> float:
    """Weights of the Linear layers: the energy stand-in of these tests."""
    return float(sum(l.weight.numel() for l in model if isinstance(l, nn.Linear)))


def test_full_rank_p_reproduces_next_pre_activations():
    model = redundant_mlp()
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rank = np.linalg.matrix_rank(_hidden(model, x))
    assert rank == 5
    pruned, record = eliminate_neurons(model, "0", x, rank)
    assert pruned[0].out_features == 5 and pruned[2].in_features == 5
    torch.testing.assert_close(_pre_activations(pruned, pruned[2], x), _pre_activations(model, model[2], x), rtol=0, atol=1e-9)
    assert dict(record.info)["residual"] < 1e-9  # round-off only (||W X||^2 is O(1e3))


def test_lower_p_error_is_the_least_squares_residual():
    model = redundant_mlp()
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    pruned, record = eliminate_neurons(model, "0", x, 3)
    kept = dict(record.info)["kept"]
    hidden = _hidden(model, x)  # 8 x 300
    target = model[2].weight.detach().numpy() @ hidden  # W X: 4 x 300
    # min ||W_p X_p - W X||_F: solve X_p^T W_p^T = (W X)^T by numpy's least squares
    _, residuals, _, _ = np.linalg.lstsq(hidden[kept].T, target.T, rcond=None)
    expected = float(residuals.sum())
    assert dict(record.info)["residual"] == pytest.approx(expected, rel=1e-8)
    error = float((_pre_activations(pruned, pruned[2], x) - _pre_activations(model, model[2], x)).pow(2).sum())
    assert error == pytest.approx(expected, rel=1e-8)


def test_pivot_order_matches_scipy():
    x = np.random.default_rng(3).normal(size=(10, 40))
    u = np.linalg.svd(x, full_matrices=False)[0]
    for p in (1, 4, 7):
        expected = scipy.linalg.qr(u[:, :p].T, pivoting=True)[2][:p]
        assert representative_neurons(x, p) == tuple(int(i) for i in expected)
    # p = n: U^T is orthogonal, every column has norm 1 and the pivot order is decided by round-off
    assert sorted(representative_neurons(x, 10)) == list(range(10))


def test_pivot_hand_example():
    # the first singular vector of [[1, 0], [2, 0], [0, 1]] is (1, 2, 0)/sqrt(5): row 1 is the largest entry;
    # with p = 2 the second pivot is row 2, the only row along the second singular vector
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    assert representative_neurons(x, 1) == (1,)
    assert set(representative_neurons(x, 2)) == {1, 2}
    with pytest.raises(UserInputError, match="1 <= p <= 2"):
        representative_neurons(x, 3)


def test_conv_extension_reproduces_at_full_rank():
    torch.manual_seed(4)  # channels 3-5 are twice channels 0-2, so the 6 channels have rank 3
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3)).double().eval()
    with torch.no_grad():
        model[0].weight[3:] = 2 * model[0].weight[:3]
        model[0].bias[3:] = 2 * model[0].bias[:3]
    x = torch.randn(20, 2, 6, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    matrix = activation_matrix(model, "0", x)
    assert matrix.shape == (6, 20 * 36)  # channels x (images * positions)
    rank = int(np.linalg.matrix_rank(matrix.numpy()))
    assert rank == 3
    pruned, _ = eliminate_neurons(model, "0", x, rank)
    assert pruned[0].out_channels == 3 and pruned[2].in_channels == 3
    torch.testing.assert_close(_pre_activations(pruned, pruned[2], x), _pre_activations(model, model[2], x), rtol=0, atol=1e-9)


def test_sweep_on_digits_end_to_end(tmp_path):
    model, x, y = digits_mlp(32)
    accuracy = partial(_accuracy, x=x, y=y)
    sweep = elimination_sweep(model, "0", x, accuracy, weights, threshold=0.05, step=4)
    ps = [pt.p for pt in sweep.points]
    assert ps[0] == sweep.rank and all(a - b == 4 for a, b in zip(ps, ps[1:]))
    # energy = weights: 64*p + p*10 for p hidden neurons
    assert [pt.energy for pt in sweep.points] == [74.0 * p for p in ps]
    drops = [sweep.accuracy - pt.accuracy for pt in sweep.points]
    assert all(d <= 0.05 for d in drops[:-1]) and (drops[-1] > 0.05 or ps[-1] <= 4)
    best = sweep.best(0.05)
    pruned, record = eliminate_neurons(model, "0", x, best.p)
    assert accuracy(pruned) == pytest.approx(best.accuracy)
    path = tmp_path / "eliminated.pt"
    save_pruned(path, pruned, record)
    fresh = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    reloaded, _ = load_pruned(path, fresh)
    assert accuracy(reloaded) == pytest.approx(best.accuracy)


def test_invalid_inputs():
    model = redundant_mlp()
    x = torch.randn(50, 5, dtype=torch.float64)
    with pytest.raises(UserInputError, match=r"p must be an int in \[1, 8\]"):
        eliminate_neurons(model, "0", x, 9)
    with pytest.raises(UserInputError, match="no prunable Conv/Linear layer named 'zz'"):
        eliminate_neurons(model, "zz", x, 2)
    with pytest.raises(UserInputError, match="step must be a positive int"):
        elimination_sweep(model, "0", x, lambda m: 1.0, step=0)
    with pytest.raises(UserInputError, match="calibration data must be"):
        eliminate_neurons(model, "0", "digits?", 2)


def test_elimination_point_valid_and_invalid():
    assert EliminationPoint(3, 0.9, 1.5, 0.0).p == 3
    with pytest.raises(ValueError, match="EliminationPoint: p must be a positive int"):
        EliminationPoint(0, 0.9, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"EliminationPoint: accuracy must be in \[0, 1\]"):
        EliminationPoint(1, 1.2, 1.0, 0.0)
    with pytest.raises(ValueError, match="EliminationPoint: energy must be finite"):
        EliminationPoint(1, 0.5, float("nan"), 0.0)
    with pytest.raises(ValueError, match="EliminationPoint: residual must be >= 0"):
        EliminationPoint(1, 0.5, 1.0, -1.0)


def redundant_inputs(samples: int = 300) -> torch.Tensor:
    """``samples`` x 6 inputs whose features 3, 4, 5 are fixed linear combinations of 0, 1, 2 (rank 3)."""
    base = torch.randn(samples, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    mix = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0], [3.0, 0.0, 0.5]], dtype=torch.float64)
    return torch.cat([base, base @ mix], dim=1)


def test_input_features_at_full_rank_reproduce_the_outputs():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = redundant_inputs()
    pruned, record = eliminate_plan(model, x, {INPUTS: 3})
    assert isinstance(pruned[0], InputSubsetLinear) and pruned[0].in_features == 3
    kept = dict(record.info)["kept"][INPUTS]
    assert kept == sorted(representative_neurons(x.T, 3)) and pruned[0].features.tolist() == kept
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-9)  # W X = W_p X_p exactly at rank 3


def test_input_feature_residual_is_the_least_squares_residual():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    pruned, record = eliminate_plan(model, x, {INPUTS: 2})
    kept = dict(record.info)["kept"][INPUTS]
    w = model[0].weight.detach().numpy()
    _, residuals, _, _ = np.linalg.lstsq(x.numpy()[:, kept], x.numpy() @ w.T, rcond=None)  # min ||X_p W_p^T - X W^T||
    assert dict(record.info)["residual"][INPUTS] == pytest.approx(float(residuals.sum()), rel=1e-8)
    error = float((_pre_activations(pruned, pruned[0], x) - _pre_activations(model, model[0], x)).pow(2).sum())
    assert error == pytest.approx(float(residuals.sum()), rel=1e-8)


def test_plan_equals_eliminating_layer_by_layer_from_the_input_side():
    model = redundant_mlp()
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    planned, _ = eliminate_plan(model, x, {"2": 2, "0": 3})  # given out of order: applied "0" first
    first, _ = eliminate_neurons(model, "0", x, 3)
    stepwise, _ = eliminate_neurons(first, "2", x, 2)
    with torch.no_grad():
        torch.testing.assert_close(planned(x), stepwise(x), rtol=0, atol=1e-12)
    assert planned[2].out_features == 2 and planned[4].in_features == 2


def test_input_elimination_saves_and_reloads(tmp_path):
    torch.manual_seed(11)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x = redundant_inputs().float().reshape(-1, 2, 3)
    pruned, record = eliminate_plan(model, x, {INPUTS: 4, "1": 3})
    assert StructuredRecord.from_dict(record.to_dict()) == record
    assert [s.inputs for s in record.steps] == [True, False]
    path = tmp_path / "eliminated.pt"
    save_pruned(path, pruned, record)
    fresh = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    reloaded, _ = load_pruned(path, fresh)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), pruned(x))
    assert dnnergy.trace(reloaded, x[:1]).macs == 4 * 3 + 3 * 3  # the first layer reads 4 features


def test_input_elimination_needs_a_linear_reading_the_input():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    with pytest.raises(UserInputError, match="inputs: input-feature elimination needs exactly one Linear layer"):
        eliminate_plan(model, torch.randn(20, 1, 4, 4), {INPUTS: 3})
    with pytest.raises(UserInputError, match=r"inputs: p must be an int in \[1, 6\]"):
        eliminate_plan(nn.Sequential(nn.Linear(6, 2)), torch.randn(20, 6), {INPUTS: 7})


def test_search_takes_the_best_energy_per_distortion_move_and_stops_at_the_threshold():
    model, x, y = digits_mlp(24, 12, samples=600)
    accuracy = partial(_accuracy, x=x, y=y)
    search = elimination_search(model, x, accuracy, weights, layers=["2", INPUTS, "0"], threshold=0.03, steps=4, samples=None)
    assert [k for k, _ in search.sizes] == [INPUTS, "0", "2"]  # input side first
    assert len(search.accepted) >= 3 and search.stopped_by is not None  # it moved, then met the threshold
    acc0 = accuracy(model)
    assert all(pt.accuracy >= acc0 - 0.03 for pt in search.accepted)
    energies = [search.energy] + [pt.energy for pt in search.accepted]
    assert all(a > b for a, b in zip(energies, energies[1:]))
    assert search.stopped_by is None or search.stopped_by.accuracy < acc0 - 0.03
    # the first move, recomputed independently: each layer lowered by n // 4 alone, scored by weights saved
    # per relative squared output error added
    with torch.no_grad():
        reference = model(x).double()
    scores = {}
    for key, n in search.sizes:
        plan = {k: (m - m // 4 if k == key else m) for k, m in search.sizes}
        trial, _ = eliminate_plan(model, x, plan, samples=None)
        with torch.no_grad():
            distortion = float((trial(x).double() - reference).square().sum() / reference.square().sum())
        scores[key] = (weights(model) - weights(trial)) / distortion
    first = search.accepted[0] if search.accepted else search.stopped_by
    changed = [k for (k, p), (_, n) in zip(first.plan, search.sizes) if p != n]
    assert changed == [max(scores, key=scores.get)]
    final, _ = eliminate_plan(model, x, search.plan, samples=None)
    assert accuracy(final) == pytest.approx(search.accepted[-1].accuracy if search.accepted else acc0)
    assert len(search.to_records()) == len(search.accepted) + (search.stopped_by is not None)


@pytest.mark.parametrize("shape", [(6, 500), (6, 9), (3, 2)])  # wide (through R of x^T = QR), near-square, tall
def test_left_singular_vectors_and_values_match_numpy_svd(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * np.array([10.0, 5, 3, 2, 1, 0.5][: shape[0]])[:, None]
    u, singular = _left_singular(x)
    u_ref, s_ref, _ = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(singular, s_ref, rtol=1e-10)
    np.testing.assert_allclose(np.abs(u), np.abs(u_ref), atol=1e-10)  # columns are unique up to sign

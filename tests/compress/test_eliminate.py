"""Neuron elimination (Zhang, Davoodi, Hu; seed 002): representative neurons by pivoted QR, least-squares refit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits
from torch import nn

from dnnergy.compress.eliminate import (
    EliminationPoint,
    activation_matrix,
    eliminate_neurons,
    elimination_sweep,
    representative_neurons,
)
from dnnergy.compress.removal import load_pruned, save_pruned
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
    for p in (1, 4, 10):
        u = np.linalg.svd(x, full_matrices=False)[0]
        expected = scipy.linalg.qr(u[:, :p].T, pivoting=True)[2][:p]
        assert representative_neurons(x, p) == tuple(int(i) for i in expected)


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
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    for _ in range(40):  # plain full-batch gradient descent (torch.optim's first use imports torch._dynamo: slow)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= 0.5 * param.grad
    model.eval()

    def accuracy(m):
        with torch.no_grad():
            return float((m(x).argmax(1) == y).float().mean())

    def weights(m):
        return float(sum(l.weight.numel() for l in m if isinstance(l, nn.Linear)))

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

"""Neuron elimination (Zhang, Davoodi, Hu; seed 002): representative neurons by pivoted QR, least-squares refit."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import dnnergy
from dnnergy.compress import EditLog
from dnnergy.compress.edits import edit_log
from dnnergy.compress.eliminate import (
    _left_singular,
    INPUTS,
    activation_matrix,
    eliminate_neurons,
    eliminate_plan,
    representative_neurons,
)
from dnnergy.compress.removal import InputSubsetLinear
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
    pruned, info = eliminate_neurons(model, "0", x, rank)
    assert pruned[0].out_features == 5 and pruned[2].in_features == 5
    torch.testing.assert_close(_pre_activations(pruned, pruned[2], x), _pre_activations(model, model[2], x), rtol=0, atol=1e-9)
    assert info["residual"] < 1e-9  # round-off only (||W X||^2 is O(1e3))


def test_lower_p_error_is_the_least_squares_residual():
    model = redundant_mlp()
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    pruned, info = eliminate_neurons(model, "0", x, 3)
    kept = info["kept"]
    assert (info["layer"], info["p"], len(kept)) == ("0", 3, 3)
    hidden = _hidden(model, x)  # 8 x 300
    target = model[2].weight.detach().numpy() @ hidden  # W X: 4 x 300
    # min ||W_p X_p - W X||_F: solve X_p^T W_p^T = (W X)^T by numpy's least squares
    _, residuals, _, _ = np.linalg.lstsq(hidden[kept].T, target.T, rcond=None)
    expected = float(residuals.sum())
    assert info["residual"] == pytest.approx(expected, rel=1e-8)
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


def test_invalid_inputs():
    model = redundant_mlp()
    x = torch.randn(50, 5, dtype=torch.float64)
    with pytest.raises(UserInputError, match=r"p must be an int in \[1, 8\]"):
        eliminate_neurons(model, "0", x, 9)
    with pytest.raises(UserInputError, match="no prunable Conv/Linear layer named 'zz'"):
        eliminate_neurons(model, "zz", x, 2)
    with pytest.raises(UserInputError, match="calibration data must be"):
        eliminate_neurons(model, "0", "digits?", 2)


def redundant_inputs(samples: int = 300) -> torch.Tensor:
    """``samples`` x 6 inputs whose features 3, 4, 5 are fixed linear combinations of 0, 1, 2 (rank 3)."""
    base = torch.randn(samples, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    mix = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0], [3.0, 0.0, 0.5]], dtype=torch.float64)
    return torch.cat([base, base @ mix], dim=1)


def test_input_features_at_full_rank_reproduce_the_outputs():
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = redundant_inputs()
    pruned, info = eliminate_plan(model, x, {INPUTS: 3})
    assert isinstance(pruned[0], InputSubsetLinear) and pruned[0].in_features == 3
    kept = info["kept"][INPUTS]
    assert info["sizes"] == {INPUTS: 6} and info["plan"] == {INPUTS: 3}
    assert kept == sorted(representative_neurons(x.T, 3)) and pruned[0].features.tolist() == kept
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), model(x), rtol=0, atol=1e-9)  # W X = W_p X_p exactly at rank 3


def test_input_feature_residual_is_the_least_squares_residual():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    pruned, info = eliminate_plan(model, x, {INPUTS: 2})
    kept = info["kept"][INPUTS]
    w = model[0].weight.detach().numpy()
    _, residuals, _, _ = np.linalg.lstsq(x.numpy()[:, kept], x.numpy() @ w.T, rcond=None)  # min ||X_p W_p^T - X W^T||
    assert info["residual"][INPUTS] == pytest.approx(float(residuals.sum()), rel=1e-8)
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


FLAT_MLP = """
from torch import nn


def flat_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
"""


@pytest.fixture()
def flat_mlp_factory(tmp_path, monkeypatch):
    """``eliminated_models:flat_mlp``, an importable factory of the original architecture."""
    (tmp_path / "eliminated_models.py").write_text(textwrap.dedent(FLAT_MLP))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "eliminated_models:flat_mlp"
    sys.modules.pop("eliminated_models", None)


def test_input_elimination_saves_and_reloads(tmp_path, flat_mlp_factory):
    torch.manual_seed(11)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).eval()
    x = redundant_inputs().float().reshape(-1, 2, 3)
    pruned, info = eliminate_plan(model, x, {INPUTS: 4, "1": 3})
    log = edit_log(pruned)
    assert EditLog.from_dict(log.to_dict()) == log
    assert [e.kind for e in log.edits] == ["remove_inputs", "remove_channels"]  # input side first
    assert [e.module for e in log.edits] == ["1", "1"]
    assert [len(e.data["indices"]) for e in log.edits] == [6 - 4, 5 - 3]
    path = tmp_path / "eliminated.dnnergy"
    dnnergy.save(path, pruned, architecture=flat_mlp_factory)
    reloaded = dnnergy.load(path).model
    assert isinstance(reloaded[1], InputSubsetLinear) and reloaded[1].features.tolist() == info["kept"][INPUTS]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), pruned(x), rtol=0, atol=0)
    assert dnnergy.trace(reloaded, x[:1]).macs == 4 * 3 + 3 * 3  # the first layer reads 4 features


def test_input_elimination_needs_a_linear_reading_the_input():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    with pytest.raises(UserInputError, match="inputs: input-feature elimination needs exactly one Linear layer"):
        eliminate_plan(model, torch.randn(20, 1, 4, 4), {INPUTS: 3})
    with pytest.raises(UserInputError, match=r"inputs: p must be an int in \[1, 6\]"):
        eliminate_plan(nn.Sequential(nn.Linear(6, 2)), torch.randn(20, 6), {INPUTS: 7})


@pytest.mark.parametrize("shape", [(6, 500), (6, 9), (3, 2)])  # wide (through R of x^T = QR), near-square, tall
def test_left_singular_vectors_and_values_match_numpy_svd(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape) * np.array([10.0, 5, 3, 2, 1, 0.5][: shape[0]])[:, None]
    u, singular = _left_singular(x)
    u_ref, s_ref, _ = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(singular, s_ref, rtol=1e-10)
    np.testing.assert_allclose(np.abs(u), np.abs(u_ref), atol=1e-10)  # columns are unique up to sign

"""Sparse CSR execution of pruned Linear layers (the latency timer moved to tests/metrics/test_objectives.py)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from dnnergy.compress.sparse import SparseLinear, sparsify_linear
from dnnergy.errors import UserInputError


def _pruned_linear(m: int, n: int, density: float, seed: int = 0) -> nn.Linear:
    g = torch.Generator().manual_seed(seed)
    layer = nn.Linear(n, m)
    with torch.no_grad():
        layer.weight.mul_(torch.rand(m, n, generator=g) < density)
    return layer


@pytest.mark.parametrize("shape", [(1, 64), (5, 64), (2, 3, 64)])
def test_sparse_linear_equals_dense(shape):
    dense = _pruned_linear(32, 64, 0.1)
    sparse = SparseLinear.from_dense(dense)
    assert sparse.nnz == int((dense.weight != 0).sum())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), dense(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(sparse.to_dense(), dense.weight.detach())


def test_state_dict_round_trip_with_weights_only():
    sparse = SparseLinear.from_dense(_pruned_linear(8, 16, 0.3))
    buffer = io.BytesIO()
    torch.save(sparse.state_dict(), buffer)
    buffer.seek(0)
    fresh = SparseLinear(16, 8)  # nnz 0: buffers are resized on load
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(3, 16)
    torch.testing.assert_close(fresh(x), sparse(x))


def test_sparsify_only_converts_sparse_layers():
    model = nn.Sequential(_pruned_linear(16, 8, 0.1), nn.ReLU(), nn.Linear(16, 4))
    converted = sparsify_linear(model, max_density=0.5)
    assert isinstance(converted[0], SparseLinear) and isinstance(converted[2], nn.Linear)
    x = torch.randn(4, 8)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-6)


def test_invalid_arguments():
    with pytest.raises(UserInputError, match="from_dense expects an nn.Linear"):
        SparseLinear.from_dense(nn.Conv2d(1, 1, 1))
    with pytest.raises(UserInputError, match="SparseLinear: in_features and out_features must be positive"):
        SparseLinear(0, 3)
    with pytest.raises(UserInputError, match="expected 4 input features"):
        SparseLinear(4, 2)(torch.zeros(1, 3))
    with pytest.raises(UserInputError, match=r"max_density must be in \[0, 1\]"):
        sparsify_linear(nn.Linear(2, 2), 2.0)


def test_a_sparsified_model_saves_and_reloads(tmp_path):
    import dnnergy
    from dnnergy.compress.magnitude import magnitude_prune

    model = dnnergy.zoo.create_model("lenet300")
    magnitude_prune(model, 0.9).remove()
    sparse = sparsify_linear(model, max_density=0.5)
    loaded = dnnergy.load(dnnergy.save(tmp_path / "sparse.dnnergy", sparse)).model
    assert [type(m).__name__ for m in (loaded.fc1, loaded.fc2, loaded.fc3)] == ["SparseLinear"] * 3
    assert loaded.fc1.nnz == 784 * 300 - round(0.9 * 784 * 300)  # 23,520 of 235,200 kept
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded(x), sparse(x))

"""Least-squares reconstruction against numpy.linalg.lstsq and plain zeroing."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dnnergy.compress.reconstruct import (
    input_gram,
    input_rows,
    least_squares,
    output_error,
    pruning_error,
    set_weight_rows,
    weight_rows,
)
from dnnergy.errors import UserInputError

torch.set_num_threads(1)


def _problem(seed, n, k, m, density, dead):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    x[:, :dead] = 0.0  # inputs that are always zero (e.g. border pixels) make G singular
    w = rng.normal(size=(m, k))
    keep = rng.random((m, k)) < density
    return x, w, keep


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    k=st.integers(1, 8),
    m=st.integers(1, 4),
    density=st.floats(0.0, 1.0),
    dead=st.integers(0, 2),
)
def test_least_squares_matches_lstsq_and_never_loses_to_zeroing(seed, n, k, m, density, dead):
    x, w, keep = _problem(seed, n, k, m, density, min(dead, k))
    gram = torch.from_numpy(x.T @ x)
    refit = least_squares(gram, torch.from_numpy(w), torch.from_numpy(keep)).numpy()
    assert np.all(refit[~keep] == 0.0)
    for r in range(m):
        cols = np.flatnonzero(keep[r])
        target = x @ w[r]
        best = np.zeros(k)
        if cols.size:
            best[cols] = np.linalg.lstsq(x[:, cols], target, rcond=None)[0]
        err_lstsq = np.sum((x @ best - target) ** 2)
        err_refit = np.sum((x @ refit[r] - target) ** 2)
        err_zero = np.sum((x @ (w[r] * keep[r]) - target) ** 2)
        scale = 1e-7 * (1.0 + np.sum(target**2))
        assert err_refit <= err_zero + scale  # re-fitting never loses to zeroing the same weights
        assert err_refit == pytest.approx(err_lstsq, abs=scale)  # optimal output error
        np.testing.assert_allclose(x @ refit[r], x @ best, atol=1e-6 * (1 + np.abs(target).max()))
        if cols.size and np.linalg.matrix_rank(x[:, cols]) == cols.size and np.linalg.cond(x[:, cols]) < 1e6:
            np.testing.assert_allclose(refit[r], best, atol=1e-6 * (1 + np.abs(best).max()))  # unique solution


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), density=st.floats(0.0, 1.0))
def test_pruning_error_closed_form_equals_refit_residual(seed, density):
    x, w, keep = _problem(seed, 20, 6, 3, density, 1)
    gram = torch.from_numpy(x.T @ x)
    closed = pruning_error(gram, torch.from_numpy(w), torch.from_numpy(keep)).numpy()
    refit = least_squares(gram, torch.from_numpy(w), torch.from_numpy(keep)).numpy()
    residual = np.sum((x @ refit.T - x @ w.T) ** 2, axis=0)
    np.testing.assert_allclose(closed, residual, atol=1e-8 * (1 + residual.max()))


def test_identity_gram_is_plain_zeroing_and_output_error_example():
    w = torch.tensor([[1.0, -2.0, 3.0]])
    keep = torch.tensor([[True, False, True]])
    assert least_squares(torch.eye(3), w, keep).tolist() == [[1.0, 0.0, 3.0]]
    gram = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert output_error(gram, torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 1.0]])).item() == 2.0  # 2 * 1^2


def test_shared_keep_applies_to_every_row():
    x, w, _ = _problem(3, 25, 5, 3, 1.0, 0)
    cols = np.array([True, False, True, True, False])
    refit = least_squares(torch.from_numpy(x.T @ x), torch.from_numpy(w), torch.from_numpy(cols)).numpy()
    expected = np.linalg.lstsq(x[:, cols], x @ w.T, rcond=None)[0].T
    np.testing.assert_allclose(refit[:, cols], expected, atol=1e-9)
    assert np.all(refit[:, ~cols] == 0)


@pytest.mark.parametrize(
    "gram, weight, keep, match",
    [
        (torch.eye(3)[:2], torch.ones(1, 3), torch.ones(1, 3, dtype=torch.bool), "gram must be square"),
        (torch.eye(3), torch.ones(1, 2), torch.ones(1, 2, dtype=torch.bool), "weight must be"),
        (torch.eye(3), torch.ones(2, 3), torch.ones(3, 3, dtype=torch.bool), "keep must be"),
    ],
)
def test_least_squares_rejects_bad_shapes(gram, weight, keep, match):
    with pytest.raises(UserInputError, match=match):
        least_squares(gram, weight, keep)


@pytest.mark.parametrize(
    "conv, shape",
    [
        (nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 7, 7)),
        (nn.Conv2d(3, 5, (3, 2), stride=2, dilation=(1, 2), padding="valid"), (2, 3, 9, 8)),
        (nn.Conv2d(2, 4, 3, padding="same", padding_mode="reflect"), (1, 2, 6, 6)),
        (nn.Conv1d(3, 4, 3, padding=2), (2, 3, 10)),
    ],
)
def test_input_rows_times_weight_rows_is_the_conv_output(conv, shape):
    torch.manual_seed(0)
    x = torch.randn(shape)
    rows, w = input_rows(conv, x), weight_rows(conv)
    y = torch.einsum("grk,gmk->rgm", rows, w).reshape(-1, conv.out_channels)  # rows are (n, positions)
    ref = conv(x) - conv.bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    ref = ref.movedim(1, -1).reshape(-1, conv.out_channels)
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)


def test_input_gram_of_hidden_layer_and_weight_roundtrip():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(37, 5)
    hidden = torch.relu(model[0](x)).detach().double().numpy()
    gram = input_gram(model, "2", x, batch_size=10)  # 4 batches accumulated
    np.testing.assert_allclose(gram[0].numpy(), hidden.T @ hidden, rtol=1e-6)
    rows = weight_rows(model[2])
    set_weight_rows(model[2], rows * 2)
    torch.testing.assert_close(model[2].weight.detach(), rows[0] * 2)
    with pytest.raises(UserInputError, match="no layer 'fc9'"):
        input_gram(model, "fc9", x)
    with pytest.raises(UserInputError, match="supports Linear, Conv1d and Conv2d"):
        input_gram(model, "1", x)


def test_rows_that_removed_little_use_the_obs_form_with_the_same_solution():
    # 6 rows, 1-3 of 10 weights removed each (so the OBS form with G^-1 is used), well
    # conditioned X: the unique solution must equal numpy's least squares on the kept columns.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 10))
    w = rng.normal(size=(6, 10))
    keep = np.ones((6, 10), dtype=bool)
    for r in range(6):
        keep[r, rng.choice(10, size=1 + r % 3, replace=False)] = False
    refit = least_squares(torch.from_numpy(x.T @ x), torch.from_numpy(w), torch.from_numpy(keep)).numpy()
    for r in range(6):
        cols = np.flatnonzero(keep[r])
        expected = np.zeros(10)
        expected[cols] = np.linalg.lstsq(x[:, cols], x @ w[r], rcond=None)[0]
        np.testing.assert_allclose(refit[r], expected, rtol=1e-9, atol=1e-9)

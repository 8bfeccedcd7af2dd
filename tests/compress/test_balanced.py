"""Load-balance-aware (ESE) and SIMD-aware (Scalpel) pruning masks."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dnnergy.compress import CompressionContext, Masks, get_method
from dnnergy.compress.balanced import (
    balanced_keep,
    balanced_masks,
    simd_keep,
    simd_masks,
)
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError


@settings(max_examples=30, deadline=None)
@given(blocks=st.sampled_from([1, 2, 4]), rows_per_block=st.integers(1, 4), k=st.integers(1, 9),
       sparsity=st.floats(0, 1), seed=st.integers(0, 1000), interleaved=st.booleans())
def test_balanced_has_equal_nonzeros_per_block(blocks, rows_per_block, k, sparsity, seed, interleaved):
    weight = torch.randn(blocks * rows_per_block, k, generator=torch.Generator().manual_seed(seed))
    layout = "interleaved" if interleaved else "contiguous"
    keep = balanced_keep(weight, sparsity, blocks, layout)
    per_block = [keep[b::blocks] if interleaved else keep[b * rows_per_block:(b + 1) * rows_per_block] for b in range(blocks)]
    expected = rows_per_block * k - round(sparsity * rows_per_block * k)  # every PE keeps the same count
    assert [int(p.sum()) for p in per_block] == [expected] * blocks
    for b, block in enumerate(per_block):  # within a block the kept weights are the largest
        values = (weight[b::blocks] if interleaved else weight[b * rows_per_block:(b + 1) * rows_per_block]).abs()
        if block.any() and (~block).any():
            assert values[block].min() >= values[~block].max()


def test_balanced_hand_example():
    weight = torch.tensor([[1.0, 9.0], [8.0, 2.0], [3.0, 4.0], [7.0, 0.5]])
    keep = balanced_keep(weight, 0.5, 2)
    # PE 0 (rows 0-1): keep 9 and 8; PE 1 (rows 2-3): keep 7 and 4 - although 3 > 2 of PE 0 goes
    assert keep.tolist() == [[False, True], [True, False], [False, True], [True, False]]


def test_simd_removes_whole_aligned_groups():
    weight = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    keep = simd_keep(weight, 0.5, 4)
    for row in keep:
        for start in range(0, 10, 4):  # groups [0,4), [4,8), [8,10)
            group = row[start:start + 4]
            assert bool(group.all()) or not bool(group.any())
    norms = torch.stack([torch.linalg.vector_norm(weight[:, s:s + 4], dim=1) for s in range(0, 10, 4)], dim=1)
    kept = torch.stack([keep[:, s] for s in range(0, 10, 4)], dim=1)
    assert int(kept.sum()) == 18 - round(0.5 * 18)  # 6 rows x 3 groups
    assert norms[kept].min() >= norms[~kept].max()


def test_simd_hand_example():
    assert simd_keep(torch.tensor([[3.0, 4.0, 0.1, 0.1]]), 0.5, 2).tolist() == [[True, True, False, False]]


def test_model_masks_attach_to_masks_object():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    masks = Masks(model)
    masks.update(balanced_masks(model, 0.5, 2))
    assert int((model[0].weight[:2] != 0).sum()) == int((model[0].weight[2:] != 0).sum()) == 6
    assert set(simd_masks(model, 0.25, 2)) == {"0.weight", "2.weight"}


def test_invalid_arguments():
    with pytest.raises(UserInputError, match="blocks must be a positive int dividing the 3 rows"):
        balanced_keep(torch.ones(3, 2), 0.5, 2)
    with pytest.raises(UserInputError, match="0.weight: blocks must"):
        balanced_masks(nn.Sequential(nn.Linear(2, 3)), 0.5, 2)
    with pytest.raises(UserInputError, match="layout must be"):
        balanced_keep(torch.ones(2, 2), 0.5, 2, "diagonal")
    with pytest.raises(UserInputError, match=r"sparsity must be in \[0, 1\]"):
        simd_keep(torch.ones(2, 2), 1.5, 2)
    with pytest.raises(UserInputError, match="width must be a positive int"):
        simd_keep(torch.ones(2, 2), 0.5, 0)


# -- the registered methods -------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy6():
    return synthetic(n=60, shape=(6,), classes=3, seed=0, noise=0.25)


def _six_four_three():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))


def test_balanced_method_balances_divisible_layers_and_leaves_the_rest_dense(toy6):
    context = CompressionContext(toy6, fine_tuning=None, max_accuracy_drop=None)
    result = get_method("balanced")(_six_four_three(), context, sparsity=0.5, blocks=2)
    model = result.model
    # 4 rows over 2 PEs: each PE's 2 x 6 = 12 weights keep 12 - round(0.5 * 12) = 6
    assert int((model[0].weight[:2] != 0).sum()) == int((model[0].weight[2:] != 0).sum()) == 6
    assert int((model[2].weight == 0).sum()) == 0  # 3 rows: 2 PEs cannot share them, left dense
    assert result.record.info["dense"] == ["2.weight"] and "2.weight left dense" in result.record.summary
    assert list(Masks(model)) == ["0.weight"]
    with pytest.raises(UserInputError, match="2.weight: blocks must be a positive int dividing the 3 rows"):
        get_method("balanced")(_six_four_three(), context, sparsity=0.5, blocks=2, layers=("2",))


def test_simd_method_prunes_whole_groups(toy6):
    context = CompressionContext(toy6, fine_tuning=None, max_accuracy_drop=None)
    model = get_method("simd")(_six_four_three(), context, sparsity=0.5, width=2).model
    for name in ("0.weight", "2.weight"):  # groups [0,2), [2,4), ... of every row are all kept or all pruned
        weight = dict(model.named_parameters())[name]
        groups = (weight != 0).reshape(weight.shape[0], -1, 2)
        assert bool((groups.all(dim=2) | ~groups.any(dim=2)).all()), name
    # 0.weight: 4 rows x 3 groups = 12, round(0.5 * 12) = 6 pruned; 2.weight: 3 x 2 = 6, 3 pruned
    assert int((model[0].weight == 0).sum()) == 6 * 2 and int((model[2].weight == 0).sum()) == 3 * 2

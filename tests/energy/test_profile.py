import pytest
import torch
from torch import nn

from dnnergy.energy import estimate, profile
from dnnergy.errors import UserInputError


def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():
        model[1].weight[:, :32] = 0  # half of the first layer's weights pruned
    return model


def test_profile_measures_weights_and_fmaps():
    batch = torch.rand(4, 1, 8, 8)
    batch[:, :, :4] = 0  # half of every input is zero
    workload = profile(tiny(), batch)
    first = workload.layers[0]
    assert first.w_density == pytest.approx(0.5)  # 32 of 64 columns zeroed
    assert first.i_density == pytest.approx(0.5)
    assert first.i_stats.numel == 4 * 64 and first.i_stats.nonzeros == 4 * 32
    relu_out = [layer for layer in workload.layers if layer.kind.value == "fc"][1]
    assert relu_out.i_density < 1.0  # ReLU zeros reach the second layer
    dense = estimate(workload.with_all(w_density=1.0, i_density=1.0, o_density=1.0, w_stats=None, i_stats=None, o_stats=None), "eyeriss")
    assert estimate(workload, "eyeriss").total < dense.total


def test_profile_on_a_dataset_name():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    workload = profile(model, "digits", samples=8)
    assert workload.layers[0].N == 8
    assert workload.layers[0].i_stats.numel == 8 * 64
    # scikit-learn digits have blank borders: many zero pixels
    assert workload.layers[0].i_density < 0.9


def test_profile_rejects_shapes_and_other_types():
    with pytest.raises(UserInputError, match="must hold real data"):
        profile(tiny(), torch.zeros(2, 64, dtype=torch.long))
    with pytest.raises(UserInputError, match="batch must be a tensor, a dataset name or a Dataset"):
        profile(tiny(), 3.5)
    with pytest.raises(UserInputError, match="samples must be a positive int"):
        profile(tiny(), "digits", samples=0)

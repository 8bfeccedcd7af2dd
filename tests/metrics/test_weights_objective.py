"""WeightsObjective: weights of the MAC layers, counted by hand."""

from __future__ import annotations

import pickle

import torch
from torch import nn

from dnnergy.metrics import WeightsObjective


def test_weights_by_hand_and_by_module():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    objective = WeightsObjective((1, 1, 8, 8))
    # conv 4 * 1 * 3 * 3 = 36, linear 144 * 10 = 1,440 (biases are not weights)
    assert objective(model) == 36 + 1440 and objective.unit == "weights"
    assert objective.by_module(model) == {"0": 36.0, "3": 1440.0}
    assert pickle.loads(pickle.dumps(objective))(model) == 1476


def test_nonzero_weights_see_zeros():
    layer = nn.Linear(4, 2)
    with torch.no_grad():
        layer.weight[0] = 0.0  # 4 of 8 weights zero
    assert WeightsObjective((1, 4), nonzero=True)(layer) == 4
    assert WeightsObjective((1, 4))(layer) == 8

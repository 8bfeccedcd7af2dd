"""trace(compute=False): shapes-only convolutions and matmuls give the same records, faster."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.errors import UserInputError
from dnnergy.zoo import create_model, model_info


@pytest.mark.parametrize(("name", "shape"), [("lenet5", None), ("mobilenet_v1", (1, 3, 64, 64)), ("resnet18", (1, 3, 64, 64)), ("vit_tiny", None), ("shufflenet", (1, 3, 64, 64))])
def test_shapes_only_trace_gives_identical_records(name, shape):
    model = create_model(name)
    shape = shape or model_info(name).input_shape
    real = dnnergy.trace(model, shape)
    fast = dnnergy.trace(model, shape, compute=False)
    assert fast.layers == real.layers
    assert (fast.params, fast.macs, fast.unsupported) == (real.params, real.macs, real.unsupported)


def test_shapes_only_outputs_are_zeros_so_value_branches_differ():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.extra = nn.Linear(4, 4)
            with torch.no_grad():
                self.fc.bias.fill_(1.0)

        def forward(self, x):
            y = self.fc(x)
            return self.extra(y) if y.sum() > 0 else y  # the documented caveat: zeros take the other branch

    x = torch.ones(1, 4)
    assert len(dnnergy.trace(Branchy(), x).mac_layers()) == 2
    assert len(dnnergy.trace(Branchy(), x, compute=False).mac_layers()) == 1


def test_measure_needs_real_values():
    with pytest.raises(UserInputError, match="measure=True needs compute=True"):
        dnnergy.trace(nn.Linear(2, 2), (1, 2), measure=True, compute=False)

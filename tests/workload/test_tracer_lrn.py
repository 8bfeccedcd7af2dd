"""nn.LocalResponseNorm is one NORM layer (formulas.local_response_norm), not the six ops PyTorch runs for it."""

from __future__ import annotations

import pytest
import torch.nn.functional as F
from torch import nn

import dnnergy
from dnnergy import zoo
from dnnergy.workload import formulas
from dnnergy.workload.layer import OpKind


@pytest.mark.parametrize("compute", [None, True])
def test_alexnet_lrn_is_one_layer_per_module_with_a_hand_count(compute):
    workload = dnnergy.trace(zoo.create_model("alexnet"), zoo.model_info("alexnet").input_shape, compute=compute)
    lrn = [layer for layer in workload.layers if layer.op == "nn.LocalResponseNorm"]
    assert [layer.name for layer in lrn] == ["features.2", "features.6"]
    assert not [layer for layer in workload.layers if layer.op in ("aten.pow", "aten.avg_pool3d", "aten.div")]
    # hand count: 10 ops per element (square, 5 window adds, scale, add k, power, divide)
    assert [(layer.kind, layer.C, layer.H, layer.W, layer.M, layer.E, layer.F) for layer in lrn] == [
        (OpKind.NORM, 96, 55, 55, 96, 55, 55), (OpKind.NORM, 256, 27, 27, 256, 27, 27)]
    assert [layer.ops for layer in lrn] == [96 * 55 * 55 * 10, 256 * 27 * 27 * 10]
    assert [(layer.ifmap, layer.ofmap) for layer in lrn] == [(96 * 55 * 55,) * 2, (256 * 27 * 27,) * 2]


@pytest.mark.parametrize(("shape", "size"), [((1, 96, 55, 55), 5), ((2, 7, 3, 4), 3), ((1, 16, 9), 4)])
def test_lrn_record_prices_what_the_decomposed_ops_add_up_to(shape, size):
    module = dnnergy.trace(nn.LocalResponseNorm(size), shape)
    (record,) = module.layers
    assert (record.name, record.op, record.kind) == ("local_response_norm", "nn.LocalResponseNorm", OpKind.NORM)

    class Functional(nn.Module):  # the functional form has no module: PyTorch's decomposition is counted op by op
        def forward(self, x):
            return F.local_response_norm(x, size)

    decomposed = dnnergy.trace(Functional(), shape)  # pow, avg_pool (size taps), mul, add, pow, div
    assert len(decomposed.layers) == 6
    assert record.ops == sum(layer.ops for layer in decomposed.layers)


def test_lrn_measured_densities_and_bad_size():
    workload = dnnergy.trace(nn.Sequential(nn.ReLU(), nn.LocalResponseNorm(3)), (1, 4, 5, 5), measure=True)
    assert [layer.op for layer in workload.layers] == ["aten.relu", "nn.LocalResponseNorm"]
    lrn = workload.layers[1]
    assert lrn.name == "1" and lrn.i_density == workload.layers[0].o_density and not workload.unsupported
    with pytest.raises(ValueError, match="size must be a positive int"):
        formulas.local_response_norm([1, 4, 5, 5], 0)

"""Bugs the network fuzzer (test_network_fuzz.py) found, each pinned by a hand count.

* a causal ``F.scaled_dot_product_attention`` builds its mask with ``aten.tril``, which was
  listed as an uncounted op with an unknown MAC share (it is free: a mask of constants);
* ``nn.AdaptiveMaxPool3d`` (``aten.adaptive_max_pool3d``) had no handler;
* 3-D adaptive pools folded depth and height into one dimension and miscounted the taps;
* ``from_onnx`` had no handler for the ONNX ``RNN`` node that ``nn.RNN`` exports to.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dnnergy
from dnnergy import OpKind
from dnnergy.workload import formulas


def trace_clean(model: nn.Module, example) -> dnnergy.Workload:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an uncounted op warns
        workload = dnnergy.trace(model, example)
    assert workload.unsupported == ()
    return workload


class CausalAttention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_causal_attention_mask_is_free():
    B, H, L, S, E, Ev = 2, 3, 4, 5, 6, 2  # E != Ev takes the math path, which builds the mask with tril
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, Ev)
    workload = trace_clean(CausalAttention(), (q, k, v))
    assert workload.macs == B * H * L * S * (E + Ev) == 960  # every score and weighted sum, masked or not
    assert dict(workload.ignored).get("aten.tril") == 1


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_adaptive_3d_pools_count_each_dimension_apart(kind):
    # [1, 2, 2, 3, 1] -> (1, 2, 1): depth windows [0, 2); height [0, 2), [1, 3); width [0, 1):
    # 2 * (2 + 2) * 1 = 8 taps per channel, 16 for 2 channels (folding depth x height gave 6 per channel)
    pool = nn.AdaptiveMaxPool3d((1, 2, 1)) if kind == "max" else nn.AdaptiveAvgPool3d((1, 2, 1))
    (layer,) = trace_clean(pool, (1, 2, 2, 3, 1)).layers
    assert (layer.kind, layer.ops) == (OpKind.POOL, 16)


def test_adaptive_pool_formula_is_exact_per_dimension():
    assert formulas.adaptive_pool([1, 1, 2, 3, 1], [1, 1, 1, 2, 1])["ops"] == 8
    assert formulas.adaptive_pool([2, 3, 5, 7], [2, 3, 2, 3])["ops"] == 2 * 3 * 6 * 9  # 5 -> 2: 3 + 3; 7 -> 3: 3 + 3 + 3
    assert formulas.adaptive_pool([1, 4, 6], [1, 4, 4])["ops"] == 4 * 8  # 6 -> 4: windows of 2, 2, 2, 2


def test_rnn_formula():
    ih, hh, gates, cell = (fields for _, fields in formulas.rnn(6, 3, 4, biases_ih=4, biases_hh=4))
    assert (ih["macs"], hh["macs"]) == (6 * 3 * 4, 6 * 4 * 4)  # steps x inputs x hidden, steps x hidden x hidden
    assert (gates["ops"], cell["ops"]) == (24, 24)  # one tanh and one ih + hh add per hidden unit and step


@pytest.mark.parametrize("layers, bidirectional, bias", [(1, False, True), (2, True, False)])
def test_onnx_rnn_counts_like_the_trace(tmp_path, layers, bidirectional, bias):
    T, N, I, H = 3, 2, 4, 5
    model = nn.RNN(I, H, num_layers=layers, bidirectional=bidirectional, bias=bias).eval()
    path = tmp_path / "rnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(T, N, I),), str(path), dynamo=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imported = dnnergy.from_onnx(path)
    dirs = 2 if bidirectional else 1
    # T*N*H*(I_l + H) per layer and direction; a second layer reads both directions' outputs
    expected = sum(dirs * T * N * H * ((I if l == 0 else dirs * H) + H) for l in range(layers))
    assert imported.unsupported == ()
    assert imported.macs == expected == trace_clean(model, (T, N, I)).macs
    assert sum(l.biases for l in imported.layers) == (2 * H * dirs * layers if bias else 0)

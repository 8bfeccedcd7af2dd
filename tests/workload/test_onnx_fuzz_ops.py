"""``from_onnx`` on the ops the fuzzer found uncounted (issue 14): LSTM, GRU, Einsum, reflect/edge Pad.

Each model is exported with the TorchScript exporter (``dynamo=False``, opset 17); the
imported MACs must equal a hand count *and* ``dnnergy.trace`` of the same torch model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from dnnergy.workload import OpKind, trace
from dnnergy.workload.onnx_import import from_onnx


def _import(model: nn.Module, x: torch.Tensor, tmp_path: Path):
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an uncounted op warns: fail on it
        return from_onnx(path)


def _macs(workload) -> int:
    return sum(layer.macs for layer in workload.layers)


class _Einsums(nn.Module):
    """A projection by a parameter and an activation-activation batched product."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 7))

    def forward(self, x):
        return torch.einsum("bld,de->ble", x, self.w).sum() + torch.einsum("bld,bmd->blm", x, x).sum()


class _Pads(nn.Module):
    def __init__(self):
        super().__init__()
        self.reflect, self.edge, self.conv = nn.ReflectionPad2d(1), nn.ReplicationPad2d(2), nn.Conv2d(2, 3, 3)

    def forward(self, x):
        return self.conv(self.edge(self.reflect(x)))


# (model, input, hand count): T steps, N batch, H hidden, I inputs
CASES = {
    # T*N*4H*(I+H) per direction: 3*2*24*(4+6)*2
    "lstm-bidirectional": (lambda: nn.LSTM(4, 6, bidirectional=True), (3, 2, 4), 3 * 2 * 24 * 10 * 2),
    "lstm-batch-first-2-layers": (lambda: nn.LSTM(4, 6, num_layers=2, batch_first=True), (2, 3, 4), 6 * 24 * (10 + 12)),
    # T*N*3H*(I+H): layer 1 inputs 4, layer 2 inputs 2H = 12, both directions
    "gru-2-layers-bidirectional": (lambda: nn.GRU(4, 6, num_layers=2, bidirectional=True), (3, 2, 4), 2 * 6 * 18 * (10 + 18)),
    "gru": (lambda: nn.GRU(5, 3), (4, 1, 5), 4 * 9 * 8),
    # b*l*d*e + b*l*m*d = 2*3*5*7 + 2*3*3*5
    "einsum": (_Einsums, (2, 3, 5), 210 + 90),
    # the pads add nothing: a 3x3 conv on the 2x4x4 input padded by 1+2 on each side (10x10 -> 8x8)
    "reflect-edge-pad": (_Pads, (1, 2, 4, 4), 8 * 8 * 3 * 2 * 9),
}


@pytest.mark.parametrize("case", CASES)
def test_imported_macs_equal_hand_count_and_trace(case, tmp_path):
    make, shape, expected = CASES[case]
    torch.manual_seed(0)
    model, x = make(), torch.zeros(shape)
    imported = _import(model, x, tmp_path)
    assert imported.unsupported == ()
    assert _macs(imported) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = trace(model, x)
    assert _macs(traced) == expected


def test_lstm_records_match_the_tracer(tmp_path):
    """Both front ends use ``formulas.lstm``: the records agree field by field."""
    model, x = nn.LSTM(4, 6, bidirectional=True), torch.zeros(3, 2, 4)
    imported = _import(model, x, tmp_path)
    traced = trace(model, x)
    fields = ("kind", "macs", "ops", "weights", "biases", "ifmap", "ofmap")
    rnn = [layer for layer in traced.layers if layer.op == "aten.mkldnn_rnn_layer"]
    assert [[getattr(l, f) for f in fields] for l in imported.layers] == [[getattr(l, f) for f in fields] for l in rnn]


def test_gru_totals_match_the_tracer_per_step_records(tmp_path):
    """The tracer sees nn.GRU step by step; its MACs, gate/cell ops and biases sum to ours."""
    model, x = nn.GRU(4, 6), torch.zeros(3, 2, 4)
    imported = _import(model, x, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = trace(model, x)
    rows, hidden = 3 * 2, 6
    for kind, total in ((OpKind.ACTIVATION, 3 * rows * hidden), (OpKind.ELTWISE, 7 * rows * hidden)):
        assert sum(l.ops for l in imported.layers if l.kind == kind) == total
        assert sum(l.ops for l in traced.layers if l.kind == kind) == total
    assert sum(l.biases for l in imported.layers) == 2 * 3 * hidden  # b_ih and b_hh once each


def test_einsum_outer_product_is_element_wise(tmp_path):
    class Outer(nn.Module):
        def forward(self, x):
            return torch.einsum("bi,bj->bij", x, x)

    imported = _import(Outer(), torch.zeros(2, 3), tmp_path)
    (layer,) = imported.layers
    assert layer.macs == 0 and layer.ops == 2 * 3 * 3 and layer.kind == OpKind.ELTWISE


def test_declared_shapes_that_contradict_the_graph_warn_and_the_computed_ones_count(tmp_path):
    """A file declaring wrong shapes (TorchScript's ``interpolate(mode='area')`` bug): onnxruntime's shapes win."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    pool = helper.make_node("AveragePool", ["x"], ["y"], name="area_pool", kernel_shape=[2, 2], strides=[2, 2])
    relu = helper.make_node("Relu", ["y"], ["z"], name="relu")
    wrong = [1, 2, 5, 5]  # 8x8 pooled by 2 is 4x4
    graph = helper.make_graph(
        [pool, relu], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, wrong)],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, wrong)],
    )
    path = tmp_path / "declared.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    actual = ort.InferenceSession(str(path), options).run(None, {"x": np.zeros((1, 2, 8, 8), np.float32)})[0].shape
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imported = from_onnx(path)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "tensor 'z' of node 'relu' (Relu)" in messages[1]
    assert "tensor 'y' of node 'area_pool' (AveragePool) is declared [1, 2, 5, 5] but the graph computes [1, 2, 4, 4]; " \
        "using the computed shape" in messages[0]
    assert [layer.ofmap for layer in imported.layers] == [int(np.prod(actual))] * 2
    assert imported.layers[0].ops == 2 * 4 * 4 * 4  # 4 taps per output


def test_agreeing_declared_shapes_do_not_warn(tmp_path):
    _import(nn.Sequential(nn.Conv2d(1, 2, 3), nn.AvgPool2d(2)), torch.zeros(1, 1, 8, 8), tmp_path)  # _import fails on any warning

"""``from_onnx`` against ``trace`` of the model that was exported, and against closed forms.

Zoo models and small hand-written nets are exported with the TorchScript exporter
(``dynamo=False``, opset 17) into a temporary directory; the MAC layers must agree with
``dnnergy.trace`` of the same model field by field, and the totals must be equal. Hand-built
ONNX graphs (onnx.helper) cover attributes PyTorch cannot emit (asymmetric pads, Gemm
transA) and the error paths.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from dnnergy.errors import OnnxImportError, UnsupportedOpError, UserInputError
from dnnergy.workload import OpKind, trace
from dnnergy.workload.onnx_import import from_onnx
from dnnergy.zoo import create_model, model_info

#: Fields a MAC layer must share between the two front ends.
MAC_FIELDS = (
    "name", "module", "kind", "macs", "weights", "ifmap", "ofmap", "groups", "stride", "padding", "dilation",
    "transposed", "weight_is_param", "N", "C", "H", "W", "M", "R", "S", "E", "F",
)


def export(model: nn.Module, example, path: Path, **kwargs) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), example, str(path), dynamo=False, opset_version=17, **kwargs)
    return path


def both(model: nn.Module, example, path: Path):
    """(trace workload, from_onnx workload) of one model."""
    model.eval()
    traced = trace(model, example)
    return traced, from_onnx(export(model, example, path))


def assert_same_mac_layers(traced, imported) -> None:
    a, b = traced.mac_layers(), imported.mac_layers()
    assert [layer.name for layer in a] == [layer.name for layer in b]
    for x, y in zip(a, b):
        assert {f: getattr(x, f) for f in MAC_FIELDS} == {f: getattr(y, f) for f in MAC_FIELDS}, x.name
        # an eval-mode export folds a following BatchNorm into the conv: M biases appear
        assert y.biases in (x.biases, x.M), x.name
    assert imported.macs == traced.macs
    assert sum(layer.weights for layer in b) == sum(layer.weights for layer in a)  # NORM weights fold away


def records(workload) -> list[dict]:
    """Every field of every layer except the op name (``aten.*`` vs ``onnx.*``)."""
    return [{k: v for k, v in layer.to_dict().items() if k != "op"} for layer in workload]


def assert_same_layers(traced, imported) -> None:
    assert records(imported) == records(traced)


# -- zoo models -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zoo_pair(tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            model = create_model(name)
            x = torch.randn(model_info(name).input_shape, generator=torch.Generator().manual_seed(0))
            cache[name] = both(model, x, tmp_path_factory.mktemp("zoo") / f"{name}.onnx")
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["lenet300", "lenet5", "cifar10_quick", "mobilenet_v1", "resnet18"])
def test_zoo_mac_layers_match_trace(zoo_pair, name):
    traced, imported = zoo_pair(name)
    assert_same_mac_layers(traced, imported)
    assert imported.source == "onnx" and not imported.unsupported


@pytest.mark.parametrize(
    "name, macs, weights",
    [
        # 784*300 + 300*100 + 100*10
        ("lenet300", 266_200, 266_200),
        # conv1 20*1*25*24*24 = 288,000; conv2 50*20*25*8*8 = 1,600,000; fc 800*500 + 500*10 = 405,000
        ("lenet5", 2_293_000, 20 * 25 + 50 * 20 * 25 + 800 * 500 + 500 * 10),
    ],
)
def test_lenets_match_closed_form_and_every_record(zoo_pair, name, macs, weights):
    traced, imported = zoo_pair(name)
    assert imported.macs == macs and imported.weights == weights
    assert_same_layers(traced, imported)  # no BatchNorm, no GELU: even the non-MAC records agree
    assert imported.ignored == (("onnx.Flatten", 1),)  # x.flatten(1) is the only free op


def test_mobilenet_depthwise_layers(zoo_pair):
    _, imported = zoo_pair("mobilenet_v1")
    depthwise = [layer for layer in imported.of_kind(OpKind.CONV) if layer.groups > 1]
    assert len(depthwise) == 13  # MobileNet v1: 13 depthwise-separable blocks
    for layer in depthwise:
        assert layer.groups == layer.C == layer.M
        assert layer.macs == layer.N * layer.C * layer.R * layer.S * layer.E * layer.F


def test_resnet18_residual_adds_and_names(zoo_pair):
    traced, imported = zoo_pair("resnet18")
    adds = [layer for layer in imported.of_kind(OpKind.ELTWISE)]
    assert len(adds) == 8  # one residual add per basic block, 4 stages x 2 blocks
    assert all(layer.ifmap == 2 * layer.ofmap for layer in adds)
    assert [layer.name for layer in adds] == [layer.name for layer in traced.of_kind(OpKind.ELTWISE)]
    # BatchNorm is folded into the convs by the exporter: the NORM records are the documented difference
    assert len(traced.of_kind(OpKind.NORM)) == 20 and not imported.of_kind(OpKind.NORM)


@pytest.mark.slow
def test_vit_tiny_matches_trace(zoo_pair):
    traced, imported = zoo_pair("vit_tiny")
    assert_same_mac_layers(traced, imported)
    assert not imported.unsupported


# -- hand-written nets --------------------------------------------------------------------------------

class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.up_grouped = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2, bias=False)

    def forward(self, x):
        return self.up_grouped(torch.relu(self.up(x)))


def test_conv_transpose(tmp_path):
    traced, imported = both(Decoder(), torch.randn(1, 4, 5, 5), tmp_path / "dec.onnx")
    assert_same_layers(traced, imported)
    up, grouped = imported.mac_layers()
    # transposed MACs = N*C*(M/g)*R*S*H*W: 1*4*6*9*5*5 = 5400; output (5-1)*2 - 2 + 3 + 1 = 10
    assert (up.macs, up.E, up.transposed) == (5400, 10, True)
    # 1*6*(4/2)*16*10*10 = 19200, output (10-1)*2 - 2 + 4 = 20
    assert (grouped.macs, grouped.groups, grouped.E) == (19200, 2, 20)


class Attention(nn.Module):
    """Single-head self-attention written out: q @ k^T, softmax, @ v, with Linear projections."""

    def __init__(self, d: int = 16):
        super().__init__()
        self.q, self.k, self.v, self.out = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.scale = d ** -0.5

    def forward(self, x):
        q, k, v = self.q(x), self.k(x), self.v(x)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        return self.out(attn @ v)


def test_attention_block(tmp_path):
    traced, imported = both(Attention(), torch.randn(2, 5, 16), tmp_path / "attn.onnx")
    assert_same_layers(traced, imported)  # the Add(bias) after each 3-D MatMul folds into the FC
    kinds = [(layer.name, layer.kind) for layer in imported.mac_layers()]
    fc, mm = OpKind.FC, OpKind.MATMUL
    assert kinds == [("q", fc), ("k", fc), ("v", fc), ("bmm", mm), ("bmm_1", mm), ("out", fc)]
    qk = imported["bmm"]
    # [2,5,16] @ [2,16,5]: 2*5*16*5 = 800 MACs, one group per batch matrix
    assert (qk.macs, qk.groups, qk.weight_is_param) == (800, 2, False)
    # four projections of 2*5 vectors: 4 * 10*16*16 = 10240, plus 2 * 800
    assert imported.macs == 10240 + 1600
    assert all(imported[n].biases == 16 for n in ("q", "k", "v", "out"))


class TokenNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 12)
        self.pos = nn.Parameter(torch.randn(1, 7, 12))
        self.norm = nn.LayerNorm(12)
        self.head = nn.Linear(12, 3)

    def forward(self, tokens):
        h = self.norm(self.emb(tokens) + self.pos)
        return self.head(h.mean(1))


def test_embedding_net(tmp_path):
    tokens = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    traced, imported = both(TokenNet(), tokens, tmp_path / "tok.onnx")
    assert_same_layers(traced, imported)
    emb = imported["emb"]
    # a 50x12 table read at 2*7 token positions: 14*12 = 168 outputs
    assert (emb.kind, emb.weights, emb.ifmap, emb.ofmap) == (OpKind.EMBEDDING, 600, 14, 168)
    assert imported["add"].weights == 7 * 12  # the learned position table is a parameter operand


def test_local_response_norm_export_matches_trace(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LocalResponseNorm(5), nn.ReLU())
    traced, imported = both(net, torch.randn(1, 3, 8, 8), tmp_path / "lrn.onnx")
    assert not traced.unsupported and not imported.unsupported
    # the exporter writes the LRN as its six ops; trace makes them one NORM record of the same work:
    # per each of the 8*6*6 outputs: square, 5 window adds, scale, shift, power, divide
    lrn = traced["1"]
    assert (lrn.kind, lrn.ops) == (OpKind.NORM, 8 * 6 * 6 * 10)
    assert sum(layer.ops for layer in imported if layer.module == "1") == lrn.ops
    assert records(imported)[0] == records(traced)[0] and records(imported)[-1] == records(traced)[-1]


@pytest.mark.parametrize("shape", [(2, 8, 4, 4), (1, 6, 10)])
def test_fused_lrn_node_matches_trace_of_local_response_norm(tmp_path, shape):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lrn = nn.LocalResponseNorm(3)

        def forward(self, x):
            return self.lrn(x)

    nodes = [helper.make_node("LRN", ["x"], ["y"], name="/lrn/LRN", size=3)]
    path = save_graph(tmp_path / "lrn_node.onnx", nodes, [tensor("x", list(shape))], [tensor("y", None)])
    assert_same_layers(trace(Net(), shape), from_onnx(path))


def test_matmul_operand_shapes_follow_torch_matmul(tmp_path):
    class Products(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(6, 6)
            self.p = nn.Parameter(torch.randn(6, 5))
            self.norm = nn.GroupNorm(2, 4)

        def forward(self, x, z):
            y = self.proj(x)  # [2, 3, 6]
            return (y @ y[0].t()).sum() + (y[0].t() @ y).sum() + (x @ self.p).sum() + self.norm(z).sum()

    traced, imported = both(Products(), (torch.randn(2, 3, 6), torch.randn(1, 4, 5, 5)), tmp_path / "mm.onnx")
    assert_same_mac_layers(traced, imported)
    # 3-D @ 2-D activation folds into one matrix product: 6 rows x 6 x 3 = 108 MACs; x @ param is FC
    assert [(layer.kind, layer.macs, layer.groups) for layer in imported.mac_layers()[1:]] == [
        (OpKind.MATMUL, 108, 1), (OpKind.MATMUL, 2 * 6 * 3 * 6, 2), (OpKind.FC, 6 * 6 * 5, 1),
    ]
    # GroupNorm (InstanceNormalization, Mul, Add) folds back into one NORM with C weights and biases
    norm = imported["norm"]
    assert (norm.kind, norm.weights, norm.biases, norm.ops) == (OpKind.NORM, 4, 4, 100)


# -- hand-built graphs --------------------------------------------------------------------------------

def save_graph(path: Path, nodes, inputs, outputs, initializers=(), value_info=(), opsets=(("", 17),)) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers), value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    onnx.save(model, str(path))
    return path


def tensor(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weight(name: str, shape) -> onnx.TensorProto:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def test_asymmetric_and_same_padding(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="/asym/Conv", pads=[1, 1, 0, 0]),
        helper.make_node("Conv", ["a", "w2"], ["b"], name="/same/Conv", strides=[2, 2], auto_pad="SAME_UPPER"),
    ]
    path = save_graph(tmp_path / "pads.onnx", nodes, [tensor("x", [1, 2, 5, 5])], [tensor("b", None)],
                      [weight("w", [4, 2, 3, 3]), weight("w2", [4, 4, 3, 3])])
    asym, same = from_onnx(path).layers
    # output (5 + 1 + 0 - 3) + 1 = 4; MACs 1*4*2*9*4*4 = 1152; the begin pads are recorded
    assert (asym.name, asym.E, asym.F, asym.macs, asym.padding) == ("asym", 4, 4, 1152, (1, 1))
    # SAME_UPPER, stride 2 on 4x4: output 2, total pad (2-1)*2 + 3 - 4 = 1, begin 0; MACs 4*4*9*2*2 = 576
    assert (same.E, same.macs, same.padding, same.stride) == (2, 576, (0, 0), (2, 2))


def test_gemm_transposed_operands_and_bias(tmp_path):
    nodes = [helper.make_node("Gemm", ["a", "b", "c"], ["y"], name="/fc/Gemm", transA=1, transB=1)]
    path = save_graph(tmp_path / "gemm.onnx", nodes, [tensor("a", [3, 4])], [tensor("y", None)],
                      [weight("b", [5, 3]), weight("c", [5])])
    (fc,) = from_onnx(path).layers
    # A^T is [4, 3], B^T is [3, 5]: 4*3*5 = 60 MACs, 5 biases
    assert (fc.kind, fc.N, fc.C, fc.M, fc.macs, fc.weights, fc.biases) == (OpKind.FC, 4, 3, 5, 60, 15, 5)


def test_dynamo_name_scopes_metadata(tmp_path):
    node = helper.make_node("Relu", ["x"], ["y"], name="node_relu")
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'encoder', 'encoder.act', 'relu']")
    path = save_graph(tmp_path / "meta.onnx", [node], [tensor("x", [1, 8])], [tensor("y", None)])
    (layer,) = from_onnx(path).layers
    assert (layer.name, layer.module, layer.ops) == ("encoder.act", "encoder.act", 8)


@settings(max_examples=25, deadline=None)
@given(
    c_per_group=st.integers(1, 3), m_per_group=st.integers(1, 3), groups=st.integers(1, 3),
    k=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2), dilation=st.integers(1, 2),
    size=st.integers(6, 10),
)
def test_conv_closed_form_and_trace_agree(tmp_path_factory, c_per_group, m_per_group, groups, k, stride, pad, dilation, size):
    C, M = c_per_group * groups, m_per_group * groups
    E = (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1  # output height and width
    assume(E >= 1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="/conv/Conv", group=groups, strides=[stride] * 2,
                              pads=[pad] * 4, dilations=[dilation] * 2)]
    path = save_graph(tmp_path_factory.mktemp("conv") / "c.onnx", nodes, [tensor("x", [1, C, size, size])],
                      [tensor("y", None)], [weight("w", [M, c_per_group, k, k])])
    (layer,) = from_onnx(path).layers
    assert layer.macs == M * c_per_group * k * k * E * E  # N*M*(C/g)*R*S*E*F
    conv = nn.Conv2d(C, M, k, stride, pad, dilation, groups, bias=False)
    (traced,) = trace(conv, (1, C, size, size)).layers
    assert {f: getattr(layer, f) for f in MAC_FIELDS[2:]} == {f: getattr(traced, f) for f in MAC_FIELDS[2:]}


# -- errors, unsupported ops, dynamic shapes ----------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(OnnxImportError, match=r"nothere\.onnx: no such ONNX file"):
        from_onnx(tmp_path / "nothere.onnx")


@pytest.mark.parametrize("content", [b"\x00\xff definitely not protobuf" * 8, b"", b"plain text"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxImportError, match=r"broken\.onnx: not (a readable|an) ONNX model"):
        from_onnx(path)


def test_missing_onnx_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(UserInputError, match=r"pip install dnnergy\[onnx\]"):
        from_onnx(tmp_path / "any.onnx")


@pytest.fixture(scope="module")
def dynamic_lenet(tmp_path_factory):
    path = tmp_path_factory.mktemp("dyn") / "lenet5_dynamic.onnx"
    return export(create_model("lenet5"), torch.randn(1, 1, 28, 28), path,
                  input_names=["image"], dynamic_axes={"image": {0: "batch"}})


def test_dynamic_batch_without_input_shapes(dynamic_lenet):
    message = r"input 'image' \(read by node '/conv1/Conv'\) has dynamic dimensions \['batch', 1, 28, 28\].*input_shapes"
    with pytest.raises(OnnxImportError, match=message):
        from_onnx(dynamic_lenet)


@pytest.mark.parametrize("shapes", [{"image": (4, 1, 28, 28)}, (4, 1, 28, 28), [(4, 1, 28, 28)]])
def test_dynamic_batch_with_input_shapes(dynamic_lenet, shapes):
    imported = from_onnx(dynamic_lenet, input_shapes=shapes)
    assert imported.macs == 4 * 2_293_000  # four images of LeNet-5
    assert imported.input_shapes == ((4, 1, 28, 28),)
    assert imported["conv1"].N == 4


@pytest.mark.parametrize(
    "shapes, message",
    [
        ({"img": (1, 1, 28, 28)}, r"unknown input 'img' \(graph inputs: \['image'\]\)"),
        ({"image": (1, 28, 28)}, r"input_shapes\['image'\] must be 4 positive ints"),
        ({"image": (1, 3, 28, 28)}, r"input 'image' has fixed dimension 1 = 1 \(input_shapes gives 3\)"),
        ("1x28x28", r"input_shapes must be a shape"),
    ],
)
def test_bad_input_shapes(dynamic_lenet, shapes, message):
    with pytest.raises(UserInputError, match=message):
        from_onnx(dynamic_lenet, input_shapes=shapes)


def test_input_shapes_that_contradict_the_weights(tmp_path):
    nodes = [helper.make_node("Gemm", ["a", "b"], ["y"], name="/fc/Gemm")]
    path = save_graph(tmp_path / "gemm_dyn.onnx", nodes, [tensor("a", ["n", "k"])], [tensor("y", None)], [weight("b", [4, 5])])
    assert from_onnx(path, input_shapes=(2, 4)).macs == 2 * 4 * 5
    with pytest.raises(OnnxImportError, match=r"gemm_dyn\.onnx: shape inference failed with input shapes \[\(2, 3\)\]"):
        from_onnx(path, input_shapes=(2, 3))  # [2, 3] @ [4, 5]: inner dimensions differ


class WithTopK(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x):
        y = self.fc(x)
        return torch.topk(y, 3).values.sum() + torch.topk(y, 2).values.sum()


def test_unsupported_op_listed_and_warned(tmp_path):
    path = export(WithTopK(), torch.randn(2, 16), tmp_path / "topk.onnx")
    with pytest.warns(UserWarning, match=r"topk\.onnx: ops not counted: onnx\.TopK x2") as record:
        imported = from_onnx(path)
    assert record[0].filename == __file__  # stacklevel=2 points at the caller
    assert [(u.op, u.count, u.macs) for u in imported.unsupported] == [("onnx.TopK", 2, None)]
    assert imported.unsupported[0].modules == ("/TopK", "/TopK_1")  # the node names
    assert imported["fc"].macs == 2 * 16 * 8  # the rest is still counted
    with pytest.raises(UnsupportedOpError, match=r"unsupported ops: onnx\.TopK"):
        from_onnx(path, strict=True)


@pytest.mark.parametrize("declared", [True, False])
def test_custom_domain_node(tmp_path, declared):
    nodes = [
        helper.make_node("FancyOp", ["x"], ["y"], domain="com.example", name="fancy"),
        helper.make_node("Relu", ["y"], ["z"], name="/act/Relu"),
    ]
    path = save_graph(tmp_path / "custom.onnx", nodes, [tensor("x", [1, 4])], [tensor("z", None)],
                      value_info=[tensor("y", [1, 4])] if declared else [], opsets=(("", 17), ("com.example", 1)))
    with pytest.warns(UserWarning, match=r"com\.example\.FancyOp x1 \(fancy\)"):
        imported = from_onnx(path)
    assert imported.unsupported[0].op == "com.example.FancyOp"
    if declared:  # the exporter declared the custom op's output shape: the ReLU downstream is counted
        assert [(layer.name, layer.ops) for layer in imported] == [("act", 4)]
        assert len(imported.unsupported) == 1
    else:  # its shape is unknown: the ReLU is listed too, never dropped
        assert not imported.layers
        assert (imported.unsupported[1].op, imported.unsupported[1].modules) == (
            "onnx.Relu (input shape unknown after an unsupported op)", ("/act/Relu",))


def test_batch_fills_a_dynamic_leading_dimension_and_refuses_a_fixed_one(tmp_path):
    import warnings

    import torch
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    dynamic, fixed = tmp_path / "dynamic.onnx", tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.randn(1, 3, 4), str(dynamic), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "n"}})
        torch.onnx.export(model, torch.randn(1, 3, 4), str(fixed), dynamo=False)
    assert from_onnx(dynamic, batch=3).macs == 3 * 12 * 5  # three vectors of 12 times a 12 x 5 matrix
    with pytest.raises(UserInputError, match="fixed batch dimension of 1"):
        from_onnx(fixed, batch=3)


def test_onnx_handler_table_refuses_duplicates_and_free_ops(monkeypatch):
    from dnnergy.workload import _onnx_ops

    monkeypatch.setattr(_onnx_ops, "_HANDLERS", _onnx_ops._HANDLERS.copy())
    with pytest.raises(RuntimeError, match="'Conv' is already registered"):
        _onnx_ops._handles("Conv")(lambda g, node: None)
    with pytest.raises(RuntimeError, match="Reshape is a free op"):
        _onnx_ops._handles("Reshape")(lambda g, node: None)
    with pytest.raises(UserInputError, match=r"unknown ONNX op 'Comv'; did you mean Conv"):
        _onnx_ops._HANDLERS.get("Comv")

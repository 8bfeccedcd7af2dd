"""``from_onnx`` on files as model zoos publish them (issue 11, part 3).

Old exporters wrote IR version 3 graphs (every initializer also listed as a graph input,
no node names), produced weights with constant sub-graphs (``Constant``,
``ConstantOfShape``, ``Reshape``/``Transpose``/``Cast``/``Identity`` of constants) and
flattened with ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape`` chains. Zoo models
are exported at opset 8 and rewritten into that style with ``onnx.helper``; their MACs and
weights must equal ``dnnergy.trace`` of the torch twin, and onnxruntime must compute the
same outputs from the rewritten file as torch does (so the rewrite is a faithful model).
Hand-built graphs check closed forms, and every folded shape is checked against the
shapes onnxruntime actually produces.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from dnnergy.errors import DnnergyError, OnnxImportError, UnsupportedOpError
from dnnergy.workload import OpKind, trace
from dnnergy.workload.onnx_fold import infer_dims
from dnnergy.workload.onnx_import import from_onnx
from dnnergy.zoo import create_model, model_info

# -- rewriting an exported model into IR 3 style --------------------------------------------------

#: How each initializer is turned into a constant sub-graph, taken in turn.
STYLES = ("constant", "reshape", "transpose", "cast", "identity", "initializer")


def _constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array, name + "_value"))


def _weight_subgraph(name: str, array: np.ndarray, style: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes (and initializers) that compute the tensor ``name`` = ``array`` in one of the :data:`STYLES`."""
    if style == "constant":
        return [_constant(name, array)], []
    if style == "reshape":  # a flat constant reshaped by a constant target
        return [_constant(name + "_flat", array.ravel()), _constant(name + "_shape", np.array(array.shape, np.int64)),
                helper.make_node("Reshape", [name + "_flat", name + "_shape"], [name])], []
    if style == "transpose":  # stored transposed, turned back at run time
        perm = list(range(array.ndim))[::-1]
        return [_constant(name + "_t", np.ascontiguousarray(array.transpose(perm))),
                helper.make_node("Transpose", [name + "_t"], [name], perm=perm)], []
    if style == "cast":  # stored in double precision (exact for float32 values)
        return [_constant(name + "_f64", array.astype(np.float64)),
                helper.make_node("Cast", [name + "_f64"], [name], to=TensorProto.FLOAT)], []
    if style == "identity":
        return [helper.make_node("Identity", [name + "_raw"], [name])], [numpy_helper.from_array(array, name + "_raw")]
    return [], [numpy_helper.from_array(array, name)]


def _old_flatten(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    """``Flatten(axis=1)`` as exporters wrote it before opset 9: ``Reshape(x, [x.shape[0], -1])``."""
    x, y = node.input[0], node.output[0]
    return [
        helper.make_node("Shape", [x], [y + "_shape"]),
        _constant(y + "_zero", np.array(0, np.int64)),
        helper.make_node("Gather", [y + "_shape", y + "_zero"], [y + "_n"], axis=0),
        helper.make_node("Unsqueeze", [y + "_n"], [y + "_n1"], axes=[0]),
        _constant(y + "_rest", np.array([-1], np.int64)),
        helper.make_node("Concat", [y + "_n1", y + "_rest"], [y + "_target"], axis=0),
        helper.make_node("Reshape", [x, y + "_target"], [y]),
    ]


def to_ir3(model: onnx.ModelProto, opset: int = 8) -> onnx.ModelProto:
    """Rewrite a TorchScript export (opset <= 8) as an old zoo file: IR 3, weights from constant sub-graphs."""
    graph = model.graph
    nodes, initializers = [], []
    for i, init in enumerate(graph.initializer):
        more_nodes, more_inits = _weight_subgraph(init.name, numpy_helper.to_array(init), STYLES[i % len(STYLES)])
        nodes += more_nodes
        initializers += more_inits
    for node in graph.node:
        nodes += _old_flatten(node) if node.op_type == "Flatten" and helper.get_attribute_value(node.attribute[0]) == 1 else [node]
    for node in nodes:
        node.name = ""  # old exporters left nodes unnamed
    inputs = [i for i in graph.input if i.name not in {init.name for init in graph.initializer}]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in initializers]
    new = helper.make_graph(nodes, graph.name, inputs, list(graph.output), initializer=initializers)
    result = helper.make_model(new, opset_imports=[helper.make_opsetid("", opset)])
    result.ir_version = 3
    return result


def export_ir3(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), example, str(path), dynamo=False, opset_version=8)
    onnx.save(to_ir3(onnx.load(str(path))), str(path))
    return path


def run_ort(path: Path, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def ort_shapes(model: onnx.ModelProto, feeds: dict, tmp: Path) -> dict[str, tuple[int, ...]]:
    """The shape of every node output as onnxruntime computes it (each one made a graph output)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {o.name for o in probe.graph.output}
    names = [name for node in probe.graph.node for name in node.output if name and name not in declared]
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names)
    path = tmp / "probe.onnx"
    onnx.save(probe, str(path))
    outputs = [o.name for o in probe.graph.output]
    return {name: value.shape for name, value in zip(outputs, run_ort(path, feeds))}


# -- zoo models as old zoo files ------------------------------------------------------------------

ZOO = ["lenet300", "lenet5", "mobilenet_v1", "resnet18", "squeezenet1_1"]


@pytest.fixture(scope="module")
def zoo_ir3(tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            torch.manual_seed(0)
            model = create_model(name).eval()
            x = torch.randn(model_info(name).input_shape, generator=torch.Generator().manual_seed(0))
            path = export_ir3(model, x, tmp_path_factory.mktemp("ir3") / f"{name}.onnx")
            with torch.no_grad():
                expected = model(x).numpy()
            cache[name] = (trace(model, x), path, x.numpy(), expected)
        return cache[name]

    return get


@pytest.mark.parametrize("name", ZOO)
def test_zoo_ir3_files_match_the_torch_twin(zoo_ir3, name):
    traced, path, x, expected = zoo_ir3(name)
    file = onnx.load(str(path))
    assert file.ir_version == 3 and not any(n.name for n in file.graph.node)
    assert {i.name for i in file.graph.initializer} <= {i.name for i in file.graph.input}
    styles = {n.op_type for n in file.graph.node} & {"Constant", "Reshape", "Transpose", "Cast", "Identity"}
    assert styles == {"Constant", "Reshape", "Transpose", "Cast", "Identity"}
    # the rewritten file is the same network: onnxruntime reproduces torch's output
    (output,) = run_ort(path, {file.graph.input[0].name: x})
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)

    imported = from_onnx(path)
    assert not imported.unsupported
    assert imported.macs == traced.macs and imported.weights == traced.weights
    assert imported.input_shapes == (tuple(x.shape),)  # the initializers listed as inputs are not inputs
    # layer by layer (names differ: old files have none): the same MAC and weight counts in order
    key = lambda layer: (layer.kind, layer.macs, layer.weights, layer.weight_is_param)
    assert [key(layer) for layer in imported.mac_layers()] == [key(layer) for layer in traced.mac_layers()]


@pytest.mark.parametrize("name, macs, weights", [
    ("lenet300", 266_200, 266_200),  # 784*300 + 300*100 + 100*10
    ("lenet5", 2_293_000, 430_500),  # published LeNet-5 counts (seed 002 table)
])
def test_zoo_ir3_lenets_closed_form(zoo_ir3, name, macs, weights):
    _, path, _, _ = zoo_ir3(name)
    imported = from_onnx(path)
    assert (imported.macs, imported.weights) == (macs, weights)
    assert dict(imported.ignored)["onnx.Reshape"] >= 1  # the old flatten chain is free


def test_folded_shapes_equal_onnxruntime(zoo_ir3, tmp_path):
    """Every tensor shape infer_dims settles on (old flatten chain, weight sub-graphs) is the one onnxruntime computes."""
    _, path, x, _ = zoo_ir3("lenet5")
    model = onnx.load(str(path))
    dims = infer_dims(onnx, path, model, [x.shape])
    actual = ort_shapes(model, {model.graph.input[0].name: x}, tmp_path)
    assert len(actual) > 20 and any(name.endswith("_target") for name in actual)  # includes the flatten chain
    for name, shape in actual.items():
        assert tuple(dims[name]) == shape, name


def to_legacy(model: onnx.ModelProto, opset: int = 3) -> onnx.ModelProto:
    """Rewrite an opset-8 export as a Caffe2-converted zoo file (opset 3): first versions of every op.

    Conv biases become a legacy broadcasting ``Add(broadcast=1, axis=1)``, ``Gemm`` takes
    ``broadcast=1``, BatchNormalization ``consumed_inputs``, flatten is ``Reshape`` with a
    ``shape`` attribute; attributes the first versions lack are dropped. IR 3, unnamed nodes.
    """
    nodes = []
    for node in model.graph.node:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
        kept = [a for a in node.attribute if a.name in schema.attributes]
        if node.op_type == "Flatten":
            nodes.append(helper.make_node("Reshape", [node.input[0]], list(node.output), shape=[0, -1]))
            continue
        if node.op_type == "Conv" and len(node.input) == 3:
            conv = helper.make_node("Conv", list(node.input[:2]), [node.output[0] + "_nobias"])
            conv.attribute.extend(kept)
            nodes += [conv, helper.make_node("Add", [conv.output[0], node.input[2]], list(node.output), broadcast=1, axis=1)]
            continue
        del node.attribute[:]
        node.attribute.extend(kept)
        if node.op_type == "Gemm":
            node.attribute.append(helper.make_attribute("broadcast", 1))
        if node.op_type == "BatchNormalization":
            node.attribute.extend([helper.make_attribute("consumed_inputs", [0, 0, 0, 1, 1]), helper.make_attribute("is_test", 1)])
        nodes.append(node)
    for node in nodes:
        node.name = ""
    graph = model.graph
    new = helper.make_graph(nodes, graph.name, list(graph.input), list(graph.output), initializer=list(graph.initializer))
    result = helper.make_model(new, opset_imports=[helper.make_opsetid("", opset)])
    result.ir_version = 3
    return result


@pytest.mark.parametrize("name", ["lenet5", "mobilenet_v1", "resnet18", "squeezenet1_1"])
def test_zoo_opset3_legacy_files_match_the_torch_twin(zoo_ir3, tmp_path, name):
    """Ops of opsets 1 to 5 that ONNX gives no shape inference (legacy broadcast Add, Relu-1, BN-1, Reshape-1)."""
    traced, _, x, _ = zoo_ir3(name)
    model = create_model(name).eval()
    path = tmp_path / f"{name}_legacy.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.from_numpy(x), str(path), dynamo=False, opset_version=8)
    legacy = to_legacy(onnx.load(str(path)))
    assert any(not onnx.defs.get_schema(n.op_type, 3, "").has_type_and_shape_inference_function for n in legacy.graph.node)
    onnx.save(legacy, str(path))
    imported = from_onnx(path)
    assert not imported.unsupported
    assert imported.macs == traced.macs and imported.weights == traced.weights
    key = lambda layer: (layer.kind, layer.macs, layer.weights, layer.biases)  # the bias Add folds back into its conv
    assert [key(layer) for layer in imported.mac_layers()] == [key(layer) for layer in traced.mac_layers()]


def test_opset1_ops_without_shape_inference(tmp_path):
    """Pad-1, legacy Add, Relu-1, Concat-1 (default axis 1), Upsample-1, Cast-1, Reshape-1, Gemm-1: shapes by their specs."""
    inits = [numpy_helper.from_array(np.ones(shape, np.float32), name)
             for name, shape in (("w", (4, 2, 3, 3)), ("b", (4,)), ("w2", (3, 8, 1, 1)), ("fc", (5, 432)), ("fcb", (5,)))]
    nodes = [
        helper.make_node("Pad", ["x"], ["p"], paddings=[0, 0, 1, 1, 0, 0, 1, 1]),  # [1, 2, 8, 8]
        helper.make_node("Conv", ["p", "w"], ["c"]),  # [1, 4, 6, 6]
        helper.make_node("Add", ["c", "b"], ["cb"], broadcast=1, axis=1),
        helper.make_node("Relu", ["cb"], ["r"]),
        helper.make_node("Concat", ["r", "r"], ["cat"]),  # [1, 8, 6, 6]
        helper.make_node("Upsample", ["cat"], ["up"], height_scale=2.0, width_scale=2.0),  # [1, 8, 12, 12]
        helper.make_node("Conv", ["up", "w2"], ["c2"]),  # [1, 3, 12, 12]
        helper.make_node("Cast", ["c2"], ["f32"], to="FLOAT"),
        helper.make_node("Reshape", ["f32"], ["flat"], shape=[0, -1]),  # [1, 432]
        helper.make_node("Gemm", ["flat", "fc", "fcb"], ["y"], transB=1, broadcast=1),
    ]
    inputs = [tensor("x", [1, 2, 6, 6])] + [tensor(t.name, list(t.dims)) for t in inits]
    path = save(tmp_path / "opset1.onnx", nodes, inputs, [tensor("y", None)], inits, opset=1, ir=3)
    imported = from_onnx(path)
    conv, conv2, fc = imported.mac_layers()
    # 4*2*9*6*6 = 2592 (+4 biases folded from the Add); 3*8*12*12 = 3456; 432*5 = 2160
    assert [(layer.macs, layer.weights, layer.biases) for layer in (conv, conv2, fc)] == [(2592, 72, 4), (3456, 24, 0), (2160, 2160, 5)]
    assert (conv.E, conv2.E, fc.C) == (6, 12, 432)
    assert imported["relu"].ops == 4 * 36 and imported["upsample"].ops == 8 * 144


# -- hand-built graphs ------------------------------------------------------------------------------

def tensor(name: str, shape, element=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, element, shape)


def save(path: Path, nodes, inputs, outputs, initializers=(), opset: int = 13, ir: int | None = None) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    if ir is not None:
        model.ir_version = ir
    onnx.save(model, str(path))
    return path


def test_ir3_graph_lists_initializers_as_inputs(tmp_path):
    arrays = {"w": np.ones((6, 3, 3, 3), np.float32), "b": np.ones(6, np.float32),
              "fc": np.ones((10, 6 * 4 * 4), np.float32), "fcb": np.ones(10, np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
        helper.make_node("Flatten", ["c"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    # the initializers are declared as inputs, some before the real input, whose batch is dynamic
    inputs = [tensor("w", [6, 3, 3, 3]), tensor("b", [6]), tensor("x", ["n", 3, 6, 6]), tensor("fc", [10, 96]), tensor("fcb", [10])]
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    path = save(tmp_path / "ir3.onnx", nodes, inputs, [tensor("y", None)], inits, opset=8, ir=3)
    assert run_ort(path, {"x": np.zeros((2, 3, 6, 6), np.float32)})[0].shape == (2, 10)
    imported = from_onnx(path, input_shapes=(2, 3, 6, 6))  # one shape: the only true input
    conv, gemm = imported.mac_layers()
    # conv 2*6*3*9*4*4 = 5184 MACs, 162 weights, 6 biases; gemm 2*96*10 = 1920 MACs, 960 weights, 10 biases
    assert (conv.macs, conv.weights, conv.biases) == (5184, 162, 6)
    assert (gemm.macs, gemm.weights, gemm.biases) == (1920, 960, 10)
    assert imported.input_shapes == ((2, 3, 6, 6),) and imported.weights == 162 + 960


@pytest.mark.parametrize("style", STYLES)
def test_weight_subgraph_counts_as_weights(tmp_path, style):
    rng = np.random.default_rng(0)
    w, fc = rng.standard_normal((4, 2, 3, 3)).astype(np.float32), rng.standard_normal((5, 4 * 6 * 6)).astype(np.float32)
    nodes, inits = [], []
    for name, array in (("w", w), ("fc", fc)):
        more_nodes, more_inits = _weight_subgraph(name, array, style)
        nodes, inits = nodes + more_nodes, inits + more_inits
    nodes += [
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["f"], name="/Flatten"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="/fc/Gemm", transB=1),
    ]
    path = save(tmp_path / f"{style}.onnx", nodes, [tensor("x", [1, 2, 6, 6])], [tensor("y", None)], inits)
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).flatten(1) @ torch.from_numpy(fc).T
    np.testing.assert_allclose(run_ort(path, {"x": x})[0], expected.numpy(), rtol=1e-4, atol=1e-4)
    imported = from_onnx(path)
    conv, gemm = imported.mac_layers()
    # conv 1*4*2*9*6*6 = 2592 MACs on 72 weights; fc 144*5 = 720 MACs on 720 weights
    assert (conv.macs, conv.weights, conv.weight_is_param) == (2592, 72, True)
    assert (gemm.kind, gemm.macs, gemm.weights) == (OpKind.FC, 720, 720)
    assert imported.weights == 72 + 720


def test_constant_of_shape_and_computed_weights(tmp_path):
    """ConstantOfShape of a constant shape, and a weight times a constant scale, are weights of their output size."""
    nodes = [
        _constant("w_shape", np.array([8, 3, 3, 3], np.int64)),
        helper.make_node("ConstantOfShape", ["w_shape"], ["w_ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
        _constant("half", np.array(0.5, np.float32)),
        helper.make_node("Mul", ["w_ones", "half"], ["w"]),  # folded weight preprocessing: free
        helper.make_node("ConstantOfShape", ["b_shape"], ["b"]),  # a zero bias
        helper.make_node("Conv", ["x", "w", "b"], ["y"], name="/conv/Conv"),
    ]
    path = save(tmp_path / "cos.onnx", nodes, [tensor("x", [2, 3, 5, 5])], [tensor("y", None)],
                [numpy_helper.from_array(np.array([8], np.int64), "b_shape")])
    assert run_ort(path, {"x": np.ones((2, 3, 5, 5), np.float32)})[0][0, 0, 0, 0] == pytest.approx(27 * 0.5)
    imported = from_onnx(path)
    (conv,) = imported.layers
    # 2*8*3*9*3*3 = 3888 MACs on 8*3*3*3 = 216 weights, 8 biases
    assert (conv.macs, conv.weights, conv.biases, conv.weight_is_param) == (3888, 216, 8, True)
    assert dict(imported.ignored) == {"onnx.Constant": 2, "onnx.ConstantOfShape": 2, "onnx.Mul": 1}


def test_large_folded_weight_keeps_its_shape(tmp_path):
    """A weight computed from constants that shape inference cannot follow, larger than the folding limit."""
    nodes = [
        _constant("target", np.array([128, 64], np.int64)), _constant("cond", np.array([True, True])),
        helper.make_node("Where", ["cond", "target", "target"], ["shape"]),  # ONNX data propagation stops here
        helper.make_node("ConstantOfShape", ["shape"], ["w"], value=numpy_helper.from_array(np.ones(1, np.float32))),
        helper.make_node("MatMul", ["x", "w"], ["y"], name="/fc/MatMul"),
    ]
    path = save(tmp_path / "big.onnx", nodes, [tensor("x", [3, 128])], [tensor("y", None)])
    assert run_ort(path, {"x": np.ones((3, 128), np.float32)})[0].shape == (3, 64)
    (fc,) = from_onnx(path).layers
    # 3*128*64 = 24576 MACs on a 128x64 = 8192-element computed weight (more than the 4096 kept as values)
    assert (fc.kind, fc.macs, fc.weights, fc.weight_is_param) == (OpKind.FC, 24_576, 8192, True)


def _flatten_chain(x: str, keep: int) -> list[onnx.NodeProto]:
    """``x.reshape(x.shape[:keep] + (-1,))`` as exporters build it, with a Cast round trip and a ConstantOfShape of ones."""
    return [
        helper.make_node("Shape", [x], ["s"]),
        _constant("starts", np.array([0], np.int64)), _constant("ends", np.array([keep], np.int64)),
        helper.make_node("Slice", ["s", "starts", "ends"], ["head"]),
        helper.make_node("Cast", ["head"], ["head_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["head_f"], ["head_i"], to=TensorProto.INT64),
        _constant("one", np.array([1], np.int64)),
        helper.make_node("ConstantOfShape", ["one"], ["minus"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["head_i", "minus"], ["target"], axis=0),
        helper.make_node("Reshape", [x, "target"], ["r"]),
    ]


@settings(max_examples=12, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=3, max_size=5), keep=st.integers(1, 2), m=st.integers(1, 5))
def test_shape_chain_folding(tmp_path_factory, shape, keep, m):
    """MatMul after a computed reshape: MACs prod(shape) * m, and the folded shapes are onnxruntime's."""
    k = int(np.prod(shape[keep:]))
    nodes = [*_flatten_chain("x", keep), helper.make_node("MatMul", ["r", "w"], ["y"], name="/fc/MatMul")]
    w = numpy_helper.from_array(np.ones((k, m), np.float32), "w")
    tmp = tmp_path_factory.mktemp("chain")
    path = save(tmp / "chain.onnx", nodes, [tensor("x", shape)], [tensor("y", None)], [w])
    (fc,) = from_onnx(path).layers
    assert (fc.macs, fc.weights) == (int(np.prod(shape)) * m, k * m)
    model = onnx.load(str(path))
    dims = infer_dims(onnx, path, model, [tuple(shape)])
    for name, actual in ort_shapes(model, {"x": np.zeros(shape, np.float32)}, tmp).items():
        assert tuple(dims[name]) == actual, name


# -- unsupported ops, bad files, names, opsets ---------------------------------------------------------

def test_unsupported_op_on_a_computed_weight_keeps_its_macs(tmp_path):
    nodes = [
        *_weight_subgraph("w", np.ones((4, 2, 3, 3, 3), np.float32), "reshape")[0],
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv3d/Conv"),  # 3-D: no dataflow model
        helper.make_node("Relu", ["c"], ["y"], name="/act/Relu"),
    ]
    path = save(tmp_path / "c3d.onnx", nodes, [tensor("x", [1, 2, 5, 5, 5])], [tensor("y", None)], ir=3, opset=8)
    with pytest.warns(UserWarning, match=r"c3d\.onnx: ops not counted: onnx\.Conv \(3-D convolution\) x1 \(/conv3d/Conv\)"):
        imported = from_onnx(path)
    (entry,) = imported.unsupported
    # 1*4*2*27*3*3*3 = 5832 MACs, listed (with their share) though not modelled
    assert (entry.count, entry.macs, imported.unsupported_macs) == (1, 5832, 5832)
    assert [layer.name for layer in imported] == ["act"]
    with pytest.raises(UnsupportedOpError):
        from_onnx(path, strict=True)


def test_data_dependent_shape_names_file_and_node(tmp_path):
    nodes = [
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),  # the target is run-time data
        helper.make_node("Gemm", ["r", "w"], ["y"], name="/fc/Gemm"),
    ]
    inputs = [tensor("x", [2, 4]), tensor("target", [2], TensorProto.INT64)]
    path = save(tmp_path / "dyn.onnx", nodes, inputs, [tensor("y", None)], [numpy_helper.from_array(np.ones((4, 3), np.float32), "w")])
    with pytest.raises(OnnxImportError, match=r"dyn\.onnx: node '/fc/Gemm' \(Gemm\): the shape of its input 'r' cannot be resolved"):
        from_onnx(path)


def test_opset1_op_without_a_shape_rule_names_file_node_and_output(tmp_path):
    nodes = [helper.make_node("LpPool", ["x"], ["y"], name="lp", kernel_shape=[2, 2])]  # LpPool-1: no inference, no rule
    path = save(tmp_path / "lp.onnx", nodes, [tensor("x", [1, 2, 4, 4])], [tensor("y", None)], opset=1, ir=3)
    with pytest.raises(OnnxImportError, match=r"lp\.onnx: node 'lp' \(LpPool\): the shape of its output 'y' cannot be resolved .*shape inference gives none"):
        from_onnx(path)


def test_contradictory_constant_subgraph_is_a_clear_error(tmp_path):
    nodes = [
        _constant("flat", np.ones(12, np.float32)), _constant("target", np.array([4, 3], np.int64)),
        helper.make_node("Reshape", ["flat", "target"], ["w"], name="w_reshape"),  # a 4x3 weight
        helper.make_node("MatMul", ["x", "w"], ["y"], name="/fc/MatMul"),  # [2, 3] @ [4, 3]
    ]
    path = save(tmp_path / "bad.onnx", nodes, [tensor("x", [2, 3])], [tensor("y", None)])
    with pytest.raises(DnnergyError, match=r"bad\.onnx: shape inference failed .*node name: /fc/MatMul"):
        from_onnx(path)


def test_node_name_that_is_not_utf8(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="/enc/Relu"), helper.make_node("TopK", ["h", "k"], ["v", "i"], name="/top/TopK")]
    path = save(tmp_path / "names.onnx", nodes, [tensor("x", [1, 8])], [tensor("v", None), tensor("i", None, TensorProto.INT64)],
                [numpy_helper.from_array(np.array([2], np.int64), "k")])
    data = path.read_bytes()
    path.write_bytes(data.replace(b"/enc/Relu", b"/\xffnc/Relu").replace(b"/top/TopK", b"/t\xfep/TopK"))  # same lengths
    assert isinstance(onnx.load(str(path)).graph.node[0].name, bytes)  # how protobuf hands such a name over
    with pytest.warns(UserWarning, match=r"TopK x1 \(/t\\xfep/TopK\)"):
        imported = from_onnx(path)
    assert [(layer.name, layer.ops) for layer in imported] == [("\\xffnc", 8)]
    assert imported.unsupported[0].modules == ("/t\\xfep/TopK",)


@pytest.mark.parametrize("opsets, message", [
    ([("", 0)], r"invalid opset version 0 for domain 'ai\.onnx'"),
    ([("", 17), ("com.example", -1)], r"invalid opset version -1 for domain 'com\.example'"),
    ([("com.example", 1)], r"invalid opset: no opset import for the default domain"),
    ([("", 999)], r"invalid opset: ai\.onnx version 999 is newer than onnx"),
])
def test_invalid_opset_is_reported_as_such(tmp_path, opsets, message):
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="/a/Relu"), helper.make_node("Gemm", ["h", "w"], ["y"], name="/fc/Gemm")]
    graph = helper.make_graph(nodes, "g", [tensor("x", [2, 8])], [tensor("y", None)], [numpy_helper.from_array(np.ones((8, 3), np.float32), "w")])
    path = tmp_path / "opset.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets]), str(path))
    with pytest.raises(OnnxImportError, match=r"opset\.onnx: " + message):
        from_onnx(path)

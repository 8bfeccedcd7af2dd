"""Output shapes of the opset-1 ops that ONNX gives no shape inference, for files of opsets 1 to 5.

Zoo files converted from Caffe2 (opsets 3 to 6) use the first versions of common ops:
``Add``/``Mul`` with the legacy ``broadcast``/``axis`` attributes, ``Relu``,
``BatchNormalization`` and ``Dropout`` with ``consumed_inputs``, ``Reshape`` with a
``shape`` attribute, ``Gemm`` with ``broadcast``. ``onnx.shape_inference`` knows no shape
for their outputs (strict inference then stops at the first reader).
:func:`legacy_value_info` walks the graph once in order, inferring every other node with
``onnx.shape_inference.infer_node_outputs`` and these ops with the rules of their
specification, and returns the value infos of the latter, to be added to the graph before
whole-graph inference.
"""

from __future__ import annotations

from math import prod
from typing import Any

__all__ = ["legacy_value_info", "needs_legacy_shapes"]

#: Legacy ops whose output 0 has the shape of input 0 (element-wise, normalisation, and the
#: binary ops, whose legacy ``broadcast=1`` form broadcasts B to A).
_SAME = frozenset(
    """Abs Add BatchNormalization Ceil Clip Div Dropout Elu Exp Floor HardSigmoid InstanceNormalization LeakyRelu
    Log Max Mean Min Mul Neg PRelu Reciprocal Relu Selu Sigmoid Sqrt Sub Sum Tanh Cast""".split()
)


def _schema(onnx: Any, node: Any, opset: int) -> Any:
    try:
        return onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:  # an op this onnx does not know (a custom domain, a typo)
        return None


def needs_legacy_shapes(onnx: Any, model: Any) -> bool:
    """Whether some default-domain node's schema, at the file's opset, has no shape inference."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    schemas = (_schema(onnx, node, opset) for node in model.graph.node if node.domain in ("", "ai.onnx"))
    return any(s is not None and not s.has_type_and_shape_inference_function for s in schemas)


def _legacy_shape(onnx: Any, node: Any, shapes: list[list[int]]) -> list[int] | None:
    """Output-0 shape of a legacy node from its input shapes, or None when no rule applies."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    x = shapes[0]
    if node.op_type in _SAME:
        return list(x)
    if node.op_type == "Concat":
        axis = attrs.get("axis", 1) % len(x)
        return [sum(s[axis] for s in shapes) if i == axis else d for i, d in enumerate(x)]
    if node.op_type == "Gemm":
        a = x[::-1] if attrs.get("transA", 0) else x
        b = shapes[1][::-1] if attrs.get("transB", 0) else shapes[1]
        return [a[0], b[1]]
    if node.op_type == "Reshape" and "shape" in attrs:
        target = [x[i] if d == 0 else d for i, d in enumerate(attrs["shape"])]
        known = prod(d for d in target if d != -1)
        return [prod(x) // known if d == -1 else d for d in target]
    if node.op_type == "Pad" and "paddings" in attrs:
        pads = attrs["paddings"]
        return [d + pads[i] + pads[i + len(x)] for i, d in enumerate(x)]
    if node.op_type == "Upsample" and len(x) == 4:
        return [x[0], x[1], int(x[2] * attrs.get("height_scale", 1.0)), int(x[3] * attrs.get("width_scale", 1.0))]
    return None


def legacy_value_info(onnx: Any, model: Any, limit: int = 64) -> list[Any]:
    """Value infos (element type and static shape) of the outputs of legacy nodes without shape inference.

    ``model`` has initializers that are constants (not graph inputs) and static input
    shapes; constants of up to ``limit`` elements are handed to the inference of the
    nodes that read them (reshape targets). A node whose inputs are unknown is passed over.
    """
    helper, tensor_proto = onnx.helper, onnx.TensorProto
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    types = {i.name: i.type for i in (*graph.input, *graph.value_info)}
    types.update((t.name, helper.make_tensor_type_proto(t.data_type, list(t.dims))) for t in graph.initializer)
    data = {t.name: t for t in graph.initializer if prod(t.dims) <= limit}
    found = []
    for node in graph.node:
        reads = [name for name in node.input if name]
        schema = _schema(onnx, node, opset) if node.domain in ("", "ai.onnx") else None
        if schema is None or not all(name in types for name in reads):
            continue
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
            if value is not None and prod(value.dims) <= limit:
                data[node.output[0]] = value
        if schema.has_type_and_shape_inference_function:
            try:
                types.update(onnx.shape_inference.infer_node_outputs(
                    schema, node, {n: types[n] for n in reads}, {n: data[n] for n in reads if n in data},
                    opset_imports=list(model.opset_import),
                ))
            except Exception:  # InferenceError: left to whole-graph inference, which names the node
                continue
            continue
        tensors = [types[n].tensor_type for n in reads]
        shapes = [[d.dim_value for d in t.shape.dim] for t in tensors]
        if not shapes or not all(t.HasField("shape") and all(d > 0 for d in s) for t, s in zip(tensors, shapes)):
            continue
        dims = _legacy_shape(onnx, node, shapes)
        if dims is None:
            continue
        element = types[reads[0]].tensor_type.elem_type
        if node.op_type == "Cast":
            to = helper.get_attribute_value(next(a for a in node.attribute if a.name == "to"))
            element = tensor_proto.DataType.Value(to.decode().upper()) if isinstance(to, bytes) else int(to)
        types[node.output[0]] = helper.make_tensor_type_proto(element, dims)
        found.append(helper.make_tensor_value_info(node.output[0], element, dims))
    return found

"""``from_onnx``: read an ONNX file into the same :class:`Workload` records ``trace`` produces.

Shapes come from ``onnx.shape_inference`` and every compute node is turned into layer
fields by the pure functions of :mod:`~dnnergy.workload.formulas` that the tracer's ATen
handlers call, so the two front ends agree by construction. In ONNX an *initializer*
(or a ``Constant``, or a view of one through a free op) plays the role of a PyTorch
parameter: a MatMul with one is FC, between two activations MATMUL.

NB(onnx): where the exporter rewrites the graph, non-MAC records differ from ``trace``:
an eval-mode export folds BatchNorm into the preceding Conv (no NORM record; the Conv
gains M biases), opset < 20 spells GELU as Div/Erf/Add/Mul/Mul and SiLU as Sigmoid/Mul
(several records instead of one), and a constant tensor that is a buffer in PyTorch
(not a parameter) counts as weights here. MAC layers (CONV, FC, MATMUL) agree field
for field. Asymmetric pads (``pads = [top, left, bottom, right]`` with begin != end)
are recorded by their begin values; the end pads only show in the output size E, F.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter
from math import ceil, prod
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import OnnxImportError, UnsupportedOpError, UserInputError
from . import formulas
from .layer import Layer, OpKind
from .ops import Unsupported
from .workload import UnsupportedOp, Workload

__all__ = ["from_onnx"]

#: Ops that move or re-label data, create constants or query metadata: no arithmetic.
#: Counted in ``Workload.ignored`` like the tracer's ``FREE_OPS``.
_FREE = frozenset(
    """Flatten Reshape Transpose Squeeze Unsqueeze Identity Dropout Shape Size Constant ConstantOfShape
    Cast CastLike Slice Split Expand Tile Range DepthToSpace SpaceToDepth EyeLike""".split()
)
#: Free ops whose output is a view of input 0 (a parameter stays a parameter through them).
_VIEWS = frozenset("Flatten Reshape Transpose Squeeze Unsqueeze Identity Dropout Cast Slice Split Expand Tile".split())
#: Layer labels the tracer uses for ops outside a leaf module (``aten.<label>``).
_LABELS = {
    "Conv": "convolution", "ConvTranspose": "convolution", "Gemm": "addmm", "Concat": "cat",
    "ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "GlobalAveragePool": "mean",
    "MaxPool": "max_pool2d_with_indices", "AveragePool": "avg_pool2d", "GlobalMaxPool": "adaptive_max_pool2d",
    "BatchNormalization": "native_batch_norm", "LayerNormalization": "native_layer_norm",
    "Gather": "embedding", "LeakyRelu": "leaky_relu", "Clip": "clamp", "Resize": "upsample_nearest2d",
}
#: op type -> handler returning layer fields, ``(label, fields)`` pairs, or None for a free node
_HANDLERS: dict[str, Callable[["_Graph", Any], "dict | list[tuple[str, dict]] | None"]] = {}


def _handles(*op_types: str) -> Callable:
    """Register a node handler for ONNX (default domain) op types; refuses duplicates."""

    def decorate(handler: Callable) -> Callable:
        for op_type in op_types:
            if op_type in _HANDLERS or op_type in _FREE:
                raise RuntimeError(f"from_onnx: {op_type} already has a handler")
            _HANDLERS[op_type] = handler
        return handler

    return decorate


class _Graph:
    """Shapes, constants and attributes of one shape-inferred ONNX graph."""

    def __init__(self, onnx: Any, file: Path, dims: dict[str, list | None], initializers: dict[str, list[int]]):
        self.onnx, self.file = onnx, file
        self.dims = {**dims, **initializers}
        #: name -> element count of the parameter it is (or is a view of)
        self.consts: dict[str, int] = {name: prod(dims) for name, dims in initializers.items()}
        self.static: set[str] = set(self.consts)  # known before any input is read
        self.tainted: set[str] = set()  # outputs of uncounted nodes, whose shapes inference may not know

    def shape(self, node: Any, name: str) -> list[int]:
        """The static shape of tensor ``name`` read by ``node``, or an OnnxImportError naming both."""
        dims = self.dims.get(name)
        if dims is None or not all(isinstance(d, int) for d in dims):
            if name in self.tainted:  # produced (through free ops) by a node that was not counted
                raise Unsupported("input shape unknown after an unsupported op")
            raise OnnxImportError(
                f"{self.file}: node {node.name!r} ({node.op_type}): the shape of its input {name!r} cannot be resolved "
                f"(dims: {'unknown' if dims is None else dims}); shapes that depend on data values are not supported"
            )
        return [int(d) for d in dims]

    def attr(self, node: Any, name: str, default: Any = None) -> Any:
        return _attr(self.onnx, node, name, default)

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def const_numel(self, name: str) -> int:
        return self.consts.get(name, 0)

    def is_param(self, name: str) -> bool:
        """A constant that is not a scalar (scalars are Python numbers in the traced model)."""
        return self.consts.get(name, 0) > 1

    def operands(self, node: Any, names: Sequence[str]) -> tuple[list[list[int]], int]:
        """(activation shapes, parameter elements) of an element-wise node's operands."""
        shapes, weights = [], 0
        for name in names:
            if self.is_const(name):
                weights += self.const_numel(name) if self.is_param(name) else 0
            elif name in self.static:  # computed from shapes: a Python number in the traced model, unless a tensor
                dims = self.dims.get(name) or []
                shapes += [[int(d) for d in dims]] if all(isinstance(d, int) for d in dims) and prod(dims) > 1 else []
            else:
                shapes.append(self.shape(node, name))
        return shapes, weights


def _attr(onnx: Any, node: Any, name: str, default: Any = None) -> Any:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _ins(node: Any) -> list[str]:
    return [name for name in node.input if name]


def _pair(values: Sequence[int], rank: int) -> list[int]:
    return list(values[:rank]) if values else [0] * rank


# -- multiply-accumulate nodes -------------------------------------------------------------

@_handles("Conv", "ConvTranspose")
def _conv(g: _Graph, node: Any) -> dict:
    x, w, out = g.shape(node, node.input[0]), g.shape(node, node.input[1]), g.shape(node, node.output[0])
    rank, transposed = len(x) - 2, node.op_type == "ConvTranspose"
    if rank not in (1, 2):
        raise Unsupported(f"{rank}-D convolution", macs=x[0] * prod(w) * prod((x if transposed else out)[2:]))
    strides = g.attr(node, "strides") or [1] * rank
    dilations = g.attr(node, "dilations") or [1] * rank
    pads = _pair(g.attr(node, "pads", []), rank)
    auto_pad = g.attr(node, "auto_pad", b"NOTSET").decode()
    if auto_pad.startswith("SAME") and not transposed:
        size, kernel = x[2:], w[2:]  # total padding so that the output is ceil(size / stride)
        totals = [max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0) for n, k, s, d in zip(size, kernel, strides, dilations)]
        pads = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
    bias = node.input[2] if len(node.input) > 2 else ""
    return formulas.conv(
        x, w, out, strides, pads, dilations, int(g.attr(node, "group", 1)), transposed,
        biases=g.const_numel(bias), weight_is_param=g.is_const(node.input[1]),
    )


def _torch_matmul_shapes(a: list[int], b: list[int], a_is_param: bool) -> list[int]:
    """The left operand as ``torch.matmul`` hands it to mm/bmm in inference mode.

    A (contiguous) >=3-D left operand times a 2-D right one is folded into rows; a 2-D
    activation times a batched right operand is expanded to the batch (a 2-D parameter
    is not: the product is transposed and folded, which ``formulas.matmul`` models).
    """
    if len(a) >= 3 and len(b) <= 2:
        return [prod(a[:-1]), a[-1]]
    if len(a) == 2 and len(b) >= 3 and not a_is_param:
        return [*b[:-2], *a]
    return a


@_handles("MatMul")
def _matmul(g: _Graph, node: Any) -> dict:
    a_name, b_name = node.input[0], node.input[1]
    a, b = g.shape(node, a_name), g.shape(node, b_name)
    a = _torch_matmul_shapes(a, b, g.is_const(a_name))
    return formulas.matmul(a, b, g.is_const(a_name), g.is_const(b_name))


@_handles("Gemm")
def _gemm(g: _Graph, node: Any) -> dict:
    a, b = g.shape(node, node.input[0]), g.shape(node, node.input[1])
    a = a[::-1] if g.attr(node, "transA", 0) else a
    b = b[::-1] if g.attr(node, "transB", 0) else b
    fields = formulas.matmul(a, b, g.is_const(node.input[0]), g.is_const(node.input[1]))
    bias = node.input[2] if len(node.input) > 2 else ""
    if g.is_const(bias):
        fields["biases"] = g.const_numel(bias)
    elif bias:  # an activation added to the product: one add per output (the tracer's addmm)
        fields["ops"] = fields["ofmap"]
        fields["ifmap"] += prod(g.shape(node, bias))
    return fields


# -- other compute nodes ----------------------------------------------------------------------

@_handles("MaxPool", "AveragePool", "LpPool")
def _pool(g: _Graph, node: Any) -> dict:
    window = g.attr(node, "kernel_shape")
    rank = len(window)
    if rank > 3:
        raise Unsupported(f"{rank}-D pooling")
    x, y = g.shape(node, node.input[0]), g.shape(node, node.output[0])
    strides = g.attr(node, "strides") or [1] * rank  # ONNX default stride is 1, not the window
    return formulas.pool(x, y, window, strides, _pair(g.attr(node, "pads", []), rank))


@_handles("GlobalAveragePool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")
def _reduce(g: _Graph, node: Any) -> dict:
    return formulas.reduce_mean(g.shape(node, node.input[0]), g.shape(node, node.output[0]))


@_handles("GlobalMaxPool")
def _global_max(g: _Graph, node: Any) -> dict:
    return formulas.adaptive_pool(g.shape(node, node.input[0]), g.shape(node, node.output[0]))


@_handles(
    "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Where", "Equal", "Greater", "Less",
    "GreaterOrEqual", "LessOrEqual", "And", "Or",
)
def _eltwise(g: _Graph, node: Any) -> dict:
    shapes, weights = g.operands(node, _ins(node))
    return formulas.eltwise(shapes, g.shape(node, node.output[0]), weights=weights)


@_handles("Resize", "Upsample")
def _resample(g: _Graph, node: Any) -> dict:
    """Up-sampling: one op per output element, as the tracer counts ``upsample_*``."""
    return formulas.eltwise([g.shape(node, node.input[0])], g.shape(node, node.output[0]))


@_handles("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization")
def _norm(g: _Graph, node: Any) -> dict:
    scale = node.input[1] if len(node.input) > 1 else ""
    bias = node.input[2] if len(node.input) > 2 else ""
    return formulas.norm(g.shape(node, node.input[0]), g.const_numel(scale), g.const_numel(bias))


@_handles("Pad")
def _pad(g: _Graph, node: Any) -> None:
    """Zero padding is free (the tracer's ``constant_pad_nd``); reflect/edge padding is not modelled."""
    mode = g.attr(node, "mode", b"constant").decode()
    if mode != "constant":
        raise Unsupported(f"{mode} padding")
    return None


@_handles("LRN")
def _lrn(g: _Graph, node: Any) -> list[tuple[str, dict]]:
    """Local response norm as the six records ``trace`` sees for ``F.local_response_norm``.

    ``x / (k + alpha * avg_pool(pad(x*x)))**beta``: square, a ``size``-tap window mean
    across channels on the ``[N, 1, C + size - 1, H, W]`` padded view, scale, shift,
    power, divide.
    """
    x, size = g.shape(node, node.input[0]), int(g.attr(node, "size"))
    tail = [x[2], prod(x[3:])] if len(x) > 3 else x[2:]  # torch views the input as (N, 1, C, H, -1)
    ones = [1] * len(tail)
    window = formulas.pool([x[0], 1, x[1] + size - 1, *tail], [x[0], 1, x[1], *tail], [size, *ones], [1, *ones], [0] * (1 + len(tail)))
    return [
        ("mul", formulas.eltwise([x, x], x)), ("avg_pool", window), ("mul", formulas.eltwise([x], x)),
        ("add", formulas.eltwise([x], x)), ("pow", formulas.activation(x)), ("div", formulas.eltwise([x, x], x)),
    ]


@_handles(
    "Relu", "Clip", "Sigmoid", "Tanh", "Gelu", "Softmax", "LogSoftmax", "HardSwish", "HardSigmoid",
    "LeakyRelu", "Elu", "Selu", "Celu", "Softplus", "Mish", "Erf", "Exp", "Log", "Sqrt", "Reciprocal",
    "Neg", "Abs", "Pow", "ThresholdedRelu", "PRelu",
)
def _activation(g: _Graph, node: Any) -> dict:
    extra = _ins(node)[1:]
    # a PReLU slope is a parameter even when it is a single number (nn.PReLU() has one)
    weights = sum(g.const_numel(n) for n in extra if g.is_param(n) or node.op_type == "PRelu")
    return formulas.activation(g.shape(node, node.input[0]), weights=weights)


@_handles("Concat")
def _concat(g: _Graph, node: Any) -> dict:
    shapes, weights = g.operands(node, _ins(node))
    return formulas.concat(shapes, g.shape(node, node.output[0]), weights=weights)


@_handles("Gather")
def _gather(g: _Graph, node: Any) -> dict | None:
    """A look-up into a 2-D constant table along axis 0 is an embedding; other gathers are free indexing."""
    table = node.input[0]
    if g.is_const(table) and g.attr(node, "axis", 0) == 0 and len(g.shape(node, table)) == 2:
        return formulas.embedding(g.shape(node, table), g.shape(node, node.input[1]), weight_is_param=True)
    return None


# -- naming -------------------------------------------------------------------------------------

def _module_paths(nodes: Sequence[Any]) -> list[str]:
    """The PyTorch module path an exporter encoded in each node, or ``""``.

    The TorchScript exporter names nodes ``/layer1/layer1.0/conv1/Conv`` (each scope is
    the attribute name, Sequential children as ``parent.index``) -> ``layer1.0.conv1``,
    and suffixes ``_1``, ``_2`` to the scope of a module called again (``/relu_1/Relu``
    -> ``relu``); the dynamo exporter stores ``pkg.torch.onnx.name_scopes``
    ``['', 'fc', 'linear']`` -> ``fc``. NB(names): a module genuinely named ``act_1``
    whose sibling ``act`` ran before it is attributed to ``act``.
    """
    seen: set[str] = set()
    paths = []
    for node in nodes:
        scopes = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None)
        if scopes is not None:
            try:
                listed = ast.literal_eval(scopes)
                path = str(listed[-2]) if len(listed) >= 2 else ""
            except (ValueError, SyntaxError, TypeError, IndexError):
                path = ""
        else:
            path, previous = "", ""
            for scope in node.name.split("/")[1:-1] if node.name.startswith("/") else []:
                repeat = re.fullmatch(r"(.+)_\d+", scope)
                if repeat and _join(path, previous, repeat.group(1)) in seen and _join(path, previous, scope) not in seen:
                    scope = repeat.group(1)
                path, previous = _join(path, previous, scope), scope
        seen.update(".".join(path.split(".")[:i]) for i in range(1, path.count(".") + 2) if path)
        paths.append(path)
    return paths


def _join(path: str, previous: str, scope: str) -> str:
    """Extend a module path by one exporter scope (``layer1`` + ``layer1.0`` -> ``layer1.0``)."""
    if previous and scope.startswith(previous + "."):
        return path + scope[len(previous):]
    return f"{path}.{scope}" if path else scope


class _Namer:
    """Layer names as the tracer makes them: the leaf module path, else ``path.label``, then ``_k``."""

    def __init__(self, paths: set[str]):
        self.inner = {".".join(p.split(".")[:i]) for p in paths for i in range(1, p.count(".") + 1)}
        self.seen: Counter = Counter()
        self.names: set[str] = set()

    def __call__(self, path: str, label: str) -> str:
        leaf = bool(path) and path not in self.inner
        key = (path, "" if leaf else label)
        k = self.seen[key]
        self.seen[key] += 1
        stem = path if leaf else (f"{path}.{label}" if path else label)
        base = stem if k == 0 else f"{stem}_{k}"
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name


def _label(node: Any, fields: dict) -> str:
    if node.op_type == "MatMul":
        return "bmm" if fields.get("groups", 1) > 1 else "mm"
    return _LABELS.get(node.op_type, node.op_type.lower())


def _fold_affine(layers: list[Layer], fields: dict, module: str, op_type: str) -> bool:
    """Fold a parameter applied to the previous layer's output (same module) into that layer.

    The tracer's rule for MAC layers: ``Linear`` on a 3-D input exports as MatMul then
    Add(bias), one FC layer with biases. GroupNorm exports as InstanceNormalization
    (unit scale per group) then Mul(weight), Add(bias): one NORM layer with C weights and biases.
    """
    if fields["kind"] is not OpKind.ELTWISE or not fields["weights"] or fields["ifmap"] != fields["ofmap"]:
        return False
    if not layers or layers[-1].module != module or layers[-1].ofmap != fields["ofmap"]:
        return False
    previous = layers[-1]
    if previous.is_mac and not previous.biases:
        layers[-1] = previous.replace(biases=fields["weights"])
    elif previous.op == "onnx.InstanceNormalization" and op_type in ("Mul", "Add"):
        layers[-1] = previous.replace(**{"weights" if op_type == "Mul" else "biases": fields["weights"]})
    else:
        return False
    return True


# -- loading ------------------------------------------------------------------------------------

def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise UserInputError("from_onnx needs the onnx package: pip install dnnergy[onnx]") from exc
    return onnx


def _load(onnx: Any, file: Path) -> Any:
    if not file.is_file():
        raise OnnxImportError(f"{file}: no such ONNX file")
    try:
        model = onnx.load(str(file))
    except Exception as exc:  # DecodeError, or a broken external-data reference
        raise OnnxImportError(f"{file}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    if not model.ir_version or not model.graph.node:
        raise OnnxImportError(f"{file}: not an ONNX model (no IR version or no graph nodes)")
    return model


def _fix_inputs(file: Path, inputs: list, input_shapes: Any) -> None:
    """Write ``input_shapes`` (a shape, a list of shapes in input order, or {name: shape}) into the graph inputs."""
    names = [i.name for i in inputs]
    if isinstance(input_shapes, Mapping):
        given = dict(input_shapes)
    elif isinstance(input_shapes, (tuple, list)) and input_shapes and all(isinstance(d, int) for d in input_shapes):
        given = {names[0]: input_shapes} if len(names) == 1 else None
    elif isinstance(input_shapes, (tuple, list)) and len(input_shapes) == len(names):
        given = dict(zip(names, input_shapes))
    else:
        given = None
    if given is None:
        raise UserInputError(
            f"{file}: input_shapes must be a shape, one shape per graph input, or {{name: shape}} for inputs {names} (got {input_shapes!r})"
        )
    for name, shape in given.items():
        if name not in names:
            raise UserInputError(f"{file}: input_shapes names unknown input {name!r} (graph inputs: {names})")
        dims = inputs[names.index(name)].type.tensor_type.shape.dim
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape) or len(shape) != len(dims):
            raise UserInputError(f"{file}: input_shapes[{name!r}] must be {len(dims)} positive ints (got {tuple(shape)!r})")
        for i, (dim, value) in enumerate(zip(dims, shape)):
            if dim.HasField("dim_value") and dim.dim_value not in (0, value):
                raise UserInputError(f"{file}: input {name!r} has fixed dimension {i} = {dim.dim_value} (input_shapes gives {value})")
            dim.dim_value = value


def _check_inputs(file: Path, graph: Any, inputs: list) -> tuple[tuple[int, ...], ...]:
    """The graph inputs' shapes; an OnnxImportError naming the input and its first reader if one is dynamic."""
    shapes = []
    for info in inputs:
        dims = _dims(info) or ["?"]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            reader = next((n.name or n.op_type for n in graph.node if info.name in n.input), "(none)")
            example = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
            raise OnnxImportError(
                f"{file}: input {info.name!r} (read by node {reader!r}) has dynamic dimensions {dims}; "
                f"fix them with input_shapes={{{info.name!r}: {example}}}"
            )
        shapes.append(tuple(dims))
    return tuple(shapes)


def _strip_weights(onnx: Any, graph: Any, keep: int = 64) -> dict[str, list[int]]:
    """Turn initializers of more than ``keep`` elements into typed graph inputs; return all initializer dims.

    Shape inference serialises the whole model; without the weight values (only small
    constants such as Reshape targets are read) a 60M-parameter model infers in
    milliseconds instead of seconds.
    """
    dims = {init.name: list(init.dims) for init in graph.initializer}
    declared = {i.name for i in graph.input}
    small = [init for init in graph.initializer if prod(init.dims) <= keep]
    for init in graph.initializer:
        if prod(init.dims) > keep and init.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    del graph.initializer[:]
    graph.initializer.extend(small)
    return dims


def _dims(info: Any) -> list | None:
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]


def _infer(onnx: Any, file: Path, model: Any, shapes: Sequence[tuple[int, ...]], rounds: int = 8) -> dict[str, list]:
    """Dims of every tensor: ONNX shape inference, plus constant folding of shape arithmetic until shapes settle.

    Exporters compute reshape/expand targets from ``Shape`` with ops that ONNX's data
    propagation does not follow (Where, ConstantOfShape); those static sub-graphs are
    evaluated with ``onnx.reference`` (imported only when needed) and fed back as
    constants. ``model`` is not modified.
    """
    work = onnx.ModelProto()
    work.CopyFrom(model)
    values: dict[str, Any] = {}
    for _ in range(rounds):
        try:
            inferred = onnx.shape_inference.infer_shapes(work, strict_mode=True, data_prop=True)
        except Exception as exc:  # InferenceError: the fixed shapes contradict the graph
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxImportError(f"{file}: shape inference failed with input shapes {list(shapes)}: {first}") from exc
        graph = inferred.graph
        dims = {i.name: list(i.dims) for i in graph.initializer}
        dims.update((i.name, _dims(i)) for i in (*graph.input, *graph.value_info, *graph.output))
        dynamic = any(d is None or not all(isinstance(x, int) for x in d) for n in graph.node for d in map(dims.get, n.output))
        new = _fold(onnx, graph, dims, values) if dynamic else {}
        if not new:
            return dims
        kept = [n for n in work.graph.node if not set(n.output) <= set(values)]
        del work.graph.node[:]
        work.graph.node.extend(kept)
        work.graph.initializer.extend(onnx.numpy_helper.from_array(v, name) for name, v in new.items())
    return dims


def _fold(onnx: Any, graph: Any, dims: dict[str, list], values: dict[str, Any], limit: int = 4096) -> dict[str, Any]:
    """Evaluate the nodes whose inputs are all known small constants or static shapes; returns the new values."""
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    if not values:
        values.update((i.name, onnx.numpy_helper.to_array(i)) for i in graph.initializer if prod(i.dims) <= limit)
    new = {}
    for node in graph.node:
        reads = _ins(node)
        if node.domain not in ("", "ai.onnx") or any(a.HasField("g") or a.graphs for a in node.attribute):
            continue
        shape = dims.get(reads[0]) if node.op_type == "Shape" else None
        if shape is not None and all(isinstance(d, int) for d in shape):
            start, end = _attr(onnx, node, "start", 0), _attr(onnx, node, "end", None)
            result = [np.array(shape[start:end], dtype=np.int64)]
        elif node.op_type != "Shape" and all(n in values and values[n].size <= limit for n in reads):
            try:
                result = ReferenceEvaluator(node).run(None, {n: values[n] for n in reads})
            except Exception:  # an op the reference runtime lacks: leave it to shape inference
                continue
        else:
            continue
        for name, value in zip(node.output, result):
            values[name] = new[name] = np.asarray(value)
    return new


def _outer_refs(node: Any) -> list[str]:
    """Names a node's subgraphs (If/Loop bodies) read from the enclosing graph."""
    refs = []
    for attribute in node.attribute:
        for sub in [attribute.g] if attribute.HasField("g") else list(attribute.graphs):
            local = {i.name for i in sub.input} | {i.name for i in sub.initializer}
            for inner in sub.node:
                refs += [n for n in [*inner.input, *_outer_refs(inner)] if n and n not in local]
                local.update(inner.output)
    return refs


def _free_branches(node: Any) -> bool:
    """An ``If`` whose branches only re-label data (the exporter's squeeze-if-size-1)."""
    branches = [a.g for a in node.attribute if a.HasField("g")]
    return node.op_type == "If" and bool(branches) and all(n.op_type in _FREE for b in branches for n in b.node)


def _convert(g: _Graph, nodes: Sequence[Any]) -> tuple[list[Layer], Counter, dict[str, list]]:
    """Layer records, free-op counts and ``{op: [count, node names, macs]}`` of the uncounted nodes."""
    paths = _module_paths(nodes)
    namer = _Namer(set(paths))
    layers: list[Layer] = []
    ignored: Counter = Counter()
    unsupported: dict[str, list] = {}
    for node, path in zip(nodes, paths):
        op = f"{node.domain or 'onnx'}.{node.op_type}".replace("ai.onnx.", "onnx.")
        reads = _ins(node) + _outer_refs(node)
        default_domain = node.domain in ("", "ai.onnx")
        if any(name in g.tainted for name in reads):
            g.tainted.update(node.output)
        if node.op_type in ("Shape", "Size") or all(name in g.static for name in reads):
            # constants and arithmetic on them (shape computations): Python numbers in the traced model
            g.static.update(node.output)
        if default_domain and node.op_type == "Constant":
            value = g.attr(node, "value")
            g.consts[node.output[0]] = prod(value.dims) if value is not None else 1
        if default_domain and node.op_type in _VIEWS and g.is_const(node.input[0]):
            g.consts.update((name, g.const_numel(node.input[0])) for name in node.output)
        if set(node.output) <= g.static or (default_domain and (node.op_type in _FREE or _free_branches(node))):
            ignored[op] += 1
            continue
        handler = _HANDLERS.get(node.op_type) if default_domain else None
        try:
            if handler is None:
                raise Unsupported("no handler")
            fields = handler(g, node)
        except Unsupported as exc:
            entry = unsupported.setdefault(op if handler is None else f"{op} ({exc})", [0, [], None])
            entry[0] += 1
            entry[1].append(node.name or node.output[0])
            entry[2] = entry[2] if exc.macs is None else (entry[2] or 0) + exc.macs
            g.tainted.update(node.output)
            continue
        if fields is None:
            ignored[op] += 1
        for label, record in fields if isinstance(fields, list) else [(_label(node, fields), fields)] if fields else []:
            if not _fold_affine(layers, record, path, node.op_type):
                layers.append(Layer(name=namer(path, label), op=op, module=path, **record))
    return layers, ignored, unsupported


def from_onnx(path: str | Path, *, input_shapes: Any = None, strict: bool = False) -> Workload:
    """Read an ONNX model file into a :class:`Workload` (the records ``trace`` gives for the same model).

    ``input_shapes`` fixes dynamic input dimensions: ``(1, 3, 224, 224)`` for a one-input
    graph, one shape per graph input, or ``{"input": (1, 3, 224, 224)}``. Counts follow
    :class:`Layer`: MACs (one per filter tap per output, bias not counted), other ops and
    element counts (tensor elements, not bytes). Free ops (reshapes, shape arithmetic,
    constants) are counted in ``Workload.ignored`` as ``onnx.<OpType>``; nodes that
    cannot be counted are listed in ``Workload.unsupported`` with their count and node
    names (in the ``modules`` field) and warned about, or raise
    :class:`UnsupportedOpError` with ``strict=True``. A missing or corrupt file, or
    shapes that stay dynamic, raise :class:`OnnxImportError`.

    Example: ``nn.Linear(784, 300)`` exported at batch 1 gives one FC layer with
    1*784*300 = 235,200 MACs and 300 biases.
    """
    onnx = _import_onnx()
    file = Path(path)
    model = _load(onnx, file)
    initialized = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialized]
    if input_shapes is not None:
        _fix_inputs(file, inputs, input_shapes)
    shapes = _check_inputs(file, model.graph, inputs)
    initializers = _strip_weights(onnx, model.graph)
    graph = _Graph(onnx, file, _infer(onnx, file, model, shapes), initializers)
    layers, ignored, unsupported = _convert(graph, list(model.graph.node))
    uncounted = tuple(UnsupportedOp(op=op, count=c, modules=tuple(where), macs=macs) for op, (c, where, macs) in unsupported.items())
    workload = Workload(
        layers=tuple(layers), name=file.stem, input_shapes=shapes, unsupported=uncounted,
        ignored=tuple(sorted(ignored.items())), source="onnx",
    )
    if uncounted:
        if strict:
            raise UnsupportedOpError([u.op for u in uncounted])
        listing = ", ".join(f"{u.op} x{u.count} ({', '.join(u.modules[:3])})" for u in uncounted)
        warnings.warn(f"{file.name}: ops not counted: {listing} (see Workload.unsupported)", stacklevel=2)
    return workload

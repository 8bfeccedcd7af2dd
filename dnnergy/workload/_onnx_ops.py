"""ONNX node handlers for :func:`~dnnergy.workload.onnx_import.from_onnx`: op type -> layer fields.

The table half of the ONNX front end (the engine that loads, infers shapes and walks
the graph is ``onnx_import``); every handler calls the shape formulas of
:mod:`~dnnergy.workload.formulas`, like the tracer's ATen handlers. The handlers live in
the :class:`~dnnergy.registry.Registry` ``_HANDLERS`` (kind ``"ONNX op"``), keyed by op
type of the default domain.
"""

from __future__ import annotations

from math import ceil, prod
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import OnnxImportError
from ..registry import Registry
from . import formulas
from .ops import Unsupported

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
_HANDLERS: Registry[Callable[["_Graph", Any], "dict | list[tuple[str, dict]] | None"]] = Registry("ONNX op")


def _handles(*op_types: str) -> Callable:
    """Register a node handler for ONNX (default domain) op types; refuses duplicates and free ops."""

    def decorate(handler: Callable) -> Callable:
        for op_type in op_types:
            if op_type in _FREE:
                raise RuntimeError(f"from_onnx: {op_type} is a free op (no arithmetic) and takes no handler")
            _HANDLERS.add(op_type, handler)
        return handler

    return decorate


class _Graph:
    """Shapes, constants and attributes of one shape-inferred ONNX graph."""

    def __init__(self, onnx: Any, file: Path, dims: dict[str, list | None], initializers: dict[str, list[int]]):
        self.onnx, self.file = onnx, file
        self.dims = {**dims, **initializers}
        #: name -> element count of the parameter it is (or is a view of, or is computed from parameters)
        self.consts: dict[str, int] = {name: prod(dims) for name, dims in initializers.items()}
        self.static: set[str] = set(self.consts)  # known before any input is read
        self.tainted: set[str] = set()  # outputs of uncounted nodes, whose shapes inference may not know

    def follow_consts(self, node: Any) -> None:
        """Mark the parameters a (default-domain) node computes from parameters alone.

        A view of a parameter (Reshape, Transpose, Cast, Identity, ...) is that parameter
        and keeps its element count; any other node that reads nothing but parameters
        (a ``Constant``, ``ConstantOfShape`` of a constant shape, a weight times a constant
        scale) computes a parameter of its output's element count. Shape queries are not
        parameters: what is computed from an activation's shape stays a shape.
        """
        reads = _ins(node)
        if node.op_type in _VIEWS and reads and self.is_const(reads[0]):
            self.consts.update((name, self.consts[reads[0]]) for name in node.output)
        elif node.op_type not in ("Shape", "Size") and all(map(self.is_const, reads)):
            for name in node.output:
                dims = self.dims.get(name)
                if dims is not None and all(isinstance(d, int) for d in dims):
                    self.consts[name] = prod(dims)

    def shape(self, node: Any, name: str) -> list[int]:
        """The static shape of tensor ``name`` read by ``node``, or an OnnxImportError naming both."""
        dims = self.dims.get(name)
        if dims is None or not all(isinstance(d, int) for d in dims):
            if name in self.tainted:  # produced (through free ops) by a node that was not counted
                raise Unsupported("input shape unknown after an unsupported op")
            side, why = ("output", "shape inference gives none for this node") if name in node.output else \
                ("input", "shapes that depend on data values are not supported")
            raise OnnxImportError(
                f"{self.file}: node {_node_name(node)!r} ({node.op_type}): the shape of its {side} {name!r} cannot be "
                f"resolved (dims: {'unknown' if dims is None else dims}); {why}"
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


def _node_name(node: Any) -> str:
    """A node's name as text: protobuf hands a name that is not valid UTF-8 over as bytes."""
    name = node.name
    return name.decode("utf-8", errors="backslashreplace") if isinstance(name, bytes) else name


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


@_handles("Einsum")
def _einsum(g: _Graph, node: Any) -> dict:
    """A two-operand einsum that sums over an index as the matmul it is (:func:`formulas.einsum`).

    One that sums over no index (an outer or element-wise product) is element-wise, one op
    per output element, as the tracer counts the ``aten.mul`` torch runs for it.
    """
    equation = g.attr(node, "equation").decode()
    names = _ins(node)
    try:
        ta, tb, out = formulas.einsum_indices(equation)
    except ValueError as exc:
        raise Unsupported(str(exc)) from None
    a, b = (g.shape(node, name) for name in names)
    if not (set(ta) & set(tb)) - set(out):
        shapes, weights = g.operands(node, names)
        return formulas.eltwise(shapes, g.shape(node, node.output[0]), weights=weights)
    return formulas.einsum(equation, a, b, g.is_const(names[0]), g.is_const(names[1]))


def _recurrent_shapes(g: _Graph, node: Any, gates: int) -> tuple[int, int, int, int, list[int]]:
    """(steps x batch, inputs, hidden, directions, per-direction bias split) of an LSTM/GRU/RNN node.

    Refuses what has no model: ``sequence_lens`` (padded sequences) and LSTM peepholes.
    ``layout`` does not matter: only the product of steps and batch does.
    """
    x, w = g.shape(node, node.input[0]), g.shape(node, node.input[1])
    optional = list(node.input) + [""] * 8
    if optional[4]:
        raise Unsupported("sequence_lens (per-sequence lengths)")
    if node.op_type == "LSTM" and optional[7]:
        raise Unsupported("peephole connections")
    directions, hidden = w[0], int(g.attr(node, "hidden_size") or w[1] // gates)
    if w[1] != gates * hidden:
        raise Unsupported(f"weights {w} for hidden size {hidden}")
    bias = optional[3]
    per_dir = g.const_numel(bias) // directions // 2 if bias else 0
    return x[0] * x[1], x[2], hidden, directions, [per_dir, per_dir]


@_handles("LSTM")
def _lstm(g: _Graph, node: Any) -> list[tuple[str, dict]]:
    """One ``formulas.lstm`` per direction, as the tracer counts ``nn.LSTM``: MACs = T*N*4H*(I+H) each."""
    rows, inputs, hidden, directions, (b_ih, b_hh) = _recurrent_shapes(g, node, 4)
    param = g.is_const(node.input[1])
    return [r for _ in range(directions) for r in formulas.lstm(rows, inputs, hidden, b_ih, b_hh, weight_is_param=param)]


@_handles("GRU")
def _gru(g: _Graph, node: Any) -> list[tuple[str, dict]]:
    """One ``formulas.gru`` per direction, as the totals of the tracer's per-step ``nn.GRU`` records."""
    rows, inputs, hidden, directions, (b_ih, b_hh) = _recurrent_shapes(g, node, 3)
    param = g.is_const(node.input[1])
    return [r for _ in range(directions) for r in formulas.gru(rows, inputs, hidden, b_ih, b_hh, weight_is_param=param)]


@_handles("RNN")
def _rnn(g: _Graph, node: Any) -> list[tuple[str, dict]]:
    """One ``formulas.rnn`` per direction, as the totals of the tracer's per-step ``nn.RNN`` records."""
    rows, inputs, hidden, directions, (b_ih, b_hh) = _recurrent_shapes(g, node, 1)
    param = g.is_const(node.input[1])
    return [r for _ in range(directions) for r in formulas.rnn(rows, inputs, hidden, b_ih, b_hh, weight_is_param=param)]


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
    """Padding only moves data (constant, reflect, edge, wrap), free like the tracer's ``constant_pad_nd``."""
    return None


@_handles("LRN")
def _lrn(g: _Graph, node: Any) -> list[tuple[str, dict]]:
    """Local response norm as the one record ``trace`` gives ``nn.LocalResponseNorm`` (:func:`formulas.local_response_norm`)."""
    return [("local_response_norm", formulas.local_response_norm(g.shape(node, node.input[0]), int(g.attr(node, "size"))))]


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

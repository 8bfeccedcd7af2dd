"""``from_onnx``: read an ONNX file into the same :class:`Workload` records ``trace`` produces.

Shapes come from :mod:`~dnnergy.workload.onnx_fold` (shape inference plus constant
folding) and every compute node is turned into layer fields by the pure functions of
:mod:`~dnnergy.workload.formulas` that the tracer's ATen handlers call, so the two front
ends agree by construction. In ONNX an *initializer* plays the role of a PyTorch
parameter, and so does whatever is computed from initializers alone: a ``Constant``,
``ConstantOfShape`` of a constant shape, a ``Reshape``/``Transpose``/``Cast``/``Identity``
of one (as old zoo files write their weights). A MatMul with one is FC, between two
activations MATMUL. IR version 3 files, which list every initializer as a graph input
too, read the same as newer ones: those inputs are weights, not model inputs.

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
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import DnnergyError, OnnxImportError, UnsupportedOpError, UserInputError
from .layer import Layer, OpKind, fold_bias
from .ops import Unsupported, get_handler
from .workload import UnsupportedOp, Workload

__all__ = ["from_onnx"]

from ._onnx_ops import _FREE, _HANDLERS, _LABELS, _Graph, _ins, _node_name
from .onnx_fold import infer_dims, value_dims


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
            name = _node_name(node)
            for scope in name.split("/")[1:-1] if name.startswith("/") else []:
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

    MAC layers follow the tracer's rule (:func:`~dnnergy.workload.layer.fold_bias`: a
    ``Linear`` on a 3-D input exports as MatMul then Add(bias)). GroupNorm exports as
    InstanceNormalization (unit scale per group) then Mul(weight), Add(bias): one NORM
    layer with C weights and biases.
    """
    if not layers or layers[-1].module != module:
        return False
    previous = layers[-1]
    folded = fold_bias(previous, fields)
    if folded is None and previous.op == "onnx.InstanceNormalization" and op_type in ("Mul", "Add") \
            and fields["kind"] is OpKind.ELTWISE and fields["weights"] and previous.ofmap == fields["ofmap"]:
        folded = previous.replace(**{"weights" if op_type == "Mul" else "biases": fields["weights"]})
    if folded is not None:
        layers[-1] = folded
    return folded is not None


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


def _check_opsets(onnx: Any, file: Path, model: Any) -> None:
    """An OnnxImportError for an opset the graph's ops cannot be read under (before any shape is looked at).

    Versions start at 1; the default domain (``""`` / ``ai.onnx``) must be imported when a
    node uses it, at a version the installed onnx knows (its schemas give the shapes).
    """
    for opset in model.opset_import:
        if opset.version < 1:
            raise OnnxImportError(f"{file}: invalid opset version {opset.version} for domain {opset.domain or 'ai.onnx'!r} (versions start at 1)")
    default = [opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")]
    newest = onnx.defs.onnx_opset_version()
    if not default and any(node.domain in ("", "ai.onnx") for node in model.graph.node):
        raise OnnxImportError(f"{file}: invalid opset: no opset import for the default domain 'ai.onnx' that its nodes use")
    if default and max(default) > newest:
        raise OnnxImportError(
            f"{file}: invalid opset: ai.onnx version {max(default)} is newer than onnx {onnx.__version__} knows "
            f"(1 to {newest}); upgrade onnx"
        )


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


def _fix_batch(file: Path, inputs: list, batch: int) -> None:
    """Set every input's leading (batch) dimension to ``batch``; a different fixed one is an error."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UserInputError(f"{file}: batch must be a positive int (got {batch!r})")
    for graph_input in inputs:
        dims = graph_input.type.tensor_type.shape.dim
        if not dims:
            continue
        if dims[0].HasField("dim_value") and dims[0].dim_value not in (0, batch):
            raise UserInputError(f"{file}: input {graph_input.name!r} has a fixed batch dimension of {dims[0].dim_value} (asked for {batch})")
        dims[0].dim_value = batch


def _check_inputs(file: Path, graph: Any, inputs: list) -> tuple[tuple[int, ...], ...]:
    """The graph inputs' shapes; an OnnxImportError naming the input and its first reader if one is dynamic."""
    shapes = []
    for info in inputs:
        dims = value_dims(info) or ["?"]
        if not all(isinstance(d, int) and d > 0 for d in dims):
            reader = next((_node_name(n) or n.op_type for n in graph.node if info.name in n.input), "(none)")
            example = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
            raise OnnxImportError(
                f"{file}: input {info.name!r} (read by node {reader!r}) has dynamic dimensions {dims}; "
                f"fix them with input_shapes={{{info.name!r}: {example}}}"
            )
        shapes.append(tuple(dims))
    return tuple(shapes)


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
        outer = _outer_refs(node)
        reads = _ins(node) + outer
        default_domain = node.domain in ("", "ai.onnx")
        if any(name in g.tainted for name in reads):
            g.tainted.update(node.output)
        if node.op_type in ("Shape", "Size") or all(name in g.static for name in reads):
            # constants and arithmetic on them (shape computations): Python numbers in the traced model
            g.static.update(node.output)
        if default_domain and not outer:
            g.follow_consts(node)
        if set(node.output) <= g.static or (default_domain and (node.op_type in _FREE or _free_branches(node))):
            ignored[op] += 1
            continue
        handler = get_handler(node.op_type, _HANDLERS) if default_domain else None
        try:
            if handler is None:
                raise Unsupported("no handler")
            fields = handler(g, node)
        except Unsupported as exc:
            entry = unsupported.setdefault(op if handler is None else f"{op} ({exc})", [0, [], None])
            entry[0] += 1
            entry[1].append(_node_name(node) or node.output[0])
            entry[2] = entry[2] if exc.macs is None else (entry[2] or 0) + exc.macs
            g.tainted.update(node.output)
            continue
        if fields is None:
            ignored[op] += 1
        for label, record in fields if isinstance(fields, list) else [(_label(node, fields), fields)] if fields else []:
            if not _fold_affine(layers, record, path, node.op_type):
                layers.append(Layer(name=namer(path, label), op=op, module=path, **record))
    return layers, ignored, unsupported


def from_onnx(path: str | Path, *, input_shapes: Any = None, batch: int | None = None, strict: bool = False) -> Workload:
    """Read an ONNX model file into a :class:`Workload` (the records ``trace`` gives for the same model).

    ``input_shapes`` fixes dynamic input dimensions: ``(1, 3, 224, 224)`` for a one-input
    graph, one shape per graph input, or ``{"input": (1, 3, 224, 224)}``; ``batch`` sets
    every input's leading dimension (an error where the file fixes a different one). Counts follow
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
    try:
        return _workload(onnx, file, model, input_shapes, batch, strict)
    except DnnergyError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
        # a file that parses but contradicts itself (damaged strings, weights whose size is not their
        # dims, operands whose shapes do not fit): said, naming the file, instead of a stray Python error
        raise OnnxImportError(f"{file}: inconsistent ONNX model ({type(exc).__name__}: {str(exc)[:300]})") from exc


def _workload(onnx: Any, file: Path, model: Any, input_shapes: Any, batch: int | None, strict: bool) -> Workload:
    """``from_onnx`` after the file is read: the graph's records."""
    _check_opsets(onnx, file, model)
    initialized = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialized]
    if input_shapes is not None:
        _fix_inputs(file, inputs, input_shapes)
    if batch is not None:
        _fix_batch(file, inputs, batch)
    shapes = _check_inputs(file, model.graph, inputs)
    initializers = {init.name: list(init.dims) for init in model.graph.initializer}
    graph = _Graph(onnx, file, infer_dims(onnx, file, model, shapes), initializers)
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
        warnings.warn(f"{file.name}: ops not counted: {listing} (see Workload.unsupported)", stacklevel=3)
    return workload

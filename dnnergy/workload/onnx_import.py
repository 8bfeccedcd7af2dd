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
from math import prod
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import OnnxImportError, UnsupportedOpError, UserInputError
from .layer import Layer, OpKind, fold_bias
from .ops import Unsupported, get_handler
from .workload import UnsupportedOp, Workload

__all__ = ["from_onnx"]

from ._onnx_ops import _FREE, _HANDLERS, _LABELS, _VIEWS, _Graph, _attr, _ins


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
        handler = get_handler(node.op_type, _HANDLERS) if default_domain else None
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
    initialized = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialized]
    if input_shapes is not None:
        _fix_inputs(file, inputs, input_shapes)
    if batch is not None:
        _fix_batch(file, inputs, batch)
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

"""Static tensor shapes of an ONNX graph: shape inference plus constant folding.

The shape half of :func:`~dnnergy.workload.onnx_import.from_onnx`. Files as model zoos
publish them compute much of what a layer needs from constants: IR version 3 graphs
list every initializer as a graph input too, weights come out of ``Constant`` /
``ConstantOfShape`` nodes and ``Reshape``/``Transpose``/``Cast`` of them, and reshape
targets are built at run time by ``Shape -> Gather -> Unsqueeze -> Concat`` chains.
:func:`infer_dims` works on a copy of the model in which all of these are plain
constants (and the output shapes of opset-1 ops that have no shape inference are filled
in by :mod:`~dnnergy.workload.onnx_legacy`), runs ``onnx.shape_inference`` and evaluates,
with ``onnx.reference`` at the file's own opset, the nodes whose inputs are known
constants or static shapes, until the shapes settle. Values are only materialised for
small tensors (:data:`LIMIT` elements); a larger folded tensor keeps just its shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from pathlib import Path
from typing import Any

from ..errors import OnnxImportError
from ._onnx_ops import _attr, _node_name
from .onnx_legacy import legacy_value_info, needs_legacy_shapes

__all__ = ["infer_dims", "value_dims"]

#: Tensors with more elements than this are never evaluated or kept as values (shape only).
LIMIT = 4096


def value_dims(info: Any) -> list | None:
    """Dims of a ValueInfoProto: ints where known, the symbolic name (or ``"?"``) elsewhere; None if unranked."""
    tensor = info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.shape.dim]


def _working_copy(onnx: Any, model: Any, keep: int = 64) -> Any:
    """A copy of ``model`` whose initializers are constants and whose large weights are shapes only.

    IR < 4 requires initializers to be listed as graph inputs as well; they are taken out of
    the inputs (and the IR version raised to 4, which allows that) so that shape inference
    reads their values. Initializers and ``Constant`` tensors of more than ``keep``
    elements become typed graph inputs: shape inference serialises the whole model, and
    without the weight values (only small constants such as reshape targets are read) a
    60M-parameter model infers in milliseconds instead of seconds.
    """
    work = onnx.ModelProto()
    work.CopyFrom(model)
    graph = work.graph
    initialized = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    del graph.input[:]
    graph.input.extend(inputs)
    work.ir_version = max(work.ir_version, 4)
    typed = onnx.helper.make_tensor_value_info
    small = [init for init in graph.initializer if prod(init.dims) <= keep]
    graph.input.extend(typed(i.name, i.data_type, list(i.dims)) for i in graph.initializer if prod(i.dims) > keep)
    del graph.initializer[:]
    graph.initializer.extend(small)
    nodes = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value" and a.HasField("t")), None)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None and prod(value.dims) > keep:
            graph.input.append(typed(node.output[0], value.data_type, list(value.dims)))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return work


def infer_dims(onnx: Any, file: Path, model: Any, shapes: Sequence[tuple[int, ...]], rounds: int = 8) -> dict[str, list | None]:
    """Dims of every tensor of ``model`` (ints where static), folding constant sub-graphs until shapes settle.

    Exporters compute reshape/expand targets and some weights with ops that ONNX's data
    propagation does not follow (Where, ConstantOfShape, Cast of a computed shape); those
    static sub-graphs are evaluated and fed back as constants. ``shapes`` are the fixed
    input shapes, for the error message. ``model`` is not modified.
    """
    work = _working_copy(onnx, model)
    if needs_legacy_shapes(onnx, work):  # opset-1 ops without shape inference (opsets 1 to 5)
        work.graph.value_info.extend(legacy_value_info(onnx, work))
    values: dict[str, Any] = {}
    dims: dict[str, list | None] = {}
    dropped = False  # the file's declared shapes were taken out because one contradicts the graph
    for _ in range(rounds):
        try:
            inferred = onnx.shape_inference.infer_shapes(work, strict_mode=True, data_prop=True)
        except Exception as exc:  # InferenceError: the fixed shapes contradict the graph
            if not dropped and "existing shape differ" in str(exc):
                _drop_declared(work, len(model.graph.value_info))
                dropped = True
                continue
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OnnxImportError(f"{file}: shape inference failed with input shapes {list(shapes)}: {first}") from exc
        graph = inferred.graph
        dims = {i.name: list(i.dims) for i in graph.initializer}
        dims.update((i.name, value_dims(i)) for i in (*graph.input, *graph.value_info, *graph.output))
        dynamic = any(d is None or not all(isinstance(x, int) for x in d) for n in graph.node for d in map(dims.get, n.output))
        new = _fold(onnx, work, graph, dims, values) if dynamic else {}
        if not new:
            break
        known = set(new) | set(values)
        kept = [n for n in work.graph.node if not set(n.output) <= known]
        del work.graph.node[:]
        work.graph.node.extend(kept)
        for name, value in new.items():
            if value.size <= LIMIT:
                work.graph.initializer.append(onnx.numpy_helper.from_array(value, name))
            else:  # a large computed weight: its shape is what counts
                element = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
                work.graph.input.append(onnx.helper.make_tensor_value_info(name, element, list(value.shape)))
    if dropped:
        _check_declared(file, model, dims)
    return dims


def _drop_declared(work: Any, declared: int) -> None:
    """Take the file's own shapes (its first ``declared`` value_info entries and the output shapes) out of ``work``."""
    kept = list(work.graph.value_info)[declared:]  # after them: shapes of opset-1 ops filled in by onnx_legacy
    del work.graph.value_info[:]
    work.graph.value_info.extend(kept)
    for output in work.graph.output:
        output.type.tensor_type.ClearField("shape")


def _check_declared(file: Path, model: Any, dims: dict[str, list | None]) -> None:
    """Warn about every tensor whose shape in the file differs from the computed one; fill in those not computed.

    Exporters can write wrong output shapes (TorchScript's ``interpolate(mode='area')``);
    the shape the graph computes is used, and the file's shape only where none is computed.
    """
    import warnings

    producers = {name: node for node in model.graph.node for name in node.output}
    for info in (*model.graph.value_info, *model.graph.output):
        declared, computed = value_dims(info), dims.get(info.name)
        if declared is None or not all(isinstance(d, int) for d in declared):
            continue
        if computed is None or not all(isinstance(d, int) for d in computed):
            dims[info.name] = declared
        elif computed != declared:
            node = producers.get(info.name)
            where = f"node {_node_name(node) or '?'!r} ({node.op_type})" if node is not None else "the graph"
            warnings.warn(
                f"{file.name}: tensor {info.name!r} of {where} is declared {declared} but the graph computes "
                f"{computed}; using the computed shape {computed}",
                stacklevel=4,
            )


def _fold(onnx: Any, work: Any, graph: Any, dims: dict[str, list | None], values: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the nodes whose inputs are all known small constants or static shapes; return the new tensors.

    Results of up to :data:`LIMIT` elements are added to ``values`` (later nodes may read
    them); larger ones are returned for their shape only.
    """
    import numpy as np
    from onnx.reference import ReferenceEvaluator

    if not values:
        values.update((i.name, onnx.numpy_helper.to_array(i)) for i in graph.initializer if prod(i.dims) <= LIMIT)
    opsets = list(work.opset_import)
    new = {}
    for node in graph.node:
        reads = [name for name in node.input if name]
        if node.domain not in ("", "ai.onnx") or any(a.HasField("g") or a.graphs for a in node.attribute):
            continue
        shape = dims.get(reads[0]) if node.op_type == "Shape" else None
        if shape is not None and all(isinstance(d, int) for d in shape):
            start, end = _attr(onnx, node, "start", 0), _attr(onnx, node, "end", None)
            result = [np.array(shape[start:end], dtype=np.int64)]
        elif node.op_type != "Shape" and all(n in values for n in reads):
            function = onnx.helper.make_function("dnnergy", "fold", reads, list(node.output), [node], opsets)
            try:
                result = ReferenceEvaluator(function).run(None, {n: values[n] for n in reads}, attributes={})
            except Exception:  # an op the reference runtime lacks: leave it to shape inference
                continue
        else:
            continue
        for name, value in zip(node.output, result):
            new[name] = np.asarray(value)
            if new[name].size <= LIMIT:
                values[name] = new[name]
    return new

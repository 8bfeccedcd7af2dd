"""``trace``: run a model once and record one :class:`Layer` per compute op.

The engine is a ``TorchDispatchMode``: it sees the ATen ops that actually ran on the
example input, so Python control flow, hand-written attention and functional code are
all covered. Ops are attributed to the innermost module being executed (forward hooks).
An op without a handler is decomposed when PyTorch knows a decomposition and reported
as unsupported otherwise; nothing is dropped silently.
"""

from __future__ import annotations

import threading
import warnings
from collections import Counter
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import TraceError, UnsupportedOpError, UserInputError
from ..registry import Registry
from .hints import model_hints, with_hints
from .layer import MAC_KINDS, Layer, TensorStats, fold_bias
from .ops import FREE_OPS, Handler, OpContext, Unsupported, einsum_mul, get_handler, op_name, registry_copy
from .workload import UnsupportedOp, Workload

__all__ = ["trace", "example_inputs"]


def example_inputs(example: Any, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, ...]:
    """Normalise an example input: a tensor, a tuple of tensors, or a shape like ``(1, 3, 224, 224)``.

    A shape becomes a standard-normal float tensor (or zeros of ``dtype`` when it is an
    integer type, e.g. token ids). Raises :class:`UserInputError` for anything else.
    """
    if isinstance(example, torch.Tensor):
        return (example,)
    if isinstance(example, (tuple, list, torch.Size)) and example and all(isinstance(d, int) and not isinstance(d, bool) for d in example):
        if any(d < 1 for d in example):
            raise UserInputError(f"input shape must have positive dimensions (got {tuple(example)})")
        if dtype is not None and not dtype.is_floating_point:
            return (torch.zeros(tuple(example), dtype=dtype),)
        return (torch.randn(tuple(example), generator=torch.Generator().manual_seed(0), dtype=dtype or torch.float32),)
    if isinstance(example, (tuple, list)) and example and all(isinstance(t, torch.Tensor) for t in example):
        return tuple(example)
    raise UserInputError(
        f"example input must be a tensor, a tuple of tensors, or a shape such as (1, 3, 224, 224) (got {type(example).__name__}: {example!r:.80})"
    )


class _Recorder(TorchDispatchMode):
    """Dispatch mode that turns every ATen call into layer records."""

    def __init__(self, table: Registry[Handler], ctx: OpContext, module_stack: list[tuple[str, bool]], measure: bool = False,
                 compute: bool = True):
        super().__init__()
        self.table, self.ctx, self.stack, self.measure, self.compute = table, ctx, module_stack, measure, compute
        self.shape_only = _ShapeOnly()
        self.layers: list[Layer] = []
        self.names: set[str] = set()
        self.per_module: Counter = Counter()
        self.unsupported: dict[str, list] = {}
        self.ignored: Counter = Counter()
        self.param_regions: set[tuple[int, int, int]] = set()
        self.einsum_mul: Handler | None = None  #: set by :func:`_counted_einsum` while an einsum runs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        handler = get_handler(name, self.table)
        if name == "aten.mul" and self.einsum_mul is not None:
            handler, self.einsum_mul = self.einsum_mul, None
        if handler is None and name not in FREE_OPS:
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs) if self.compute or name not in SHAPE_ONLY_OPS else self.shape_only(func, args, kwargs)
        if handler is None:
            if name in FREE_OPS:
                self.ignored[name] += 1
            else:
                self._unsupported(name, None)
            return out
        try:
            result = handler(self.ctx, args, kwargs, out)
        except (Unsupported, ValueError) as exc:  # a formula's ValueError is a counting gap, not a failed forward
            self._unsupported(f"{name} ({exc})", getattr(exc, "macs", None))
            return out
        for tensor in _flat_tensors(args):
            region = self.ctx.param_region(tensor)
            if region is not None:
                self.param_regions.add(region)
        if isinstance(result, list):
            records = result
        else:
            records = [(name.split(".")[-1].lstrip("_"), result)]
            if self.measure:
                result.update(self._measure(args, out, result))
        for label, fields in records:
            if not self._fold_bias(fields):
                self._record(name, label, fields)
        return out

    def _measure(self, args: tuple, out: Any, fields: dict) -> dict:
        """Densities and zero-run statistics of the call's ifmap, weight and output tensors."""
        tensors = _flat_tensors(args)
        params = [t for t in tensors if self.ctx.is_param(t)]
        acts = [t for t in tensors if not self.ctx.is_param(t) and t.is_floating_point()]
        weight = None
        if fields["kind"] in MAC_KINDS and not fields["weight_is_param"] and len(acts) >= 2:
            weight, acts = acts[-1], acts[:-1]
        elif params:
            weight = max(params, key=torch.Tensor.numel)
        output = out[0] if isinstance(out, (tuple, list)) else out
        stats = {}
        if acts:
            stats["i_stats"] = TensorStats.of(*acts)
            stats["i_density"] = stats["i_stats"].density
        if weight is not None:
            stats["w_stats"] = TensorStats.of(weight)
            stats["w_density"] = stats["w_stats"].density
        if isinstance(output, torch.Tensor):
            stats["o_stats"] = TensorStats.of(output)
            stats["o_density"] = stats["o_stats"].density
        return stats

    def _fold_bias(self, fields: dict) -> bool:
        """Fold a parameter added to the previous MAC layer's output (same module) into its biases."""
        if not self.layers or self.layers[-1].module != self._module()[0]:
            return False
        folded = fold_bias(self.layers[-1], fields)
        if folded is not None:
            self.layers[-1] = folded
        return folded is not None

    def _module(self) -> tuple[str, bool]:
        return self.stack[-1] if self.stack else ("", False)

    def _unsupported(self, key: str, macs: int | None) -> None:
        path, _ = self._module()
        entry = self.unsupported.setdefault(key, [0, [], None])
        entry[0] += 1
        if path not in entry[1]:
            entry[1].append(path)
        if macs is not None:
            entry[2] = (entry[2] or 0) + macs

    def _record(self, op: str, label: str, fields: dict) -> None:
        path, is_leaf = self._module()
        k = self.per_module[(path, label if not is_leaf else "")]
        self.per_module[(path, label if not is_leaf else "")] += 1
        if is_leaf and path:
            base = path if k == 0 else f"{path}_{k}"
        else:
            stem = f"{path}.{label}" if path else label
            base = stem if k == 0 else f"{stem}_{k}"
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        self.layers.append(Layer(name=name, op=op, module=path, **fields))


_EINSUM_RECORDER = threading.local()  # the recorder of the trace running in this thread, if any
_TORCH_EINSUM = torch.functional.einsum


def _counted_einsum(equation, *operands):
    """``torch.einsum`` that, inside a trace, hands the recorder an :func:`~dnnergy.workload.ops.einsum_mul`
    handler for the ``aten.mul`` torch may lower a two-operand einsum to (a summed index of size 1)."""
    recorder = getattr(_EINSUM_RECORDER, "current", None)
    if recorder is None:
        return _TORCH_EINSUM(equation, *operands)
    flat = tuple(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else operands
    try:
        recorder.einsum_mul = einsum_mul(equation, *flat) if len(flat) == 2 else None
    except ValueError:  # an ellipsis: torch's own ops are counted as they come
        recorder.einsum_mul = None
    try:
        return _TORCH_EINSUM(equation, *operands)
    finally:
        recorder.einsum_mul = None


@contextmanager
def _einsum_counted(recorder: "_Recorder") -> Iterator[None]:
    """While a trace runs, ``torch.einsum`` reports its equation to ``recorder`` (this thread only).

    A patch of the one function rather than a ``TorchFunctionMode``: a mode sees every torch
    call of the forward pass and made tracing ResNet-50 about 11 % slower for this rare case.
    """
    previous = getattr(_EINSUM_RECORDER, "current", None)
    saved = torch.einsum, torch.functional.einsum
    _EINSUM_RECORDER.current = recorder
    torch.einsum = torch.functional.einsum = _counted_einsum
    try:
        yield
    finally:
        torch.einsum, torch.functional.einsum = saved
        _EINSUM_RECORDER.current = previous


#: The ops whose arithmetic dominates a forward pass; ``compute=False`` runs them on shapes only.
SHAPE_ONLY_OPS = frozenset(
    f"aten.{n}" for n in """convolution _convolution mm bmm addmm baddbmm _scaled_dot_product_flash_attention_for_cpu
    native_batch_norm _native_batch_norm_legit_no_training relu_ hardtanh_ add_""".split()
)


class _ShapeOnly:
    """Results of :data:`SHAPE_ONLY_OPS` from shapes alone, for ``trace(compute=False)``.

    The output shape comes from the op's meta kernel; the values are zeros from one
    buffer per (shape, dtype), shared because nothing downstream reads them: in-place ops
    of the set return their input untouched and batch norm keeps its input's shape.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple, torch.Tensor] = {}

    def zeros(self, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
        key = (tuple(shape), dtype)
        if key not in self.buffers:
            self.buffers[key] = torch.zeros(shape, dtype=dtype)
        return self.buffers[key]

    def __call__(self, func: Any, args: tuple, kwargs: dict) -> Any:
        from torch.utils._python_dispatch import _disable_current_modes
        from torch.utils._pytree import tree_map

        name = op_name(func)
        if name.endswith("_"):
            return args[0]
        if "batch_norm" in name:
            x = args[0]
            return x, self.zeros((0,), x.dtype), self.zeros((0,), x.dtype)

        def to_meta(t: Any) -> Any:
            return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta") if isinstance(t, torch.Tensor) else t

        with _disable_current_modes():
            result = func(*tree_map(to_meta, args), **tree_map(to_meta, kwargs))
        return tree_map(lambda t: self.zeros(t.shape, t.dtype) if isinstance(t, torch.Tensor) else t, result)


def _flat_tensors(args: tuple) -> list[torch.Tensor]:
    """The tensors among an op's arguments, looking one level into lists (``cat``)."""
    return [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a]) if isinstance(t, torch.Tensor)]


@contextmanager
def _module_tracking(model: nn.Module, stack: list[tuple[str, bool]]) -> Iterator[None]:
    """Push (path, is_leaf) while each of the model's modules runs its forward.

    Two global hooks and a dict look-up, not two hooks per module: registering hooks on
    every module of a ResNet-50 cost more than counting it.
    """
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    entries = {id(module): (path, next(module.children(), None) is None) for path, module in model.named_modules()}

    def pre(module: nn.Module, inputs: Any) -> None:
        entry = entries.get(id(module))
        if entry is not None:
            stack.append(entry)

    def post(module: nn.Module, inputs: Any, output: Any) -> None:
        if id(module) in entries:
            stack.pop()

    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Inference mode for the trace (dropout off, BN running stats), restored afterwards."""
    training = [m for m in model.modules() if m.training]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    for m in training:
        m.training = False
    torch.backends.mha.set_fastpath_enabled(False)  # fused MHA kernels hide their matmuls
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m in training:
            m.training = True


def _param_storages(model: nn.Module) -> dict[int, int]:
    storages: dict[int, int] = {}
    for p in model.parameters():
        try:
            storages[p.untyped_storage().data_ptr()] = p.numel()
        except (RuntimeError, NotImplementedError):
            continue
    return storages


def _shape_hint(model: nn.Module) -> str:
    for path, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            return f"; the first layer {path!r} ({type(module).__name__}) expects {module.in_channels} input channels"
        if isinstance(module, nn.Linear):
            return f"; the first layer {path!r} (Linear) expects {module.in_features} input features"
        if isinstance(module, nn.Embedding):
            return f"; the first layer {path!r} (Embedding) expects integer token ids below {module.num_embeddings}"
    return ""


def trace(
    model: nn.Module,
    example_input: Any = None,
    *,
    input_shape: Sequence[int] | None = None,
    dtype: torch.dtype | None = None,
    name: str | None = None,
    ops: dict[str, Handler] | None = None,
    strict: bool = False,
    measure: bool = False,
    compute: bool = True,
) -> Workload:
    """Run ``model`` once on an example input and return its :class:`Workload`.

    ``example_input`` is a tensor, a tuple of tensors, or a shape; ``input_shape`` is
    the keyword form of a shape. The model runs in eval mode under ``torch.no_grad``
    (its training flags are restored). ``ops`` maps op names (``"aten.relu"``) to
    handlers that override the global table for this call only. Ops that cannot be
    counted are listed in ``Workload.unsupported`` and warned about; ``strict=True``
    raises :class:`UnsupportedOpError` instead. ``measure=True`` also records, for every
    single-op layer, the measured density and zero-run statistics of its input, weight
    and output tensors on this input (attention's fused kernel stays dense). Energy hints
    the model's modules carry (``dnnergy_hints``: bitwidths, densities, executed-MAC
    fractions set by compression, see :mod:`dnnergy.workload.hints`) are applied to their
    layers; measured densities win over hinted ones.
    ``compute=False`` runs convolutions and matmuls on shapes only (their outputs are
    zeros): several times faster and the counts are the same, but Python control flow
    that depends on their values sees zeros, and it cannot be combined with ``measure``.

    Example: ``trace(nn.Linear(784, 300), (1, 784)).macs == 235_200``.
    """
    if not isinstance(model, nn.Module):
        raise UserInputError(f"trace expects a torch.nn.Module (got {type(model).__name__})")
    if example_input is None and input_shape is None:
        raise UserInputError("trace needs an example input or an input_shape such as (1, 3, 224, 224)")
    inputs = example_inputs(example_input if example_input is not None else tuple(input_shape), dtype)
    for i, t in enumerate(inputs):
        if isinstance(t, torch.Tensor) and t.numel() == 0:
            raise UserInputError(
                f"trace: input {i} of shape {tuple(t.shape)} is empty (a dimension is 0, e.g. a batch of 0 samples); "
                "pass at least one sample"
            )
    if measure and not compute:
        raise UserInputError("trace: measure=True needs compute=True (densities come from real values)")
    model_name = name or type(model).__name__
    table = registry_copy()
    for op, handler in (ops or {}).items():
        table.add(op, handler, override=True)
    stack: list[tuple[str, bool]] = []
    recorder = _Recorder(table, OpContext(_param_storages(model)), stack, measure, compute)
    try:
        with _eval_mode(model), torch.no_grad(), _module_tracking(model, stack), recorder, _einsum_counted(recorder):
            model(*inputs)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TraceError(f"{model_name}: forward pass failed on input of shape {shapes}: {first}{_shape_hint(model)}") from exc
    unsupported = tuple(
        UnsupportedOp(op=op, count=count, modules=tuple(mods), macs=macs) for op, (count, mods, macs) in recorder.unsupported.items()
    )
    workload = Workload(
        layers=tuple(recorder.layers),
        name=model_name,
        input_shapes=tuple(tuple(t.shape) for t in inputs),
        unsupported=unsupported,
        ignored=tuple(sorted(recorder.ignored.items())),
        source="torch",
        distinct_params=sum(numel for _, _, numel in recorder.param_regions),
    )
    workload = with_hints(workload, model_hints(model), measured=measure)
    if unsupported:
        listing = ", ".join(f"{u.op} x{u.count}" for u in unsupported)
        if strict:
            raise UnsupportedOpError([u.op for u in unsupported])
        warnings.warn(f"{model_name}: ops not counted: {listing} (see Workload.unsupported)", stacklevel=2)
    return workload

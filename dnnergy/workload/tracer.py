"""``trace``: run a model once and record one :class:`Layer` per compute op.

The engine is a ``TorchDispatchMode``: it sees the ATen ops that actually ran on the
example input, so Python control flow, hand-written attention and functional code are
all covered. Ops are attributed to the innermost module being executed (forward hooks).
An op without a handler is decomposed when PyTorch knows a decomposition and reported
as unsupported otherwise; nothing is dropped silently.

By default the forward runs on ``meta`` tensors (shapes, dtypes and strides, no
arithmetic): the parameters are swapped for meta twins that share storage as the
originals do (as :func:`torch.func.functional_call` swaps them), so tied weights stay
recognisable; the twins and the meta kernels' results are remembered between traces.
When the forward needs values (``.item()``, ``if tensor:``, ``nonzero``, boolean
indexing, a tensor the model creates on the CPU), meta tensors raise; the trace then
reruns on real values and says so in ``Workload.traced_with`` / ``Workload.trace_note``.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import TraceError, UnsupportedOpError, UserInputError
from ..registry import Registry
from . import formulas
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

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # False: torch leaves __torch_dispatch__ unwrapped, so the first traced op does not import
        # torch._dynamo (and sympy), which would nearly double the start-up time of `dnnergy estimate`
        return False

    def __init__(self, table: Registry[Handler], ctx: OpContext, module_stack: list[tuple[str, bool]], measure: bool = False,
                 meta: bool = False):
        super().__init__()
        self.table, self.ctx, self.stack, self.measure = table, ctx, module_stack, measure
        self.run = _MetaOps(_META_MEMO) if meta else None  #: runs ops on meta tensors; None: ops run as called
        self.handlers: dict[Any, tuple[str, Handler | None]] = {}  #: op overload -> (name, handler), looked up once
        self.failed_at = ""  #: the op and module where the forward raised, for the fallback note
        self.absorbing = 0  #: > 0 while a :data:`MODULE_FORMULAS` module runs: its ops are not recorded
        self.layers: list[Layer] = []
        self.names: set[str] = set()
        self.per_module: Counter = Counter()
        self.unsupported: dict[str, list] = {}
        self.ignored: Counter = Counter()
        self.param_regions: set[tuple[int, int, int]] = set()
        self.einsum_mul: Handler | None = None  #: set by :func:`_counted_einsum` while an einsum runs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.absorbing:
            return func(*args, **kwargs) if self.run is None else self.run(func, args, kwargs)
        entry = self.handlers.get(func)
        if entry is None:
            name = op_name(func)
            entry = self.handlers[func] = (name, get_handler(name, self.table))
        name, handler = entry
        if self.run is not None and name == "aten._safe_softmax":
            raise RuntimeError("scaled_dot_product_attention picks its kernel by device; meta tensors take its math path")
        if name == "aten.mul" and self.einsum_mul is not None:
            handler, self.einsum_mul = self.einsum_mul, None
        if handler is None and name not in FREE_OPS:
            with self:
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        try:
            out = func(*args, **kwargs) if self.run is None else self.run(func, args, kwargs)
        except Exception:
            self.failed_at = self.failed_at or f"{name} in {self._module()[0] or '<root>'!r}"
            raise
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


_META = torch.device("meta")
_META_MEMO: tuple[dict, dict, dict] = ({}, {}, {})  #: what :class:`_MetaOps` remembers, shared by all traces


class _MetaOps:
    """Runs ops on meta tensors, faster than calling them: torch's meta kernels of many ops are
    Python (a batch norm or a ReLU about 1 ms), so results are derived or remembered.

    * A point-wise op (ATen tag ``pointwise``) whose tensor operands all have its first
      operand's shape and strides (or are 0-d), that operand being dense: the in-place form
      (``relu_``) returns it, the other a new tensor of its shape and strides, of the dtype
      torch's kernel gave once per (op, operand dtypes, argument types).
    * Inference batch norm of a dense input with running statistics of its dtype: an output
      like the input and two statistics of the channel count, as torch's kernel returns.
    * Any other op returning new meta tensors (a factory such as ``empty`` too): torch's
      meta kernel once per op and arguments (shapes, strides, dtypes, offsets, other values),
      then new tensors of the remembered layouts. Views and in-place ops run as called
      (their results alias an input); ``mutated`` becomes True when an op that may change
      a tensor's shape, strides or ``requires_grad`` in place ran (``resize_``, ``t_``, ``detach_``).

    What is remembered depends only on the op and the arguments' layouts and values, so
    ``trace`` shares one memo (:data:`_META_MEMO`) between calls: a second trace of a model
    (or of another with the same shapes) calls torch's meta kernels for views and in-place
    ops only. ``tests/workload/test_tracer_meta.py`` checks each rule against torch's meta
    kernels, ``tests/workload/test_tracer_cache.py`` what is remembered.
    """

    BATCH_NORM = (torch.ops.aten._native_batch_norm_legit_no_training.default, torch.ops.aten.native_batch_norm.default)
    LIMIT = 20_000  #: remembered calls (layouts plus point-wise dtypes) above which the memo starts afresh

    def __init__(self, memo: tuple[dict, dict, dict] | None = None) -> None:
        """``memo``: the (ops, layouts, dtypes) dicts to read and fill, e.g. :data:`_META_MEMO`; default: new ones."""
        self.ops: dict[Any, str]  #: op -> rule: "pointwise", "in_place", "batch_norm", "cache", "call" or "mutate"
        self.layouts: dict[tuple, tuple | None]  #: call key -> result layouts (None: run it every time)
        self.dtypes: dict[tuple, torch.dtype | None]  #: point-wise key -> result dtype (None: the rule does not apply)
        self.ops, self.layouts, self.dtypes = memo if memo is not None else ({}, {}, {})
        self.mutated = False  #: an op that may change a tensor's metadata in place ran

    def __call__(self, func: Any, args: tuple, kwargs: dict) -> Any:
        rule = self.ops.get(func) or self.ops.setdefault(func, _rule(func))
        if rule == "pointwise" or rule == "in_place":
            out = self._pointwise(func, args, kwargs, rule == "in_place")
            if out is not None:
                return out
            if rule == "in_place":  # e.g. a dtype mismatch: the result must still be the operand itself
                return func(*args, **kwargs)
        elif rule == "batch_norm" and _inference_batch_norm(func, args, kwargs):
            x, channels = args[0], (args[3].shape[0],)
            return (torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=_META),
                    torch.empty(channels, dtype=x.dtype, device=_META), torch.empty(channels, dtype=x.dtype, device=_META))
        if rule == "call" or rule == "mutate":
            self.mutated = self.mutated or rule == "mutate"
            return func(*args, **kwargs)
        key = _call_key(func, args, kwargs)
        cached = self.layouts.get(key) if key is not None else None
        if cached is not None:
            container, layouts = cached
            outs = [torch.empty_strided(shape, stride, dtype=dtype, device=_META) for shape, stride, dtype in layouts]
            return outs[0] if container is None else container(outs)
        out = func(*args, **kwargs)
        if key is not None:
            if len(self.layouts) + len(self.dtypes) >= self.LIMIT:
                self.layouts.clear()
                self.dtypes.clear()
            self.layouts[key] = _layouts(out)
        return out

    def _pointwise(self, func: Any, args: tuple, kwargs: dict, in_place: bool) -> torch.Tensor | None:
        x = args[0] if args else None
        if not _dense(x):
            return None
        shape, stride = x.shape, x.stride()
        others = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, torch.Tensor)]
        if any(t.dim() and (t.shape != shape or t.stride() != stride) for t in others):
            return None
        if in_place:
            return x if all(t.dtype == x.dtype for t in others) else None
        key = (func, x.dtype, tuple((t.dtype, t.dim()) for t in others), tuple(kwargs),
               tuple(type(a) if isinstance(a, (bool, int, float, complex, torch.Tensor)) else _arg_key(a) for a in (*args, *kwargs.values())))
        if key not in self.dtypes:
            out = func(*args, **kwargs)
            if len(self.layouts) + len(self.dtypes) >= self.LIMIT:
                self.layouts.clear()
                self.dtypes.clear()
            self.dtypes[key] = out.dtype if type(out) is torch.Tensor and out.shape == shape and out.stride() == stride else None
            return out
        dtype = self.dtypes[key]
        return None if dtype is None else torch.empty_strided(shape, stride, dtype=dtype, device=_META)


def _rule(func: Any) -> str:
    """Which :class:`_MetaOps` rule applies to op overload ``func``."""
    schema = func._schema
    aliases = schema.is_mutable or any(r.alias_info is not None for r in schema.returns)
    if func in _MetaOps.BATCH_NORM:
        return "batch_norm"
    if torch.Tag.pointwise in func.tags and len(schema.returns) == 1 and schema.arguments and schema.arguments[0].type.kind() == "TensorType":
        if not aliases:
            return "pointwise"
        if schema.name.endswith("_") and schema.arguments[0].alias_info is not None and schema.arguments[0].alias_info.is_write:
            return "in_place"  # relu_, add_: the result is the first operand; not an out= variant
    if schema.is_mutable:
        return "mutate"  # resize_, t_, set_, detach_, but also copy_ and out= variants: counted as possibly changing metadata
    return "call" if aliases else "cache"


def _inference_batch_norm(func: Any, args: tuple, kwargs: dict) -> bool:
    """Batch norm with running statistics, not training, on a dense input of the statistics' dtype."""
    if kwargs or len(args) < 5:
        return False
    x, stats = args[0], args[3]
    training = func is torch.ops.aten.native_batch_norm.default and args[5]
    return (not training and _dense(x) and x.dim() >= 2 and isinstance(stats, torch.Tensor) and stats.dtype == x.dtype
            and tuple(stats.shape) == (x.shape[1],))


def _dense(t: Any) -> bool:
    """A tensor whose elements fill their span in row-major or channels-last order."""
    return isinstance(t, torch.Tensor) and (t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)))


def _arg_key(a: Any) -> Any:
    """An argument as a hashable key: a tensor's layout, a value with its type (so ``1`` is not ``1.0``).

    Raises TypeError for an unhashable value."""
    if isinstance(a, torch.Tensor):
        return (a.shape, a.stride(), a.dtype, a.storage_offset(), a.device.type)
    if isinstance(a, (list, tuple)):
        return (type(a), *map(_arg_key, a))
    hash(a)
    return (type(a), a)


def _call_key(func: Any, args: tuple, kwargs: dict) -> tuple | None:
    """What an op's meta result depends on (with the default dtype, which a factory may follow),
    or None for a call with an unhashable argument, not to remember."""
    try:
        return (func, torch.get_default_dtype(), tuple(map(_arg_key, args)), tuple((k, _arg_key(v)) for k, v in kwargs.items()))
    except TypeError:
        return None


def _layouts(out: Any) -> tuple | None:
    """(tuple type, or None for a lone tensor; ((shape, strides, dtype), ...)) of a call's result,
    or None when it holds anything but plain meta tensors."""
    container = type(out) if isinstance(out, (tuple, list)) else None
    outs = out if container else (out,)
    if not outs or not all(type(t) is torch.Tensor and t.device.type == "meta" for t in outs):
        return None
    return container, tuple((tuple(t.shape), t.stride(), t.dtype) for t in outs)


def _flat_tensors(args: tuple) -> list[torch.Tensor]:
    """The tensors among an op's arguments, looking one level into lists (``cat``)."""
    return [t for a in args for t in (a if isinstance(a, (list, tuple)) else [a]) if isinstance(t, torch.Tensor)]


#: Modules whose ops depend on the device (the CPU runs ``nn.LSTM`` as ``mkldnn_rnn_layer``,
#: attention as a fused CPU kernel): the default trace counts them on a real forward pass.
#: ``scaled_dot_product_attention`` called directly shows on meta tensors as ``_safe_softmax``
#: (its math path), which the recorder refuses likewise.
DEVICE_KERNELS = (nn.RNNBase, nn.MultiheadAttention)

#: Modules counted as one layer from their input shape, whatever ops PyTorch runs for them:
#: module type -> (op name, layer label, formula of (module, input shape)).
MODULE_FORMULAS: dict[type, tuple[str, str, Callable[[nn.Module, list[int]], dict]]] = {
    nn.LocalResponseNorm: (
        "nn.LocalResponseNorm", "local_response_norm", lambda module, shape: formulas.local_response_norm(shape, module.size)
    ),
}


@contextmanager
def _module_tracking(named: Sequence[tuple[str, nn.Module]], stack: list[tuple[str, bool]], recorder: _Recorder) -> Iterator[None]:
    """Push (path, is_leaf) while each of the model's modules (``named``: ``model.named_modules()``) runs its
    forward; record a :data:`MODULE_FORMULAS` module as one layer, its ops unrecorded.

    Two global hooks and a dict look-up, not two hooks per module: registering hooks on
    every module of a ResNet-50 cost more than counting it.
    """
    from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

    entries = {id(module): (path, all(child is None for child in module._modules.values())) for path, module in named}

    def pre(module: nn.Module, inputs: Any) -> None:
        entry = entries.get(id(module))
        if entry is not None:
            stack.append(entry)  # before raising: the post hook runs anyway and pops it
            if recorder.run is not None and isinstance(module, DEVICE_KERNELS):
                raise RuntimeError(f"{type(module).__name__} {entry[0] or '<root>'!r} picks its kernel by device (oneDNN on "
                                   "the CPU), so meta tensors would count another decomposition")
            if type(module) in MODULE_FORMULAS:
                recorder.absorbing += 1

    def post(module: nn.Module, inputs: Any, output: Any) -> None:
        if id(module) in entries:
            if type(module) in MODULE_FORMULAS:
                if isinstance(output, torch.Tensor):  # None when the forward raised
                    op, label, formula = MODULE_FORMULAS[type(module)]
                    fields = formula(module, list(inputs[0].shape))
                    if recorder.measure:  # still absorbing: the statistics' own ops are not recorded
                        fields.update(recorder._measure(inputs[:1], output, fields))
                    recorder._record(op, label, fields)
                recorder.absorbing -= 1
            stack.pop()

    handles = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Inference mode for the trace (dropout off, BN running stats) of all the model's ``modules``, restored afterwards."""
    training = [m for m in modules if m.training]
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


def _param_storages(params: Iterator[torch.Tensor]) -> dict[int, int]:
    """:meth:`OpContext.storage_key` -> elements, for the parameters that have a storage."""
    storages = {OpContext.storage_key(p): p.numel() for p in params}
    storages.pop(-1, None)
    return storages


#: One parameter or buffer: (its module's ``_parameters`` or ``_buffers`` dict, name, tensor, is a parameter).
_Slot = tuple[dict, str, torch.Tensor, bool]

#: model -> (signature of its parameters and buffers, their meta twins, their :class:`OpContext` storages), from its
#: last shapes-only trace: building the twins cost ResNet-50's trace about 10 %.
_META_STATES: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, list[torch.Tensor], dict[int, int]]] = weakref.WeakKeyDictionary()


def _state_slots(modules: Sequence[nn.Module]) -> tuple[list[_Slot], tuple]:
    """The parameters and buffers of ``modules`` as slots, and the signature their meta twins depend on.

    The signature lists, for each tensor, its name, kind, identity, shape, strides, storage
    offset, dtype, ``requires_grad``, and its storage's identity and size: equal signatures
    give interchangeable twins (same layouts, same sharing). Raises RuntimeError for a
    tensor without a storage (sparse).
    """
    slots, signature = [], []
    for module in modules:
        for group, is_param in ((module._parameters, True), (module._buffers, False)):
            for name, t in group.items():
                if t is not None:
                    storage = t.untyped_storage()
                    slots.append((group, name, t, is_param))
                    signature.append((name, is_param, id(t), t.shape, t.stride(), t.storage_offset(), t.dtype, t.requires_grad,
                                      storage._cdata, storage.nbytes()))
    return slots, tuple(signature)


def _meta_twins(slots: Sequence[_Slot]) -> tuple[list[torch.Tensor], dict[int, int]]:
    """Meta twins of the slots' tensors, and the :class:`OpContext` storages of the parameters' twins.

    A twin requires grad when its original does: ``torch.matmul`` picks ``mm`` or ``bmm``
    by it, even under ``no_grad``.

    Tensors that share a storage in the model (a tied weight, a view of another parameter)
    are views of one meta storage here, at the same offsets and strides, so
    :class:`OpContext` finds the same parameters and the same sharing as on real values.
    """
    bases: dict[tuple[int, torch.dtype], torch.Tensor] = {}
    twins: dict[int, torch.Tensor] = {}
    with torch.enable_grad():  # views of a tensor that requires grad require grad only when made with grad on
        for _, _, t, _ in slots:
            if id(t) not in twins:
                key = (OpContext.storage_key(t), t.dtype)
                if key not in bases:
                    bases[key] = torch.empty(t.untyped_storage().nbytes() // t.element_size(), dtype=t.dtype, device="meta",
                                             requires_grad=t.dtype.is_floating_point or t.dtype.is_complex)
                twin = bases[key].as_strided(t.shape, t.stride(), t.storage_offset())
                twins[id(t)] = twin if t.requires_grad else twin.detach()
    tensors = [twins[id(t)] for _, _, t, _ in slots]
    return tensors, _param_storages(twin for (_, _, _, is_param), twin in zip(slots, tensors) if is_param)


def _meta_state(model: nn.Module, modules: Sequence[nn.Module]) -> tuple[list[_Slot], list[torch.Tensor], dict[int, int]]:
    """The slots of the model's parameters and buffers, their meta twins and the twins' :class:`OpContext` storages.

    The twins are remembered per model (:data:`_META_STATES`) and rebuilt when the
    signature of the parameters and buffers changed (a new shape, dtype or ``requires_grad``,
    a replaced module or tensor, a newly tied weight).
    """
    slots, signature = _state_slots(modules)
    cached = _META_STATES.get(model)  # a module is hashable (named_modules needs it)
    if cached is None or cached[0] != signature:
        cached = _META_STATES[model] = (signature, *_meta_twins(slots))
    return slots, cached[1], dict(cached[2])


@contextmanager
def _swapped(slots: Sequence[_Slot], tensors: Sequence[torch.Tensor]) -> Iterator[None]:
    """The slots hold ``tensors`` instead of their own while the context runs, as in :func:`torch.func.functional_call`
    (which swaps the same dict entries through slower accessors)."""
    for (group, name, _, _), tensor in zip(slots, tensors):
        group[name] = tensor
    try:
        yield
    finally:
        for group, name, t, _ in slots:
            group[name] = t


def _record(model: nn.Module, named: Sequence[tuple[str, nn.Module]], inputs: tuple[torch.Tensor, ...], table: Registry[Handler],
            measure: bool, meta: bool) -> _Recorder:
    """Run the forward once under a fresh :class:`_Recorder`; on meta twins of the inputs, parameters and buffers if ``meta``.

    ``named`` is ``model.named_modules()``. Exceptions of a real forward propagate; any
    exception on meta tensors becomes :class:`_NeedsValues`.
    """
    stack: list[tuple[str, bool]] = []
    if not meta:
        recorder = _Recorder(table, OpContext(_param_storages(model.parameters())), stack, measure)
        with _module_tracking(named, stack, recorder), recorder, _einsum_counted(recorder):
            model(*inputs)
        return recorder
    recorder = None
    try:
        slots, twins, storages = _meta_state(model, [module for _, module in named])
        recorder = _Recorder(table, OpContext(storages), stack, meta=True)
        meta_inputs = tuple(torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta", requires_grad=t.requires_grad)
                            for t in inputs)
        with _swapped(slots, twins), _module_tracking(named, stack, recorder), recorder, _einsum_counted(recorder):
            model(*meta_inputs)
    except Exception as exc:  # noqa: BLE001 - whatever fails on meta tensors, the real forward decides
        _META_STATES.pop(model, None)
        where = f"{recorder.failed_at}: " if recorder is not None and recorder.failed_at else ""
        raise _NeedsValues(f"{where}{type(exc).__name__}: {_first_line(exc)}") from exc
    if recorder.run.mutated:  # an op may have changed a twin's shape or strides: build them afresh next time
        _META_STATES.pop(model, None)
    return recorder


class _NeedsValues(Exception):
    """The forward failed on meta tensors; the message names the op and module (when an op raised) and the error."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _shape_hint(model: nn.Module) -> str:
    for path, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)):
            return f"; the first layer {path!r} ({type(module).__name__}) expects {module.in_channels} input channels"
        if isinstance(module, nn.Linear):
            return f"; the first layer {path!r} (Linear) expects {module.in_features} input features"
        if isinstance(module, nn.Embedding):
            return f"; the first layer {path!r} (Embedding) expects integer token ids below {module.num_embeddings}"
    return ""


def _model_name(model: nn.Module) -> str:
    """A zoo model's registry name (``alexnet`` and ``caffenet`` share a class), else the model's class name."""
    built = getattr(model, "dnnergy_architecture", None)  # zoo.ARCHITECTURE_ATTRIBUTE, set by create_model
    return built["zoo"] if isinstance(built, dict) and isinstance(built.get("zoo"), str) else type(model).__name__


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
    compute: bool | None = None,
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
    ``compute`` chooses how the forward runs. ``None`` (default): on meta tensors
    (shapes only, no arithmetic; ResNet-50 in a fraction of a real forward's time), and,
    when the forward needs values (``.item()``, ``if tensor:``, ``nonzero``, boolean
    indexing, a CPU tensor made inside ``forward``), once more on real values; the
    records are the same either way. ``Workload.traced_with`` says which ran
    (``"shapes"`` or ``"forward"``) and ``Workload.trace_note`` why a shapes-only pass
    fell back. Between calls it remembers the meta copies of a model's parameters (made
    afresh when a parameter, buffer or module changed) and the layouts torch's meta kernels
    returned for given shapes: tracing a model again runs only views and in-place ops' meta kernels.
    ``True``: always a real forward (``measure=True`` implies it).
    ``False``: shapes only; a forward that needs values raises :class:`TraceError`.

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
    if compute not in (None, True, False):
        raise UserInputError(f"trace: compute must be None (shapes, real forward if needed), True or False (got {compute!r})")
    if measure and compute is False:
        raise UserInputError("trace: measure=True needs compute=True or None (densities come from real values)")
    model_name = name or _model_name(model)
    table = registry_copy()
    for op, handler in (ops or {}).items():
        table.add(op, handler, override=True)
    shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
    recorder, traced_with, note = None, "forward", ""
    named = list(model.named_modules())
    with _eval_mode([module for _, module in named]), torch.no_grad():
        if compute is not True and not measure:
            try:
                recorder, traced_with = _record(model, named, inputs, table, measure=False, meta=True), "shapes"
            except _NeedsValues as exc:
                if compute is False:
                    raise TraceError(
                        f"{model_name}: compute=False, but the forward on meta tensors of shape {shapes} failed ({exc}); "
                        "a forward that needs tensor values must be traced with compute=None (the default) or True"
                    ) from exc.__cause__
                note = f"the shapes-only pass failed ({exc})"
        if recorder is None:
            try:
                recorder = _record(model, named, inputs, table, measure, meta=False)
            except (RuntimeError, ValueError, TypeError, IndexError, AssertionError) as exc:
                raise TraceError(
                    f"{model_name}: forward pass failed on input of shape {shapes}: {_first_line(exc)}{_shape_hint(model)}"
                ) from exc
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
        traced_with=traced_with,
        trace_note=note,
    )
    workload = with_hints(workload, model_hints(model), measured=measure)
    if unsupported:
        listing = ", ".join(f"{u.op} x{u.count}" for u in unsupported)
        if strict:
            raise UnsupportedOpError([u.op for u in unsupported])
        warnings.warn(f"{model_name}: ops not counted: {listing} (see Workload.unsupported)", stacklevel=2)
    return workload

"""The op table: ATen op -> handler that turns one call into layer fields.

A handler receives the :class:`OpContext` (which tensors are parameters), the call's
``args``/``kwargs`` and its output, and returns a field dict from
:mod:`~dnnergy.workload.formulas`, a list of ``(label, fields)`` pairs for an op that
is several layers (attention), or raises :class:`Unsupported`. Ops known to cost
nothing (views, reshapes, tensor creation) are in :data:`FREE_OPS`.

Add a handler with :func:`register_op`; list the table with :func:`list_ops`. The table
is a :class:`~dnnergy.registry.Registry` (kind ``"ATen op"``), so an unknown name,
a duplicate and a wildcard listing behave as in every other dnnergy registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..registry import Registry
from . import formulas

__all__ = ["OpContext", "Unsupported", "Handler", "register_op", "list_ops", "get_handler", "FREE_OPS", "op_name"]

aten = torch.ops.aten


@dataclass
class OpContext:
    """What a handler may ask about the tensors of a call."""

    param_storages: dict[int, int]  #: :meth:`storage_key` -> element count of the parameter

    def is_param(self, t: Any) -> bool:
        """True if ``t`` is (a view of) a model parameter."""
        return isinstance(t, torch.Tensor) and self.storage_key(t) in self.param_storages

    def param_numel(self, t: Any) -> int:
        """Elements of the parameter that ``t`` views (0 if not a parameter).

        A slice counts its own elements (the query part of a packed ``in_proj_weight``);
        broadcast (stride-0) dimensions of an expanded parameter count once.
        """
        return _viewed_elements(t) if self.is_param(t) else 0

    def param_region(self, t: Any) -> tuple[int, int, int] | None:
        """``(storage, offset, elements)`` identifying the parameter memory ``t`` reads, or None."""
        if not isinstance(t, torch.Tensor):
            return None
        key = self.storage_key(t)  # once: the tracer asks this of every tensor argument of every op
        if key not in self.param_storages:
            return None
        return key, t.storage_offset(), _viewed_elements(t)

    @staticmethod
    def storage_key(t: torch.Tensor) -> int:
        """Identity of the storage ``t`` views, shared by its views; also for meta tensors (whose data_ptr is 0)."""
        try:
            return t.untyped_storage()._cdata
        except (RuntimeError, NotImplementedError):  # tensors without a storage (sparse, nested)
            return -1


def _viewed_elements(t: torch.Tensor) -> int:
    """Elements of memory ``t`` reads: its element count with broadcast (stride-0) dimensions counted once."""
    return math.prod(size for size, stride in zip(t.shape, t.stride()) if stride != 0)


class Unsupported(Exception):
    """Raised by a handler for a call it recognises but cannot model; ``macs`` if known."""

    def __init__(self, reason: str, macs: int | None = None):
        super().__init__(reason)
        self.macs = macs


Handler = Callable[[OpContext, tuple, dict, Any], "dict | list[tuple[str, dict]]"]

_REGISTRY: Registry[Handler] = Registry("ATen op")


def op_name(func: Any) -> str:
    """``aten.convolution.default`` -> ``"aten.convolution"`` (the overload packet's name)."""
    packet = getattr(func, "overloadpacket", func)
    return f"{getattr(packet, '_qualified_op_name', str(packet)).replace('::', '.')}"


def register_op(*targets: Any, override: bool = False) -> Callable[[Handler], Handler]:
    """Decorator registering one handler for one or more ATen ops (packets or overloads).

    Each op is registered under its packet name (``aten.relu``). Raises ``TypeError`` for
    a target that is not an op and ``RuntimeError`` when an op already has a handler,
    unless ``override=True``. Returns the function unchanged. Example::

        @register_op(torch.ops.aten.relu, torch.ops.aten.relu_, override=True)
        def relu(ctx, args, kwargs, out):
            return formulas.activation(list(args[0].shape))
    """
    names = []
    for target in targets:
        if not hasattr(target, "overloadpacket") and not hasattr(target, "_qualified_op_name"):
            raise TypeError(f"register_op: expected an ATen op such as torch.ops.aten.relu (got {target!r})")
        names.append(op_name(target))

    def decorate(handler: Handler) -> Handler:
        for name in names:
            _REGISTRY.add(name, handler, override=override)
        return handler

    return decorate


def list_ops(pattern: str = "*") -> list[str]:
    """Names of the ops with a handler matching the fnmatch ``pattern``, sorted.

    Example: ``list_ops("aten.max_pool*")`` lists ``"aten.max_pool2d"`` among the pooling ops.
    """
    return _REGISTRY.list(pattern)


def get_handler(name: str, table: Registry[Handler] | None = None) -> Handler | None:
    """The handler of op ``name`` in ``table`` (default: the global table), or None when it has none.

    ``table`` may be any :class:`Registry` of handlers (the ONNX front end passes its
    own). Example: ``get_handler("aten.relu")`` is the activation handler.
    """
    table = _REGISTRY if table is None else table
    return table.get(name) if name in table else None


def registry_copy() -> Registry[Handler]:
    """An independent copy of the global table, for per-call overrides that must not leak (``trace(ops=...)``)."""
    return _REGISTRY.copy()


def _shape(t: Any) -> list[int]:
    return list(t.shape) if isinstance(t, torch.Tensor) else []


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# -- multiply-accumulate ops -------------------------------------------------------------

@register_op(aten.convolution, aten._convolution)
def _convolution(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    x, w, bias = args[0], args[1], args[2]
    stride, padding, dilation, transposed = args[3], args[4], args[5], bool(args[6])
    groups = int(args[8])
    if x.dim() not in (3, 4):
        w_taps = math.prod(w.shape)
        spatial = math.prod((x if transposed else out).shape[2:])
        raise Unsupported(f"{x.dim() - 2}-D convolution", macs=x.shape[0] * w_taps * spatial)
    return formulas.conv(
        _shape(x), _shape(w), _shape(out), stride, padding, dilation, groups, transposed,
        biases=ctx.param_numel(bias) if bias is not None else 0,
        weight_is_param=ctx.is_param(w),
    )


@register_op(aten.mm, aten.bmm)
def _mm(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    a, b = args[0], args[1]
    return formulas.matmul(_shape(a), _shape(b), ctx.is_param(a), ctx.is_param(b))


@register_op(aten.addmm, aten.baddbmm)
def _addmm(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    bias, a, b = args[0], args[1], args[2]
    fields = formulas.matmul(_shape(a), _shape(b), ctx.is_param(a), ctx.is_param(b))
    if ctx.is_param(bias):
        fields["biases"] = ctx.param_numel(bias)
    else:  # an activation added to the product (attention mask): one add per output
        fields["ops"] = out.numel()
        fields["ifmap"] += bias.numel()
    return fields


@register_op(aten.mv, aten.addmv)
def _mv(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    offset = 1 if len(args) > 2 and isinstance(args[2], torch.Tensor) and args[1].dim() == 2 else 0
    a, v = args[offset], args[offset + 1]
    fields = formulas.matmul(_shape(a), [*_shape(v), 1], ctx.is_param(a), ctx.is_param(v))
    if offset and ctx.is_param(args[0]):
        fields["biases"] = ctx.param_numel(args[0])
    return fields


@register_op(aten.dot)
def _dot(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    a, b = args[0], args[1]
    return formulas.matmul([1, *_shape(a)], [*_shape(b), 1], ctx.is_param(a), ctx.is_param(b))


def einsum_mul(equation: str, a: Any, b: Any) -> Handler | None:
    """Handler for the ``aten.mul`` that ``torch.einsum(equation, a, b)`` runs, or None when that mul is element-wise.

    Torch lowers a two-operand einsum whose summed indices all have size 1 to a broadcast
    ``aten.mul`` instead of ``bmm``; the handler prices it as the einsum's contraction
    (:func:`formulas.einsum`) so the same work counts the same whichever op torch picks.
    An einsum that sums over no index (an outer product) stays element-wise: None.
    """
    ta, tb, out = formulas.einsum_indices(equation)
    if not (set(ta) & set(tb)) - set(out):
        return None

    def handler(ctx: OpContext, args: tuple, kwargs: dict, result: Any) -> dict:
        return formulas.einsum(equation, _shape(a), _shape(b), ctx.is_param(a), ctx.is_param(b))

    return handler


@register_op(
    aten._scaled_dot_product_flash_attention_for_cpu,
    aten._scaled_dot_product_efficient_attention,
    aten._scaled_dot_product_flash_attention,
    aten._scaled_dot_product_attention_math,
    aten.scaled_dot_product_attention,
)
def _sdpa(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> list[tuple[str, dict]]:
    return formulas.attention(_shape(args[0]), _shape(args[1]), _shape(args[2]))


@register_op(aten.mkldnn_rnn_layer)
def _mkldnn_rnn_layer(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> list[tuple[str, dict]]:
    """One layer and direction of ``nn.LSTM`` on the oneDNN path (``formulas.lstm``)."""
    x, w_ih, w_hh, b_ih, b_hh = args[:5]
    mode = _arg(args, kwargs, 9, "mode")
    if mode != 2:  # oneDNN's RNN modes: 0 RNN_RELU, 1 RNN_TANH, 2 LSTM, 3 GRU
        raise Unsupported(f"oneDNN RNN mode {mode} (only LSTM, mode 2, has a model)")
    if w_ih.shape[0] != 4 * w_hh.shape[1]:
        raise Unsupported(f"LSTM weights {list(w_ih.shape)}, {list(w_hh.shape)} (a projected LSTM)")
    has_biases = bool(_arg(args, kwargs, 12, "has_biases", True))
    return formulas.lstm(
        x.numel() // x.shape[-1], x.shape[-1], w_hh.shape[1],
        biases_ih=ctx.param_numel(b_ih) if has_biases else 0,
        biases_hh=ctx.param_numel(b_hh) if has_biases else 0,
        weight_is_param=ctx.is_param(w_ih),
    )


# -- other compute ops ----------------------------------------------------------------------

@register_op(
    aten.max_pool2d_with_indices, aten.max_pool1d_with_indices, aten.max_pool2d, aten.max_pool1d, aten.avg_pool2d,
    aten.avg_pool1d, aten.avg_pool3d, aten.max_pool3d_with_indices,
)
def _pool(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    x = args[0]
    window = _arg(args, kwargs, 1, "kernel_size")
    stride = _arg(args, kwargs, 2, "stride") or window
    padding = _arg(args, kwargs, 3, "padding", 0)
    dilation = args[4] if len(args) > 4 and not isinstance(args[4], bool) else 1  # max pools only; avg has ceil_mode here
    y = out[0] if isinstance(out, (tuple, list)) else out
    return formulas.pool(_shape(x), _shape(y), window, stride, padding, dilation)


@register_op(aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d, aten.adaptive_avg_pool1d, aten.adaptive_max_pool1d, aten._adaptive_avg_pool3d,
             aten.adaptive_max_pool3d)
def _adaptive_pool(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    y = out[0] if isinstance(out, (tuple, list)) else out
    return formulas.adaptive_pool(_shape(args[0]), _shape(y))


@register_op(aten.mean, aten.sum, aten.amax, aten.max.dim)
def _reduce(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    y = out[0] if isinstance(out, (tuple, list)) else out
    return formulas.reduce_mean(_shape(args[0]), _shape(y))


def _tensor_args(args: tuple) -> list[torch.Tensor]:
    return [a for a in args if isinstance(a, torch.Tensor)]


@register_op(
    aten.add, aten.add_, aten.sub, aten.sub_, aten.mul, aten.mul_, aten.div, aten.div_,
    aten.rsub, aten.maximum, aten.minimum, aten.where, aten.masked_fill, aten.masked_fill_,
    aten.gt, aten.lt, aten.ge, aten.le, aten.eq, aten.ne, aten.logical_and, aten.logical_or,
)
def _eltwise(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    tensors = _tensor_args(args)
    weights = sum(ctx.param_numel(t) for t in tensors if ctx.is_param(t))
    inputs = [_shape(t) for t in tensors if not ctx.is_param(t)]
    return formulas.eltwise(inputs, _shape(out), weights=weights)


@register_op(aten.upsample_nearest2d, aten.upsample_bilinear2d, aten.upsample_nearest1d, aten.upsample_linear1d, aten.upsample_bicubic2d)
def _resample(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    """Up-sampling: one op per output element (an interpolation or a copy)."""
    return formulas.eltwise([_shape(args[0])], _shape(out))


@register_op(aten.native_batch_norm, aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit, aten.batch_norm)
def _batch_norm(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    x, weight, bias = args[0], args[1], args[2]
    return formulas.norm(_shape(x), ctx.param_numel(weight), ctx.param_numel(bias))


@register_op(aten.native_layer_norm)
def _layer_norm(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    x, weight, bias = args[0], args[2], args[3]
    return formulas.norm(_shape(x), ctx.param_numel(weight), ctx.param_numel(bias))


@register_op(aten.native_group_norm)
def _group_norm(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    x, weight, bias = args[0], args[1], args[2]
    return formulas.norm(_shape(x), ctx.param_numel(weight), ctx.param_numel(bias))


@register_op(
    aten.relu, aten.relu_, aten.gelu, aten.gelu_, aten.sigmoid, aten.sigmoid_, aten.tanh, aten.tanh_,
    aten.hardtanh, aten.hardtanh_, aten.silu, aten.silu_, aten.hardswish, aten.hardswish_,
    aten.hardsigmoid, aten.hardsigmoid_, aten.leaky_relu, aten.leaky_relu_, aten.elu, aten.elu_,
    aten._softmax, aten._safe_softmax, aten._log_softmax, aten.clamp, aten.clamp_, aten.clamp_min, aten.clamp_min_,
    aten.clamp_max, aten.threshold, aten.softplus, aten.mish, aten.exp, aten.log, aten.sqrt,
    aten.rsqrt, aten.neg, aten.abs, aten.pow, aten.erf, aten._prelu_kernel,
)
def _activation(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    weights = sum(ctx.param_numel(t) for t in _tensor_args(args[1:]) if ctx.is_param(t))
    return formulas.activation(_shape(args[0]), weights=weights)


@register_op(aten.cat, aten.stack)
def _concat(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    tensors = list(args[0])
    weights = sum(ctx.param_numel(t) for t in tensors if ctx.is_param(t))
    inputs = [_shape(t) for t in tensors if not ctx.is_param(t)]
    return formulas.concat(inputs, _shape(out), weights=weights)


@register_op(aten.embedding)
def _embedding(ctx: OpContext, args: tuple, kwargs: dict, out: Any) -> dict:
    table, indices = args[0], args[1]
    return formulas.embedding(_shape(table), _shape(indices), ctx.is_param(table))


#: Ops known to cost nothing: views and reshapes, copies the hardware does not need,
#: tensor creation, and metadata queries. They are counted in ``Workload.ignored``.
FREE_OPS = frozenset(
    f"aten.{n}"
    for n in """view _unsafe_view reshape _reshape_alias t transpose transpose_ permute expand expand_as
    unsqueeze unsqueeze_ squeeze squeeze_ select slice split split_with_sizes unsafe_split
    unsafe_split_with_sizes unsafe_chunk chunk unbind clone
    contiguous detach alias _to_copy copy_ lift_fresh lift_fresh_copy empty empty_like new_empty
    new_empty_strided empty_strided zeros zeros_like new_zeros ones ones_like new_ones full full_like
    fill_ zero_ arange randn rand randn_like rand_like normal_ uniform_ bernoulli_ as_strided
    _local_scalar_dense scalar_tensor flatten unflatten channel_shuffle native_channel_shuffle
    pixel_shuffle dropout native_dropout feature_dropout alpha_dropout sym_size sym_stride sym_numel
    _assert_async _assert_tensor_metadata lift index_select narrow roll flip movedim unfold
    repeat _unsafe_index detach_ resolve_conj resolve_neg constant_pad_nd reflection_pad1d reflection_pad2d
    reflection_pad3d replication_pad1d replication_pad2d replication_pad3d tril triu""".split()
)

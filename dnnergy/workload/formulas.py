"""Per-op shape formulas: pure functions of shapes and attributes, no tensors inside.

Each returns a dict of :class:`~dnnergy.workload.layer.Layer` fields (``kind`` and the
counts included; ``name``/``op``/``module`` are added by the caller). The PyTorch tracer
and the ONNX importer both call these, so the two front ends agree by construction.

MAC conventions follow fvcore (``fvcore/nn/jit_handles.py``): one multiply-accumulate
per filter tap per output, bias not counted, padding taps counted.
"""

from __future__ import annotations

from math import ceil, floor, prod
from typing import Sequence

from .layer import OpKind

__all__ = [
    "nchw",
    "conv",
    "fc",
    "matmul",
    "einsum_indices",
    "einsum",
    "pool",
    "adaptive_pool",
    "reduce_mean",
    "eltwise",
    "norm",
    "local_response_norm",
    "activation",
    "concat",
    "embedding",
    "lstm",
    "gru",
    "attention",
]

Shape = Sequence[int]


def nchw(shape: Shape) -> tuple[int, int, int, int]:
    """Map a tensor shape onto the nominal (N, C, H, W) letters.

    4-D is taken as is; 3-D ``[N, C, L]`` becomes H=1, W=L; 2-D ``[N, C]`` has H=W=1;
    higher ranks fold the middle dimensions into H. Zero-size dimensions count as 1 for
    the letters (the element counts stay exact).
    """
    s = [max(int(d), 1) for d in shape]
    if len(s) == 0:
        return 1, 1, 1, 1
    if len(s) == 1:
        return 1, s[0], 1, 1
    if len(s) == 2:
        return s[0], s[1], 1, 1
    if len(s) == 3:
        return s[0], s[1], 1, s[2]
    return s[0], s[1], prod(s[2:-1]), s[-1]


def conv(
    x: Shape,
    w: Shape,
    out: Shape,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    transposed: bool = False,
    biases: int = 0,
    weight_is_param: bool = True,
) -> dict:
    """A 1-D or 2-D (optionally transposed) convolution.

    ``x`` is ``[N, C, (H,) W]``, ``w`` is ``[M, C/g, (R,) S]`` (transposed:
    ``[C, M/g, (R,) S]``), ``out`` is ``[N, M, (E,) F]``.
    MACs = ``N*M*(C/g)*R*S*E*F`` (transposed: ``N*C*(M/g)*R*S*H*W``), e.g. a 3x3 conv
    from 2 to 4 channels on a 5x5 map with padding 1: 1*4*2*9*5*5 = 1800.
    """
    rank = len(x) - 2
    if rank not in (1, 2):
        raise ValueError(f"conv: only 1-D and 2-D convolutions have a dataflow model (got input rank {len(x)})")
    N, C = int(x[0]), int(x[1])
    M = int(out[1])
    H, W = (1, int(x[2])) if rank == 1 else (int(x[2]), int(x[3]))
    E, F = (1, int(out[2])) if rank == 1 else (int(out[2]), int(out[3]))
    R, S = (1, int(w[2])) if rank == 1 else (int(w[2]), int(w[3]))
    weights = prod(int(d) for d in w)
    spatial = H * W if transposed else E * F
    macs = N * weights * spatial
    return dict(
        kind=OpKind.CONV,
        N=N, C=C, H=H, W=W, M=M, R=R, S=S, E=E, F=F,
        stride=_spatial(stride, rank, 1),
        padding=_spatial(padding, rank, 0),
        dilation=_spatial(dilation, rank, 1),
        groups=int(groups),
        transposed=bool(transposed),
        macs=macs,
        weights=weights,
        weight_is_param=weight_is_param,
        biases=biases,
        ifmap=prod(int(d) for d in x),
        ofmap=prod(int(d) for d in out),
    )


def _spatial(value: int | Sequence[int], rank: int, filler: int) -> tuple[int, int]:
    """(vertical, horizontal) from an int or per-dim list; 1-D ops get ``filler`` vertically."""
    values = [int(value)] * rank if isinstance(value, int) else [int(v) for v in value]
    if len(values) == 1 and rank == 2:
        values = values * 2
    return (filler, values[0]) if rank == 1 else (values[0], values[1])


def fc(n: int, c: int, m: int, biases: int = 0, weight_is_param: bool = True) -> dict:
    """A fully connected layer: ``n`` input vectors of length ``c`` times a ``c x m`` matrix.

    MACs = ``n*c*m`` (fvcore's ``addmm``/``linear``), e.g. LeNet-300-100's first layer at
    batch 1: 1*784*300 = 235,200.
    """
    return dict(
        kind=OpKind.FC,
        N=n, C=c, M=m,
        macs=n * c * m,
        weights=c * m,
        weight_is_param=weight_is_param,
        biases=biases,
        ifmap=n * c,
        ofmap=n * m,
    )


def matmul(a: Shape, b: Shape, a_is_param: bool = False, b_is_param: bool = False) -> dict:
    """``a[..., n, k] @ b[..., k, m]`` (mm, bmm, broadcast matmul, matmul-like einsum).

    A parameter operand makes it an FC layer. Two activations make a MATMUL layer
    modelled as a grouped FC: one group per batch matrix, ``groups = prod(batch dims)``,
    ``N = n``, ``C = groups*k``, ``M = groups*m``; the second operand plays the weight
    role. MACs = ``groups*n*k*m`` (fvcore's ``matmul``/``bmm``).
    """
    if len(a) < 1 or len(b) < 1:
        raise ValueError(f"matmul: operands must have rank >= 1 (got {list(a)} and {list(b)})")
    a2 = [1, *a] if len(a) == 1 else list(a)
    b2 = [*b, 1] if len(b) == 1 else list(b)
    n, k = int(a2[-2]), int(a2[-1])
    m = int(b2[-1])
    if int(b2[-2]) != k:
        raise ValueError(f"matmul: inner dimensions differ ({list(a)} @ {list(b)})")
    batch_a, batch_b = [int(d) for d in a2[:-2]], [int(d) for d in b2[:-2]]
    batch = _broadcast(batch_a, batch_b)
    g = prod(batch) if batch else 1
    if b_is_param and not batch_b:
        return fc(g * n, k, m)
    if a_is_param and not batch_a:
        # W[n,k] @ X[..., k, m]: each of the g*m columns of X is an input vector.
        return fc(g * m, k, n)
    return dict(
        kind=OpKind.FC if (a_is_param or b_is_param) else OpKind.MATMUL,
        N=n, C=g * k, M=g * m, groups=g,
        macs=g * n * k * m,
        weights=prod(batch_b or [1]) * k * m,
        weight_is_param=b_is_param or a_is_param,
        ifmap=prod(batch_a or [1]) * n * k,
        ofmap=g * n * m,
    )


def einsum_indices(equation: str) -> tuple[str, str, str]:
    """``"blm,bmd->bld"`` -> ``("blm", "bmd", "bld")`` for a two-operand einsum (implicit output allowed).

    Raises ``ValueError`` for another operand count or an ellipsis.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or "." in eq:
        raise ValueError(f"einsum: only two operands without '...' have a matmul model (got {equation!r})")
    if not arrow:
        out = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    return terms[0], terms[1], out


def einsum(equation: str, a: Shape, b: Shape, a_is_param: bool = False, b_is_param: bool = False) -> dict:
    """A two-operand einsum that sums over at least one index, as the :func:`matmul` it is.

    Indices in both operands and the output are batch dimensions, those in both operands
    only are contracted (``k``), the others in the output are ``n`` (first operand) and
    ``m`` (second). MACs = ``batch*n*k*m`` whatever the sizes, e.g. ``"bchw,dc->bdhw"`` with
    ``x: [1, 1, 6, 19]``, ``w: [8, 1]``: FC with n = 1*6*19, k = 1, m = 8, 912 MACs (as ``Conv2d(1, 8, 1)``).
    Indices summed inside one operand only are left out (torch reduces them first).
    """
    ta, tb, out = einsum_indices(equation)
    size: dict[str, int] = {}
    for term, shape in ((ta, a), (tb, b)):
        if len(term) != len(shape):
            raise ValueError(f"einsum: {term!r} does not match an operand of shape {list(shape)}")
        for c, d in zip(term, shape):
            size[c] = max(size.get(c, 1), int(d))
    batch = [size[c] for c in out if c in ta and c in tb]
    n = prod(size[c] for c in out if c in ta and c not in tb)
    m = prod(size[c] for c in out if c in tb and c not in ta)
    k = prod(size[c] for c in set(ta) & set(tb) if c not in out)
    return matmul([*batch, n, k], [*batch, k, m], a_is_param, b_is_param)


def _broadcast(a: list[int], b: list[int]) -> list[int]:
    """Broadcast two batch shapes (numpy rules)."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ValueError(f"matmul: batch dimensions {a} and {b} do not broadcast")
        out.append(max(da, db))
    return out[::-1]


def pool(x: Shape, out: Shape, window: Sequence[int], stride: Sequence[int], padding: Sequence[int], dilation: int | Sequence[int] = 1) -> dict:
    """Max or average pooling with a fixed window (1-D, 2-D or 3-D): one op per window tap per output.

    E.g. 2x2 max pooling of a 20x24x24 map: 20*12*12 outputs x 4 taps = 11,520 ops.
    """
    rank = len(x) - 2
    N, C, H, W = nchw(x)
    _, M, E, F = nchw(out)
    taps = [int(window)] * rank if isinstance(window, int) else [int(v) for v in window]
    if len(taps) == 1:
        taps = taps * rank
    R, S = (1, taps[0]) if rank == 1 else (taps[0], taps[1])
    return dict(
        kind=OpKind.POOL,
        N=N, C=C, H=H, W=W, M=M, R=R, S=S, E=E, F=F, groups=C,
        stride=_spatial(stride or window, rank, 1) if rank <= 2 else (1, 1),
        padding=_spatial(padding, rank, 0) if rank <= 2 else (0, 0),
        dilation=_spatial(dilation, rank, 1) if rank <= 2 else (1, 1),
        ops=prod(int(d) for d in out) * prod(taps),
        ifmap=prod(int(d) for d in x),
        ofmap=prod(int(d) for d in out),
    )


def _adaptive_taps(size: int, out: int) -> tuple[int, int]:
    """(total taps, largest window) of PyTorch's adaptive pooling along one dimension."""
    total, largest = 0, 0
    for i in range(out):
        start, end = floor(i * size / out), ceil((i + 1) * size / out)
        total += end - start
        largest = max(largest, end - start)
    return total, largest


def adaptive_pool(x: Shape, out: Shape) -> dict:
    """Adaptive max/avg pooling (1-D, 2-D or 3-D): window sizes follow PyTorch's floor/ceil split along
    each spatial dimension, counted exactly (a 3-D pool's depth is folded into R like H, not split as one dimension).

    E.g. ``[1, 1, 2, 3, 1] -> [1, 1, 1, 2, 1]``: depth windows [0, 2), height [0, 2) and [1, 3): 2 * 4 = 8 ops.
    """
    N, C, H, W = nchw(x)
    _, _, E, F = nchw(out)
    taps = [_adaptive_taps(max(int(n), 1), max(int(o), 1)) for n, o in zip(x[2:], out[2:])] or [(1, 1)]
    R = prod(largest for _, largest in taps[:-1])
    S = taps[-1][1]
    return dict(
        kind=OpKind.POOL,
        N=N, C=C, H=H, W=W, M=C, R=R, S=S, E=E, F=F, groups=C,
        ops=N * C * prod(total for total, _ in taps),
        ifmap=prod(int(d) for d in x),
        ofmap=prod(int(d) for d in out),
    )


def reduce_mean(x: Shape, out: Shape) -> dict:
    """A mean over some dimensions (global average pooling): one add per input element."""
    N, C, H, W = nchw(x)
    numel_in, numel_out = prod(int(d) for d in x), prod(int(d) for d in out)
    return dict(
        kind=OpKind.POOL,
        N=N, C=C, H=H, W=W, M=C, R=H, S=W, groups=C,
        ops=numel_in,
        ifmap=numel_in,
        ofmap=numel_out,
    )


def _same_shape(kind: OpKind, shape: Shape, ifmap: int, ops: int, weights: int = 0, biases: int = 0) -> dict:
    N, C, H, W = nchw(shape)
    return dict(kind=kind, N=N, C=C, H=H, W=W, M=C, E=H, F=W, ops=ops, ifmap=ifmap, ofmap=prod(int(d) for d in shape), weights=weights, biases=biases)


def eltwise(inputs: Sequence[Shape], out: Shape, weights: int = 0) -> dict:
    """Element-wise arithmetic between tensors (residual add, gating mul): one op per output element.

    ``weights`` counts parameter operands (e.g. a learned position embedding that is added).
    """
    numel = prod(int(d) for d in out)
    return _same_shape(OpKind.ELTWISE, out, sum(prod(int(d) for d in s) for s in inputs), numel, weights=weights)


def norm(x: Shape, weights: int = 0, biases: int = 0) -> dict:
    """BatchNorm/LayerNorm/GroupNorm at inference: one scale-and-shift per element."""
    numel = prod(int(d) for d in x)
    return _same_shape(OpKind.NORM, x, numel, numel, weights=weights, biases=biases)


def local_response_norm(x: Shape, size: int) -> dict:
    """Local response normalisation across ``size`` neighbouring channels (``nn.LocalResponseNorm``), as one layer.

    Per output element ``size + 5`` ops: the square of the input, ``size`` adds for the sum
    over the channel window (padding taps counted, as in pooling), the scale by alpha/size,
    the add of k, the power beta and the divide. E.g. AlexNet's first LRN (size 5) on a
    96x55x55 map: 290,400 elements x 10 = 2,904,000 ops.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int (got {size!r})")
    numel = prod(int(d) for d in x)
    return _same_shape(OpKind.NORM, x, numel, numel * (size + 5))


def activation(x: Shape, weights: int = 0) -> dict:
    """A non-linearity or softmax: one op per element."""
    numel = prod(int(d) for d in x)
    return _same_shape(OpKind.ACTIVATION, x, numel, numel, weights=weights)


def concat(inputs: Sequence[Shape], out: Shape, weights: int = 0) -> dict:
    """Concatenation: moves data, no arithmetic (``ops`` = 0)."""
    return _same_shape(OpKind.CONCAT, out, sum(prod(int(d) for d in s) for s in inputs), 0, weights=weights)


def embedding(table: Shape, indices: Shape, weight_is_param: bool = True) -> dict:
    """A table look-up: reads ``numel(indices)`` rows of the ``[V, D]`` table; no arithmetic."""
    V, D = int(table[0]), int(table[1])
    n = prod(int(d) for d in indices)
    return dict(kind=OpKind.EMBEDDING, N=max(n, 1), C=V, M=D, weights=V * D, weight_is_param=weight_is_param, ifmap=n, ofmap=n * D)


def _recurrent(steps: int, inputs: int, hidden: int, gates: int, gate_ops: int, cell_ops: int, biases_ih: int,
               biases_hh: int, weight_is_param: bool) -> list[tuple[str, dict]]:
    """A gated recurrent layer in one direction: input and recurrent projections to ``gates*hidden``, then
    ``gate_ops`` activation and ``cell_ops`` element-wise ops per hidden unit and step (see :func:`lstm`)."""
    rows, width = int(steps), gates * int(hidden)
    state = [rows, int(hidden)]
    return [
        ("ih", fc(rows, int(inputs), width, biases=biases_ih, weight_is_param=weight_is_param)),
        ("hh", fc(rows, int(hidden), width, biases=biases_hh, weight_is_param=weight_is_param)),
        ("gates", _same_shape(OpKind.ACTIVATION, state, rows * width, gate_ops * rows * int(hidden))),
        ("cell", _same_shape(OpKind.ELTWISE, state, 2 * rows * width, cell_ops * rows * int(hidden))),
    ]


def lstm(steps: int, inputs: int, hidden: int, biases_ih: int = 0, biases_hh: int = 0, weight_is_param: bool = True) -> list[tuple[str, dict]]:
    """One LSTM layer in one direction over ``steps`` (time steps x batch) input vectors, as GRU's decomposition counts it.

    ``ih``: the input projection, FC ``steps x inputs -> 4*hidden``; ``hh``: the recurrent
    projection, FC ``steps x hidden -> 4*hidden`` (one per step, summed); MACs =
    ``steps*4*hidden*(inputs+hidden)``. ``gates``: 3 sigmoids and 2 tanh per hidden unit
    (5 ops); ``cell``: the ih+hh gate sum (4), ``c = f*c + i*g`` (3) and ``h = o*tanh(c)`` (1),
    8 ops per hidden unit. E.g. ``LSTM(4, 6)`` on 3 steps of batch 2: 6*24*(4+6) = 1440 MACs.
    """
    return _recurrent(steps, inputs, hidden, 4, 5, 8, biases_ih, biases_hh, weight_is_param)


def gru(steps: int, inputs: int, hidden: int, biases_ih: int = 0, biases_hh: int = 0, weight_is_param: bool = True) -> list[tuple[str, dict]]:
    """One GRU layer in one direction, as the totals of the tracer's per-step records of ``nn.GRU``.

    ``ih``/``hh``: FC ``steps x inputs -> 3*hidden`` and ``steps x hidden -> 3*hidden``
    (MACs = ``steps*3*hidden*(inputs+hidden)``); ``gates``: 2 sigmoids and a tanh per hidden
    unit (3 ops); ``cell``: the 7 element-wise ops per hidden unit torch runs (3 gate sums,
    ``r*n``, ``h - n``, ``z*(h - n)``, ``+ n``). E.g. ``GRU(4, 6)`` on 3 steps of batch 2:
    6*18*10 = 1080 MACs.
    """
    return _recurrent(steps, inputs, hidden, 3, 3, 7, biases_ih, biases_hh, weight_is_param)


def rnn(steps: int, inputs: int, hidden: int, biases_ih: int = 0, biases_hh: int = 0, weight_is_param: bool = True) -> list[tuple[str, dict]]:
    """One Elman RNN layer (``nn.RNN``, ONNX ``RNN``) in one direction, as the totals of the tracer's per-step records.

    ``ih``/``hh``: FC ``steps x inputs -> hidden`` and ``steps x hidden -> hidden`` (MACs =
    ``steps*hidden*(inputs+hidden)``); ``gates``: one tanh or ReLU per hidden unit; ``cell``:
    the ih+hh sum, one op per hidden unit. E.g. ``RNN(3, 4)`` on 2 steps of batch 1: 2*4*7 = 56 MACs.
    """
    return _recurrent(steps, inputs, hidden, 1, 1, 1, biases_ih, biases_hh, weight_is_param)


def attention(q: Shape, k: Shape, v: Shape) -> list[tuple[str, dict]]:
    """Scaled dot-product attention as its three steps: ``q @ k^T``, softmax, ``p @ v``.

    ``q: [..., L, E]``, ``k: [..., S, E]``, ``v: [..., S, Ev]``; MACs = ``B*L*S*E + B*L*S*Ev``
    with ``B`` the product of q's batch dimensions. Grouped-query attention (k and v with
    ``Hkv`` heads at dimension -3, q with a multiple ``Hq`` of them) is counted as each query
    head attending to its group's key/value head; ``weights`` of ``qk``/``av`` are then the
    ``Hkv`` heads actually read. Raises ``ValueError`` when the batch dimensions match neither way.
    """
    *batch, L, E = (int(d) for d in q)
    S, Ev = int(k[-2]), int(v[-1])
    scores = [*batch, L, S]
    kv_batch = [int(d) for d in k[:-2]]
    gqa = len(batch) >= 1 and kv_batch != batch and len(kv_batch) == len(batch) and kv_batch[:-1] == batch[:-1] \
        and kv_batch[-1] > 0 and batch[-1] % kv_batch[-1] == 0
    qk = matmul(q, [*batch, E, S])
    av = matmul(scores, [*batch, S, Ev] if gqa else v)
    if gqa:
        qk["weights"], av["weights"] = prod(int(d) for d in k), prod(int(d) for d in v)
    return [("qk", qk), ("softmax", activation(scores)), ("av", av)]

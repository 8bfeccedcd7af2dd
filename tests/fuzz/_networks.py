"""Hypothesis strategies that build tiny torch networks, their example inputs and their MACs in closed form.

A drawn :class:`Net` holds the model (eval mode, seeded weights), its example inputs
and, per top-level block (a module path), the multiply-accumulates that block does,
computed here from the layer hyper-parameters alone (never from dnnergy):

* convolution: ``N * M * (C / groups) * prod(kernel) * prod(output size)``, the output
  size from PyTorch's documented formula ``floor((n + 2p - d (k - 1) - 1) / s) + 1``
  (``n`` for ``padding="same"``); transposed: ``N * C * (M / groups) * prod(kernel) * prod(input size)``;
* linear: rows x in x out; attention: ``B * Hq * L * S * (E + Ev)`` plus projections;
* einsum: the product of every index size when an index is summed over, else 0;
* recurrent layers: ``T * N * gates * H * (I_l + H)`` per layer and direction.

Blocks dnnergy has no dataflow model for (3-D convolutions) carry their MACs in
``unsupported`` instead: dnnergy must list them with that MAC count, not drop them.
``Net.onnx`` is False where the TorchScript exporter has no symbolic for an op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

__all__ = ["Net", "networks", "FAMILIES"]


@dataclass
class Net:
    """A generated network: ``model(*inputs)`` runs; ``macs[path]`` is the closed form of block ``path``."""

    model: nn.Module
    inputs: tuple[torch.Tensor, ...]
    family: str
    description: str
    macs: dict[str, int] = field(default_factory=dict)
    unsupported: dict[str, int] = field(default_factory=dict)  #: block path -> MACs dnnergy must list as uncounted
    pool_ops: dict[str, int] = field(default_factory=dict)  #: block path -> comparisons/adds of its pooling layer
    onnx: bool = True

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        shapes = ", ".join(str(tuple(t.shape)) for t in self.inputs)
        return f"Net({self.family}: {self.description}; inputs {shapes})"


# -- building blocks ------------------------------------------------------------------------------

class Chain(nn.Module):
    """Blocks run one after the other (``blocks.0``, ``blocks.1``, ...), as a Sequential does."""

    def __init__(self, blocks: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class Residual(nn.Module):
    """``x + body(x)`` (shapes equal)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


class Concat(nn.Module):
    """``cat([x, body(x)], dim)`` (shapes equal except along ``dim``)."""

    def __init__(self, body: nn.Module, dim: int):
        super().__init__()
        self.body, self.dim = body, dim

    def forward(self, x):
        return torch.cat([x, self.body(x)], self.dim)


class Sdpa(nn.Module):
    """``F.scaled_dot_product_attention``, grouped-query when k/v have fewer heads than q."""

    def __init__(self, gqa: bool, causal: bool):
        super().__init__()
        self.gqa, self.causal = gqa, causal

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, enable_gqa=self.gqa)


class Mha(nn.Module):
    """``nn.MultiheadAttention`` on (query, key, value), or on one tensor for self-attention."""

    def __init__(self, attn: nn.MultiheadAttention, need_weights: bool):
        super().__init__()
        self.attn, self.need_weights = attn, need_weights

    def forward(self, q, k=None, v=None):
        k = q if k is None else k
        v = q if v is None else v
        return self.attn(q, k, v, need_weights=self.need_weights)[0]


class Einsum(nn.Module):
    """``torch.einsum(equation, x, w)`` with ``w`` a parameter, or with a second input."""

    def __init__(self, equation: str, weight: torch.Tensor | None):
        super().__init__()
        self.equation = equation
        self.w = None if weight is None else nn.Parameter(weight)

    def forward(self, x, y=None):
        return torch.einsum(self.equation, x, self.w if y is None else y)


class Recurrent(nn.Module):
    """An RNN module returning its output sequence (not the hidden state)."""

    def __init__(self, rnn: nn.Module):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


# -- closed forms ---------------------------------------------------------------------------------

def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """Output length of a convolution (PyTorch's documented formula)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out(n: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """Output length of a transposed convolution (PyTorch's documented formula)."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> tuple[int, bool]:
    """Output length of max/avg pooling, and whether ONNX agrees with it.

    With ``ceil_mode`` PyTorch drops a last window that would start in the right padding;
    ONNX's pooling shape rule does not, so such a file (as the TorchScript exporter writes
    it) has a different shape in ONNX than in PyTorch.
    """
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        return out - 1, False
    return out, True


# -- draws ----------------------------------------------------------------------------------------

_ACTS = (nn.ReLU, nn.GELU, nn.Tanh, nn.SiLU, nn.Sigmoid, nn.LeakyReLU, nn.Identity)
_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAXP = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVGP = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_AMAX = {1: nn.AdaptiveMaxPool1d, 2: nn.AdaptiveMaxPool2d, 3: nn.AdaptiveMaxPool3d}
_AAVG = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def _divisor(draw, n: int) -> int:
    return draw(st.sampled_from([g for g in range(1, n + 1) if n % g == 0]))


def _conv_layer(draw, rank: int, c_in: int, size: list[int], n: int) -> tuple[nn.Module, int, list[int], int, str]:
    """A (transposed) convolution on ``[n, c_in, *size]``: (module, M, output size, MACs, text)."""
    transposed = draw(st.booleans())
    g = _divisor(draw, c_in)
    m = g * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    stride = [draw(st.integers(1, 2)) for _ in range(rank)]
    bias = draw(st.booleans())
    if transposed:
        padding = [draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation)]
        out_pad = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)]
        out = [conv_transpose_out(*a) for a in zip(size, kernel, stride, padding, dilation, out_pad)]
        module = _CONVT[rank](c_in, m, kernel, stride, padding, out_pad, g, bias, dilation)
        macs = n * c_in * (m // g) * math.prod(kernel) * math.prod(size)
        text = f"ConvTranspose{rank}d({c_in},{m},k={kernel},s={stride},p={padding},op={out_pad},d={dilation},g={g})"
    else:
        mode = draw(st.sampled_from(["int", "same", "valid"] if all(s == 1 for s in stride) else ["int"]))
        if mode == "same":
            padding, pads = "same", None
            out = list(size)
        else:
            pads = [0] * rank if mode == "valid" else [draw(st.integers(0, 2)) for _ in range(rank)]
            # make the input large enough for the dilated kernel: pad where the map is too small
            pads = [max(p, -(-(d * (k - 1) + 1 - n_) // 2)) for p, n_, k, d in zip(pads, size, kernel, dilation)]
            padding = "valid" if mode == "valid" and not any(pads) else pads
            out = [conv_out(*a) for a in zip(size, kernel, stride, pads, dilation)]
        module = _CONV[rank](c_in, m, kernel, stride, padding, dilation, g, bias)
        macs = n * m * (c_in // g) * math.prod(kernel) * math.prod(out)
        text = f"Conv{rank}d({c_in},{m},k={kernel},s={stride},p={padding},d={dilation},g={g})"
    return module, m, out, macs, text


def _norm(draw, rank: int, c: int, size: list[int], n: int) -> tuple[nn.Module, str]:
    kind = draw(st.sampled_from(["batch", "group", "layer", "none"]))
    if kind == "batch":
        return _BN[rank](c), "BN"
    groups = _divisor(draw, c)
    if kind == "group" and n * (c // groups) * math.prod(size) > 1:  # torch refuses a group of one value
        return nn.GroupNorm(groups, c), "GN"
    if kind == "layer":
        return nn.LayerNorm(size[-1]), "LN"
    return nn.Identity(), ""


def adaptive_taps(n: int, out: int) -> int:
    """Input elements read along one dimension by adaptive pooling: window i is [floor(i n / out), ceil((i + 1) n / out))."""
    return sum(-(-(i + 1) * n // out) - i * n // out for i in range(out))


def _pool(draw, rank: int, size: list[int], c: int) -> tuple[nn.Module, list[int], str, int, bool]:
    """A pooling layer on ``[1, c, *size]``: (module, output size, text, ops per sample: one per window tap
    per output, whether ONNX gives the same output size)."""
    kind = draw(st.sampled_from(["max", "avg", "adaptive_max", "adaptive_avg", "none"]))
    if kind.startswith("adaptive"):
        out = [draw(st.integers(1, max(n, 1) + 1)) for n in size]  # adaptive pools may also enlarge
        ops = c * math.prod(adaptive_taps(n, o) for n, o in zip(size, out))
        return (_AMAX if kind == "adaptive_max" else _AAVG)[rank](out), out, kind, ops, True
    if kind == "none":
        return nn.Identity(), list(size), "", 0, True
    k = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    s = draw(st.integers(1, 2))
    ceil_mode = draw(st.booleans())
    if min(size) + 2 * p < k or (rank == 3 and kind == "avg" and min(size) < k):  # avg_pool3d wants the map >= the window
        k, p = 1, 0
    d = draw(st.integers(1, 2)) if kind == "max" and min(size) + 2 * p >= 2 * (k - 1) + 1 else 1
    out, agree = zip(*(pool_out(n, k, s, p, d, ceil_mode) for n in size))
    ops = c * math.prod(out) * k ** rank
    if kind == "max":
        return _MAXP[rank](k, s, p, d, ceil_mode=ceil_mode), list(out), f"max{k}/{s}p{p}d{d}", ops, all(agree)
    return _AVGP[rank](k, s, p, ceil_mode, draw(st.booleans())), list(out), f"avg{k}/{s}p{p}", ops, all(agree)


@st.composite
def cnn(draw, rank: int | None = None) -> Net:
    """1 to 3 (transposed) convolutions with norms, activations, pools, residual and concat branches, then a Linear head."""
    rank = rank or draw(st.sampled_from([1, 2, 2, 3]))
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    size = [draw(st.sampled_from([1, 1, 2, 3, 5, 6])) for _ in range(rank)]
    x_shape = [n, c, *size]
    blocks, macs, unsupported, pools, texts, onnx = [], {}, {}, {}, [], True
    for i in range(draw(st.integers(1, 3))):
        path = f"blocks.{len(blocks)}"
        branch = draw(st.sampled_from(["plain", "plain", "residual", "concat"]))
        if branch == "plain":
            conv, m, out, count, text = _conv_layer(draw, rank, c, size, n)
            counted = rank < 3
            norm, nt = _norm(draw, rank, m, out, n)
            pool, out, pt, ops, agree = _pool(draw, rank, out, m)
            onnx = onnx and agree
            pools[path] = n * ops
            blocks.append(nn.Sequential(conv, norm, draw(st.sampled_from(_ACTS))(), pool))
            c, size = m, out
            texts.append(" ".join(t for t in (text, nt, pt) if t))
        else:
            # a shape-keeping conv: stride 1, padding 'same' (any kernel and dilation torch accepts)
            g = _divisor(draw, c)
            k = [draw(st.integers(1, 3)) for _ in range(rank)]
            d = [draw(st.integers(1, 2)) for _ in range(rank)]
            m = c if branch == "residual" else g * draw(st.integers(1, 3))
            conv = _CONV[rank](c, m, k, 1, "same", d, g, draw(st.booleans()))
            count = n * m * (c // g) * math.prod(k) * math.prod(size)
            counted = rank < 3
            body = nn.Sequential(conv, _BN[rank](m), nn.ReLU())
            blocks.append(Residual(body) if branch == "residual" else Concat(body, 1))
            texts.append(f"{branch}(Conv{rank}d({c},{m},k={k},same,d={d},g={g}))")
            c = c + m if branch == "concat" else c
        (macs if counted else unsupported)[path] = count
    path = f"blocks.{len(blocks)}"
    features, classes = c * math.prod(size), draw(st.integers(1, 4))
    blocks.append(nn.Sequential(nn.Flatten(), nn.Linear(features, classes, bias=draw(st.booleans()))))
    macs[path] = n * features * classes
    texts.append(f"Linear({features},{classes})")
    net = _net(Chain(blocks), (torch.randn(x_shape),), f"cnn{rank}d", " -> ".join(texts), macs, unsupported)
    net.pool_ops, net.onnx = pools, onnx
    return net


@st.composite
def mlp(draw) -> Net:
    """Linear layers on ``[N, (T,) C]`` with LayerNorm, activations, residual and concat branches."""
    n = draw(st.integers(1, 3))
    lead = [n] + ([draw(st.integers(1, 3))] if draw(st.booleans()) else [])
    rows = math.prod(lead)
    c = draw(st.integers(1, 6))
    x_shape = [*lead, c]
    blocks, macs, texts = [], {}, []
    for _ in range(draw(st.integers(1, 3))):
        path = f"blocks.{len(blocks)}"
        branch = draw(st.sampled_from(["plain", "plain", "residual", "concat"]))
        m = c if branch == "residual" else draw(st.integers(1, 6))
        linear = nn.Linear(c, m, bias=draw(st.booleans()))
        body = nn.Sequential(linear, nn.LayerNorm(m) if draw(st.booleans()) else nn.Identity(), draw(st.sampled_from(_ACTS))())
        blocks.append(body if branch == "plain" else Residual(body) if branch == "residual" else Concat(body, -1))
        macs[path] = rows * c * m
        texts.append(f"{branch}(Linear({c},{m}))")
        c = c + m if branch == "concat" else m
    return _net(Chain(blocks), (torch.randn(x_shape),), "mlp", " -> ".join(texts), macs)


@st.composite
def sdpa(draw) -> Net:
    """``F.scaled_dot_product_attention`` on q ``[B, Hq, L, E]``, k/v ``[B, Hkv, S, E|Ev]``, Hq a multiple of Hkv."""
    b, hkv, group = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    hq = hkv * group
    L, S, E, Ev = (draw(st.integers(1, 4)) for _ in range(4))
    causal = draw(st.booleans())
    q, k, v = torch.randn(b, hq, L, E), torch.randn(b, hkv, S, E), torch.randn(b, hkv, S, Ev)
    text = f"sdpa(Hq={hq}, Hkv={hkv}, L={L}, S={S}, E={E}, Ev={Ev}, causal={causal})"
    # enable_gqa has no TorchScript ONNX symbolic
    return _net(Sdpa(group > 1, causal), (q, k, v), "sdpa", text, {"": b * hq * L * S * (E + Ev)}, onnx=group == 1)


@st.composite
def mha(draw) -> Net:
    """``nn.MultiheadAttention``: self-attention, or cross-attention with other key/value widths."""
    heads = draw(st.integers(1, 3))
    e = heads * draw(st.integers(1, 3))
    n, L = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    cross = draw(st.booleans())
    S = draw(st.integers(1, 4)) if cross else L
    kdim, vdim = (draw(st.integers(1, 5)), draw(st.integers(1, 5))) if cross else (e, e)
    bias_kv, zero_attn = draw(st.booleans()), draw(st.booleans())
    batch_first = draw(st.booleans())
    attn = nn.MultiheadAttention(e, heads, bias=draw(st.booleans()), add_bias_kv=bias_kv, add_zero_attn=zero_attn,
                                 kdim=kdim, vdim=vdim, batch_first=batch_first)
    model = Mha(attn, draw(st.booleans()))
    shape = (lambda t, w: (n, t, w)) if batch_first else (lambda t, w: (t, n, w))
    inputs = (torch.randn(shape(L, e)),) + ((torch.randn(shape(S, kdim)), torch.randn(shape(S, vdim))) if cross else ())
    s_att = S + bias_kv + zero_attn
    # q, k, v and output projections, then q k^T and p v over all heads (E per head x heads = e)
    count = n * L * e * e + n * S * kdim * e + n * S * vdim * e + 2 * n * L * s_att * e + n * L * e * e
    text = f"MHA(e={e}, heads={heads}, L={L}, S={S}, kdim={kdim}, vdim={vdim}, bias_kv={bias_kv}, zero_attn={zero_attn})"
    return _net(model, inputs, "mha", text, {"attn": count})


#: (equation, second operand is a parameter); sizes are drawn per index, size 1 included
_EQUATIONS = (
    ("bij,bjk->bik", False), ("bld,de->ble", True), ("bchw,dc->bdhw", True), ("bhqd,bhkd->bhqk", False),
    ("ij,jk->ik", False), ("bi,bj->bij", False), ("bi,bi->b", False), ("bl,dl->bd", True), ("ik,jk->ij", False),
)


@st.composite
def einsum(draw) -> Net:
    """A two-operand ``torch.einsum``: a contraction (often with size-1 summed indices) or an outer product."""
    equation, param = draw(st.sampled_from(_EQUATIONS))
    lhs, out = equation.split("->")
    ta, tb = lhs.split(",")
    size = {ch: draw(st.sampled_from([1, 1, 2, 3])) for ch in sorted(set(ta + tb))}
    a = torch.randn([size[ch] for ch in ta])
    b = torch.randn([size[ch] for ch in tb])
    summed = (set(ta) & set(tb)) - set(out)
    count = math.prod(size.values()) if summed else 0
    model = Einsum(equation, b if param else None)
    text = f"einsum({equation!r}, {dict(sorted(size.items()))}, param={param})"
    return _net(model, (a,) if param else (a, b), "einsum", text, {"": count})


@st.composite
def rnn(draw) -> Net:
    """``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``: stacked, bidirectional, batch-first, with or without biases."""
    kind = draw(st.sampled_from(["RNN", "GRU", "LSTM"]))
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    T, n, I, H = (draw(st.integers(1, 3)) for _ in range(4))
    layers, bidirectional, batch_first = draw(st.integers(1, 2)), draw(st.booleans()), draw(st.booleans())
    extra = {"nonlinearity": draw(st.sampled_from(["tanh", "relu"]))} if kind == "RNN" else {}
    module = getattr(nn, kind)(I, H, num_layers=layers, bias=draw(st.booleans()), batch_first=batch_first,
                               bidirectional=bidirectional, **extra)
    dirs = 2 if bidirectional else 1
    count = sum(dirs * T * n * gates * H * ((I if l == 0 else dirs * H) + H) for l in range(layers))
    x = torch.randn((n, T, I) if batch_first else (T, n, I))
    text = f"{kind}({I},{H}, layers={layers}, bidirectional={bidirectional}, batch_first={batch_first}) T={T}"
    return _net(Recurrent(module), (x,), "rnn", text, {"rnn": count})


def _net(model: nn.Module, inputs: tuple, family: str, text: str, macs: dict, unsupported: dict | None = None,
         onnx: bool = True) -> Net:
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return Net(model, inputs, family, text, macs, unsupported=unsupported or {}, onnx=onnx)


#: every family by name (tests draw from each; the benchmark reports failures per family)
FAMILIES = {"cnn1d": cnn(1), "cnn2d": cnn(2), "cnn3d": cnn(3), "mlp": mlp(), "sdpa": sdpa(), "mha": mha(),
            "einsum": einsum(), "rnn": rnn()}


def networks() -> st.SearchStrategy[Net]:
    """Any generated network, every family equally likely."""
    return st.one_of(*FAMILIES.values())

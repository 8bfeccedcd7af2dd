"""``dnnergy.trace`` op by op: one tiny network per op kind, counts derived here by hand.

Every expected number is computed in the test from the dimensions, with the arithmetic
in a comment (as in torch's ``test_flop_counter.py``); output sizes come from the
formulas in PyTorch's documentation, and adaptive-pooling windows from a brute force on
one-hot inputs. Nothing is compared with the tracer's own output.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy import OpKind, TraceError, UnsupportedOpError, UserInputError
from dnnergy.workload import formulas
from dnnergy.workload.ops import get_handler, register_op


def trace_clean(model: nn.Module, example, **kw) -> dnnergy.Workload:
    """Trace and insist that nothing was reported unsupported (no warning either)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wl = dnnergy.trace(model, example, **kw)
    assert wl.unsupported == ()
    return wl


def one(wl: dnnergy.Workload, kind: OpKind):
    """The single layer of ``kind`` in ``wl``."""
    layers = wl.of_kind(kind)
    assert len(layers) == 1, [(l.name, l.kind.value) for l in wl]
    return layers[0]


def conv_out(size: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Output length of a convolution or pooling (PyTorch docs, Conv2d 'Shape')."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def letters(layer) -> tuple:
    return (layer.N, layer.C, layer.H, layer.W, layer.M, layer.R, layer.S, layer.E, layer.F)


# -- convolution -------------------------------------------------------------------------------

def test_conv1d_strided_padded_dilated():
    model = nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2)
    layer = one(trace_clean(model, (2, 4, 11)), OpKind.CONV)
    F_ = conv_out(11, 3, s=2, p=1, d=2)  # (11 + 2 - 2*2 - 1) // 2 + 1 = 5
    assert F_ == 5
    assert letters(layer) == (2, 4, 1, 11, 6, 1, 3, 1, 5)
    assert (layer.stride, layer.padding, layer.dilation, layer.groups) == ((1, 2), (0, 1), (1, 2), 1)
    assert layer.macs == 720  # N*M*C*S*F = 2 * 6 * 4 * 3 * 5
    assert (layer.weights, layer.biases) == (72, 6)  # 6*4*3 weights, 6 biases
    assert (layer.ifmap, layer.ofmap) == (88, 60)  # 2*4*11, 2*6*5
    assert layer.ops == 0 and not layer.transposed


CONV2D_CASES = {
    # name: (C, M, k, stride, padding, dilation, groups, H, W)
    "plain": (3, 8, (3, 3), (1, 1), (0, 0), (1, 1), 1, 7, 7),
    "padded": (3, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, 7, 7),
    "strided": (3, 8, (3, 3), (2, 2), (1, 1), (1, 1), 1, 8, 8),
    "rect_asymmetric": (4, 6, (3, 5), (2, 1), (1, 2), (1, 1), 1, 9, 10),
    "dilated": (4, 6, (3, 3), (1, 1), (2, 2), (2, 2), 1, 9, 9),
    "grouped": (4, 6, (3, 5), (2, 1), (1, 2), (1, 2), 2, 9, 10),
    "depthwise": (6, 6, (3, 3), (1, 1), (1, 1), (1, 1), 6, 5, 5),
    "depthwise_multiplier": (4, 8, (3, 3), (2, 2), (1, 1), (1, 1), 4, 6, 6),
    "pointwise": (8, 16, (1, 1), (1, 1), (0, 0), (1, 1), 1, 4, 4),
}


@pytest.mark.parametrize("case", list(CONV2D_CASES))
def test_conv2d_variants(case):
    C, M, (R, S), stride, padding, dilation, g, H, W = CONV2D_CASES[case]
    N = 2
    model = nn.Conv2d(C, M, (R, S), stride=stride, padding=padding, dilation=dilation, groups=g)
    layer = one(trace_clean(model, (N, C, H, W)), OpKind.CONV)
    E = conv_out(H, R, stride[0], padding[0], dilation[0])
    F_ = conv_out(W, S, stride[1], padding[1], dilation[1])
    assert letters(layer) == (N, C, H, W, M, R, S, E, F_)
    assert (layer.stride, layer.padding, layer.dilation, layer.groups) == (stride, padding, dilation, g)
    assert layer.macs == N * M * (C // g) * R * S * E * F_
    assert layer.weights == M * (C // g) * R * S and layer.biases == M
    assert (layer.ifmap, layer.ofmap) == (N * C * H * W, N * M * E * F_)
    assert layer.kind is OpKind.CONV and layer.op == "aten.convolution"


def test_conv2d_grouped_numbers_spelled_out():
    # 'grouped' case: E = (9+2-2-1)//2+1 = 5, F = (10+4-2*4-1)//1+1 = 6
    # MACs = N*M*(C/g)*R*S*E*F = 2 * 6 * 2 * 3 * 5 * 5 * 6 = 10800
    model = nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    assert trace_clean(model, (2, 4, 9, 10)).macs == 10800


def test_depthwise_numbers_spelled_out():
    # depthwise 3x3 on 6 channels, 5x5 map, no padding: E = F = 3
    # MACs = 1 * 6 * 1 * 3 * 3 * 3 * 3 = 486; weights 6*1*3*3 = 54
    layer = one(trace_clean(nn.Conv2d(6, 6, 3, groups=6, bias=False), (1, 6, 5, 5)), OpKind.CONV)
    assert (layer.macs, layer.weights, layer.biases, layer.groups) == (486, 54, 0, 6)


def test_conv_transpose2d():
    model = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    layer = one(trace_clean(model, (1, 4, 5, 5)), OpKind.CONV)
    # out = (H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 = 4*2 - 2 + 2 + 1 + 1 = 10
    assert letters(layer) == (1, 4, 5, 5, 6, 3, 3, 10, 10)
    assert layer.transposed and layer.groups == 2 and layer.stride == (2, 2) and layer.padding == (1, 1)
    # every input pixel is scattered through (M/g)*R*S taps: N*C*(M/g)*R*S*H*W = 1*4*3*9*25 = 2700
    assert layer.macs == 2700
    assert (layer.weights, layer.biases) == (108, 6)  # weight [C, M/g, R, S] = 4*3*3*3
    assert (layer.ifmap, layer.ofmap) == (100, 600)  # 4*5*5, 6*10*10


@settings(max_examples=20, deadline=None)
@given(
    c_per_g=st.integers(1, 3), m_per_g=st.integers(1, 3), g=st.integers(1, 3),
    k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
    size=st.integers(6, 10), n=st.integers(1, 2),
)
def test_conv2d_macs_property(c_per_g, m_per_g, g, k, s, p, d, size, n):
    assume(size + 2 * p >= d * (k - 1) + 1)  # the dilated kernel must fit the padded input
    C, M = c_per_g * g, m_per_g * g
    model = nn.Conv2d(C, M, k, stride=s, padding=p, dilation=d, groups=g)
    out = model(torch.zeros(n, C, size, size))  # PyTorch decides the output size
    E, F_ = out.shape[2:]
    layer = one(trace_clean(model, (n, C, size, size)), OpKind.CONV)
    assert (layer.E, layer.F) == (E, F_)
    assert layer.macs == n * M * c_per_g * k * k * E * F_  # one MAC per filter tap per output


# -- fully connected ----------------------------------------------------------------------------

def test_linear_2d_with_bias():
    layer = one(trace_clean(nn.Linear(5, 7), (3, 5)), OpKind.FC)
    assert (layer.N, layer.C, layer.M) == (3, 5, 7)
    assert layer.macs == 105  # 3 * 5 * 7
    assert (layer.weights, layer.biases, layer.params) == (35, 7, 42)
    assert (layer.ifmap, layer.ofmap) == (15, 21)


def test_linear_3d_input_without_bias():
    layer = one(trace_clean(nn.Linear(5, 7, bias=False), (2, 3, 5)), OpKind.FC)
    assert (layer.N, layer.C, layer.M) == (6, 5, 7)  # N = batch x tokens = 2 * 3
    assert layer.macs == 210  # 6 * 5 * 7
    assert (layer.weights, layer.biases) == (35, 0)


class TransposedLinear(nn.Module):
    """A Linear on a non-contiguous 3-D input runs as matmul + add(bias): still one FC layer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 7)

    def forward(self, x):
        return self.fc(x.transpose(0, 1))


def test_linear_3d_noncontiguous_input_folds_bias():
    wl = trace_clean(TransposedLinear(), (3, 2, 5))
    assert len(wl) == 1
    layer = wl["fc"]
    assert layer.kind is OpKind.FC and layer.macs == 210  # (3*2) * 5 * 7
    assert layer.biases == 7 and layer.module == "fc"


def test_linear_1d_input():
    layer = one(trace_clean(nn.Linear(5, 7), (5,)), OpKind.FC)
    assert (layer.N, layer.C, layer.M, layer.macs) == (1, 5, 7, 35)  # 1 * 5 * 7


class ParamTimesActivation(nn.Module):
    """``W[6,5] @ X[2,5,3]``: each of the 2*3 columns of X is an input vector."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 5))

    def forward(self, x):
        return self.w @ x


def test_parameter_on_the_left_of_matmul_is_fc():
    layer = one(trace_clean(ParamTimesActivation(), (2, 5, 3)), OpKind.FC)
    assert layer.macs == 180  # 2 * 6 * 5 * 3
    assert (layer.N, layer.C, layer.M, layer.weights) == (6, 5, 6, 30)
    assert layer.weight_is_param


class EinsumWithParameter(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 6))

    def forward(self, x):
        return torch.einsum("bld,de->ble", x, self.w)


def test_einsum_with_a_parameter_is_fc():
    layer = one(trace_clean(EinsumWithParameter(), (2, 3, 5)), OpKind.FC)
    assert layer.macs == 180 and (layer.N, layer.C, layer.M) == (6, 5, 6)  # (2*3) * 5 * 6


# -- attention ------------------------------------------------------------------------------------

class MHA(nn.Module):
    def __init__(self, batch_first: bool, need_weights: bool, bias: bool = True):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=batch_first, bias=bias)
        self.need_weights = need_weights

    def forward(self, x):
        return self.attn(x, x, x, need_weights=self.need_weights)[0]


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_multihead_attention(batch_first, need_weights, bias):
    B, L, D, h = 3, 5, 8, 2
    shape = (B, L, D) if batch_first else (L, B, D)
    wl = trace_clean(MHA(batch_first, need_weights, bias), shape)
    fc = wl.of_kind(OpKind.FC)
    mm = wl.of_kind(OpKind.MATMUL)
    # in-projection: B*L tokens x D -> 3D: 15 * 8 * 24 = 2880; out-projection 15 * 8 * 8 = 960
    assert [(l.N, l.C, l.M, l.macs) for l in fc] == [(15, 8, 24, 2880), (15, 8, 8, 960)]
    assert [l.biases for l in fc] == ([24, 8] if bias else [0, 0])
    # per head: q k^T is L x (D/h) x L, a v is L x L x (D/h): B*h*L*L*(D/h) = 3*2*5*5*4 = 600 each
    assert [l.macs for l in mm] == [600, 600]
    assert all(l.groups == B * h and not l.weight_is_param for l in mm)
    assert [(l.N, l.C, l.M) for l in mm] == [(5, 6 * 4, 6 * 5), (5, 6 * 5, 6 * 4)]  # groups*k, groups*m
    assert wl.macs == 2880 + 600 + 600 + 960  # = 5040
    softmax = one(wl, OpKind.ACTIVATION)
    assert softmax.ops == 150  # B*h*L*L = 3*2*5*5
    assert {l.module for l in wl} == {"attn"}


class HandWrittenAttention(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, L, D = x.shape
        q, k, v = (t.reshape(B, L, self.heads, D // self.heads).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        scores = torch.matmul(q, k.transpose(-2, -1)) * (D // self.heads) ** -0.5
        y = torch.einsum("bhls,bhsd->bhld", scores.softmax(-1), v)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


def test_hand_written_attention_matmul_and_einsum():
    wl = trace_clean(HandWrittenAttention(), (2, 5, 8))
    assert wl["qkv"].macs == 1920  # 2*5 tokens * 8 * 24
    assert wl["proj"].macs == 640  # 10 * 8 * 8
    qk, av = wl.of_kind(OpKind.MATMUL)
    assert qk.macs == 400 and av.macs == 400  # B*h*L*L*dh = 2*2*5*5*4
    assert qk.module == av.module == ""  # ops in the root's own forward
    assert qk.groups == 4  # B*h
    scale = one(wl, OpKind.ELTWISE)
    assert scale.ops == 100  # the scores tensor 2*2*5*5
    assert one(wl, OpKind.ACTIVATION).ops == 100
    assert wl.macs == 1920 + 400 + 400 + 640


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("ev", [4, 7], ids=["same_head_dim", "wider_values"])
def test_scaled_dot_product_attention(ev):
    B, h, L, S, E = 2, 3, 5, 6, 4
    q, k, v = torch.randn(B, h, L, E), torch.randn(B, h, S, E), torch.randn(B, h, S, ev)
    wl = trace_clean(SDPA(), (q, k, v))
    qk, av = wl.of_kind(OpKind.MATMUL)
    assert qk.macs == 720  # B*h*L*S*E = 2*3*5*6*4
    assert av.macs == B * h * L * S * ev  # 720 or 2*3*5*6*7 = 1260
    assert one(wl, OpKind.ACTIVATION).ops == 180  # softmax over B*h*L*S = 2*3*5*6


# -- normalisation -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "module, shape, params",
    [
        (nn.BatchNorm1d(4), (2, 4), 4),
        (nn.BatchNorm1d(4), (2, 4, 6), 4),
        (nn.BatchNorm2d(4), (2, 4, 3, 3), 4),
        (nn.BatchNorm2d(4, affine=False), (2, 4, 3, 3), 0),
        (nn.LayerNorm(6), (2, 3, 6), 6),
        (nn.LayerNorm((3, 6)), (2, 3, 6), 18),
        (nn.GroupNorm(2, 4), (2, 4, 3, 3), 4),
    ],
    ids=["bn1d_2d", "bn1d_3d", "bn2d", "bn2d_no_affine", "layernorm", "layernorm_2d", "groupnorm"],
)
def test_norm_layers(module, shape, params):
    layer = one(trace_clean(module, shape), OpKind.NORM)
    numel = math.prod(shape)
    assert layer.ops == numel  # one scale-and-shift per element
    assert layer.macs == 0 and layer.ifmap == layer.ofmap == numel
    assert (layer.weights, layer.biases) == (params, params)  # gamma and beta
    assert (layer.N, layer.C) == shape[:2]


# -- pooling --------------------------------------------------------------------------------------

def test_max_pool2d_padded_strided():
    layer = one(trace_clean(nn.MaxPool2d(3, 2, 1), (1, 2, 7, 7)), OpKind.POOL)
    E = conv_out(7, 3, 2, 1)  # (7 + 2 - 2 - 1) // 2 + 1 = 4
    assert letters(layer) == (1, 2, 7, 7, 2, 3, 3, E, E)
    assert (layer.stride, layer.padding, layer.groups) == ((2, 2), (1, 1), 2)
    assert layer.ops == 288  # one comparison per tap per output: 1*2*4*4*9
    assert (layer.ifmap, layer.ofmap) == (98, 32)


def test_avg_pool2d_default_stride():
    layer = one(trace_clean(nn.AvgPool2d(2), (1, 2, 7, 7)), OpKind.POOL)
    assert (layer.E, layer.F, layer.stride) == (3, 3, (2, 2))  # stride defaults to the window; 7 // 2 = 3
    assert layer.ops == 72  # 1*2*3*3*4


def test_max_pool1d():
    layer = one(trace_clean(nn.MaxPool1d(3), (1, 2, 7)), OpKind.POOL)
    assert (layer.H, layer.W, layer.R, layer.S, layer.F, layer.stride) == (1, 7, 1, 3, 2, (1, 3))
    assert layer.ops == 12  # 1*2*2 outputs * 3 taps


def test_global_average_by_mean():
    layer = one(trace_clean(_Lambda(lambda x: x.mean((2, 3))), (2, 3, 4, 5)), OpKind.POOL)
    assert layer.ops == 120 and layer.ofmap == 6  # one add per input element 2*3*4*5; 2*3 outputs


def _adaptive_taps_brute_force(pool, in_size: tuple[int, ...], out_size: tuple[int, ...]) -> int:
    """Taps of one channel of ``pool``: feed every one-hot input, count outputs that see it.

    For a one-hot +1 among -1s an output of max pooling is +1 exactly when the hot
    position is in its window, and an output of average pooling is above the all -1 mean.
    """
    positions = math.prod(in_size)
    x = -torch.ones(positions, 1, *in_size)
    x.view(positions, positions)[torch.arange(positions), torch.arange(positions)] = 1.0
    y = pool(x, out_size)
    y = y[0] if isinstance(y, tuple) else y
    return int((y > -1 + 1e-6).sum())


ADAPTIVE_CASES = [((7, 5), (3, 2)), ((7, 5), (3, 4)), ((10, 10), (3, 3)), ((5, 7), (5, 7)), ((6, 4), (4, 3)), ((13, 1), (5, 1))]


@pytest.mark.parametrize("in_size, out_size", ADAPTIVE_CASES)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool2d_exact_taps(kind, in_size, out_size):
    module = nn.AdaptiveAvgPool2d(out_size) if kind == "avg" else nn.AdaptiveMaxPool2d(out_size)
    functional = F.adaptive_avg_pool2d if kind == "avg" else F.adaptive_max_pool2d
    N, C = 2, 3
    layer = one(trace_clean(module, (N, C, *in_size)), OpKind.POOL)
    taps = _adaptive_taps_brute_force(functional, in_size, out_size)
    assert layer.ops == N * C * taps
    assert (layer.E, layer.F) == out_size and (layer.H, layer.W) == in_size


def test_adaptive_pool_overlapping_windows_spelled_out():
    # 7 -> 3: windows [0,3) [2,5) [4,7) = 3+3+3 = 9 taps; 5 -> 2: [0,3) [2,5) = 6 taps
    # 1 * 2 channels * 9 * 6 = 108 (not 2 * 7 * 5 = 70: the windows overlap)
    assert one(trace_clean(nn.AdaptiveAvgPool2d((3, 2)), (1, 2, 7, 5)), OpKind.POOL).ops == 108


@pytest.mark.parametrize("size, out", [(7, 3), (10, 4), (5, 5), (9, 2)])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool1d_exact_taps(kind, size, out):
    module = nn.AdaptiveAvgPool1d(out) if kind == "avg" else nn.AdaptiveMaxPool1d(out)
    functional = F.adaptive_avg_pool1d if kind == "avg" else F.adaptive_max_pool1d
    layer = one(trace_clean(module, (1, 2, size)), OpKind.POOL)
    assert layer.ops == 2 * _adaptive_taps_brute_force(functional, (size,), (out,))


# -- element-wise, concat, activations, views, embedding -------------------------------------------

class _Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        y = self.conv(x) + x
        z = y * torch.sigmoid(x)
        return torch.cat([y, z, x], 1)


def test_residual_add_mul_and_concat():
    wl = trace_clean(Residual(), (1, 3, 4, 4))
    assert [l.kind for l in wl] == [OpKind.CONV, OpKind.ELTWISE, OpKind.ACTIVATION, OpKind.ELTWISE, OpKind.CONCAT]
    add, mul = wl.of_kind(OpKind.ELTWISE)
    for layer in (add, mul):
        assert layer.ops == 48 and layer.ifmap == 96 and layer.ofmap == 48  # 1*3*4*4 out, two inputs
    cat = one(wl, OpKind.CONCAT)
    assert cat.ops == 0 and cat.ifmap == cat.ofmap == 144  # 3 tensors of 48
    assert cat.C == 9
    assert [l.name for l in wl] == ["conv", "add", "sigmoid", "mul", "cat"]
    assert wl.macs == 1296  # conv: 1*3*3*9*4*4


@pytest.mark.parametrize(
    "module",
    [nn.ReLU(), nn.ReLU6(), nn.GELU(), nn.Sigmoid(), nn.Tanh(), nn.SiLU(), nn.Hardswish(), nn.Hardsigmoid(),
     nn.LeakyReLU(), nn.ELU(), nn.Softmax(-1), nn.LogSoftmax(-1), nn.Mish(), nn.Softplus(), nn.PReLU()],
    ids=lambda m: type(m).__name__,
)
def test_activations_one_op_per_element(module):
    layer = one(trace_clean(module, (2, 3, 4)), OpKind.ACTIVATION)
    assert layer.ops == 24 and layer.macs == 0  # 2*3*4 elements
    assert layer.ifmap == layer.ofmap == 24
    assert layer.params == (1 if isinstance(module, nn.PReLU) else 0)  # PReLU's one slope


@pytest.mark.parametrize(
    "model",
    [nn.Flatten(), _Lambda(lambda x: x.reshape(2, -1)), _Lambda(lambda x: x.permute(0, 2, 1).contiguous().view(2, -1))],
    ids=["flatten", "reshape", "permute_view"],
)
def test_views_and_reshapes_are_ignored_not_layers(model):
    wl = trace_clean(model, (2, 3, 4))
    assert len(wl) == 0
    ignored = dict(wl.ignored)
    assert ignored and all(name.startswith("aten.") and count >= 1 for name, count in ignored.items())
    assert "aten.view" in ignored or "aten._unsafe_view" in ignored or "aten.clone" in ignored


def test_embedding_lookup():
    ids = torch.tensor([[1, 2, 3]])
    layer = one(trace_clean(nn.Embedding(10, 4), ids), OpKind.EMBEDDING)
    assert (layer.N, layer.C, layer.M) == (3, 10, 4)  # 3 look-ups in a 10 x 4 table
    assert (layer.weights, layer.ifmap, layer.ofmap) == (40, 3, 12)
    assert layer.macs == 0 and layer.ops == 0


def test_embedding_from_a_shape_with_an_integer_dtype():
    layer = one(trace_clean(nn.Embedding(10, 4), (2, 5), dtype=torch.long), OpKind.EMBEDDING)
    assert layer.ofmap == 40  # 2*5 ids * 4


class EmbedThenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.head = nn.Linear(6, 20, bias=False)

    def forward(self, ids):
        return self.head(self.emb(ids))


def test_embedding_then_linear():
    wl = trace_clean(EmbedThenLinear(), torch.tensor([[1, 2, 3, 4]]))
    assert [l.kind for l in wl] == [OpKind.EMBEDDING, OpKind.FC]
    assert wl["head"].macs == 480  # 4 tokens * 6 * 20
    assert wl.params == 20 * 6 + 6 * 20  # two distinct tables


# -- module attribution and naming ------------------------------------------------------------------

class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.features(x)
        y = y + y
        return self.head(y.mean((2, 3)))


def test_module_attribution_and_names():
    wl = trace_clean(Nested(), (1, 3, 4, 4))
    assert [(l.name, l.module, l.kind) for l in wl] == [
        ("features.0", "features.0", OpKind.CONV),
        ("features.1", "features.1", OpKind.ACTIVATION),
        ("add", "", OpKind.ELTWISE),
        ("mean", "", OpKind.POOL),
        ("head", "head", OpKind.FC),
    ]
    assert wl.name == "Nested" and wl.input_shapes == ((1, 3, 4, 4),) and wl.source == "torch"
    assert dnnergy.trace(Nested(), (1, 3, 4, 4), name="mine").name == "mine"


class SharedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(self.fc(x))


def test_module_called_twice_gives_two_named_layers():
    wl = trace_clean(SharedLinear(), (1, 4))
    assert [(l.name, l.module, l.macs) for l in wl] == [("fc", "fc", 16), ("fc_1", "fc", 16)]  # 1*4*4 each


def test_shared_parameters_are_counted_once_in_params():
    # The Linear runs twice (two layers, each reading 16 weights) but the network has
    # 4*4 + 4 = 20 learned parameters.
    model = SharedLinear()
    wl = trace_clean(model, (1, 4))
    assert sum(p.numel() for p in model.parameters()) == 20
    assert wl.params == 20


@pytest.mark.parametrize(
    "model, example",
    [(nn.Conv2d(3, 4, 3), (1, 3, 5, 5)), (nn.Linear(5, 7), (3, 5)), (SDPA(), (torch.randn(1, 1, 2, 4),) * 3)],
    ids=["conv", "linear", "functional_root"],
)
def test_layers_of_a_single_module_model_have_real_names(model, example):
    wl = dnnergy.trace(model, example)
    assert len(wl) >= 1
    for layer in wl:
        assert layer.name and not layer.name.startswith("_"), f"unnamed layer {layer.name!r} ({layer.op})"


def test_trace_restores_training_mode_and_leaves_no_hooks():
    model = Nested()
    model.train()
    dnnergy.trace(model, (1, 3, 4, 4))
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_trace_runs_in_eval_mode():
    # dropout off and batch-norm running stats: the counted ops are the inference ones
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    wl = trace_clean(model, (2, 4))
    assert [l.kind for l in wl] == [OpKind.FC]


class CrossAttention(nn.Module):
    """Encoder-decoder attention: queries from one sequence, keys/values from another."""

    def __init__(self, kdim: int | None = None, vdim: int | None = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, kdim=kdim, vdim=vdim)

    def forward(self, q, kv):
        return self.attn(q, kv if self.attn.kdim == 8 else kv[..., : self.attn.kdim], kv[..., : self.attn.vdim])[0]


@pytest.mark.parametrize(
    "make, example",
    [
        (Nested, (1, 3, 4, 4)),
        (Residual, (1, 3, 4, 4)),
        (lambda: nn.Sequential(nn.Conv2d(2, 4, 3), nn.GroupNorm(2, 4), nn.PReLU(4)), (1, 2, 5, 5)),
        (lambda: MHA(True, True), (3, 5, 8)),
        (HandWrittenAttention, (2, 5, 8)),
        (lambda: CrossAttention(), (torch.randn(4, 2, 8), torch.randn(3, 2, 8))),
        (lambda: CrossAttention(kdim=6, vdim=5), (torch.randn(4, 2, 8), torch.randn(3, 2, 8))),
    ],
    ids=["nested", "residual", "groupnorm_prelu", "mha_self", "hand_written_attention", "mha_cross", "mha_cross_kdim_vdim"],
)
def test_params_equal_the_models_parameters_when_each_is_used_once(make, example):
    torch.manual_seed(0)
    model = make()
    wl = trace_clean(model, example)
    assert wl.params == sum(p.numel() for p in model.parameters())


def test_cross_attention_projection_biases_are_slices_of_in_proj_bias():
    # kdim=6, vdim=5: three projections with their own weights, one packed bias [3*8]:
    # each projection adds its own 8-element slice. q: 4*2 tokens x 8 -> 8 = 512 MACs,
    # k: 3*2 x 6 -> 8 = 288, v: 3*2 x 5 -> 8 = 240, scores and values 2*2*4*3*4 = 192 each,
    # out-projection 8 x 8 x 8 = 512: 1936 MACs.
    wl = trace_clean(CrossAttention(kdim=6, vdim=5), (torch.randn(4, 2, 8), torch.randn(3, 2, 8)))
    assert wl.macs == 512 + 288 + 240 + 192 + 192 + 512
    assert [l.biases for l in wl.of_kind(OpKind.FC)] == [8, 8, 8, 8]


def test_dilated_max_pool_records_its_dilation():
    layer = one(trace_clean(nn.MaxPool2d(3, stride=1, dilation=2), (1, 2, 7, 7)), OpKind.POOL)
    assert (layer.E, layer.F) == (3, 3)  # (7 - 2*(3-1) - 1) // 1 + 1
    assert layer.ops == 162  # 1*2*3*3 outputs * 9 taps
    assert layer.dilation == (2, 2)


# -- data-dependent control flow ---------------------------------------------------------------------

class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.step = nn.Linear(4, 4)
        self.branch = nn.Linear(4, 8)

    def forward(self, x):
        trips = int(x.abs().sum().item()) % 3 + 1  # the input decides the loop count
        for _ in range(trips):
            x = self.step(x)
        if x.sum() > 1e9:  # the input decides the branch
            x = self.branch(x)
        return x


@pytest.mark.parametrize("fill, trips", [(0.0, 1), (1.0, 2), (2.0, 3)])  # sum 0, 4, 8 -> 0%3+1, 4%3+1, 8%3+1
def test_data_dependent_control_flow_counts_only_what_ran(fill, trips):
    wl = trace_clean(DataDependent(), torch.full((1, 4), fill))
    steps = [l for l in wl if l.module == "step"]
    assert len(steps) == trips
    assert all(l.macs == 16 for l in steps)  # 1 * 4 * 4
    assert not [l for l in wl if l.module == "branch"]
    assert sum(l.macs for l in wl.mac_layers()) == 16 * trips


def test_branch_taken_is_counted():
    model = DataDependent()
    with torch.no_grad():
        model.step.bias.fill_(1e10)  # makes x.sum() > 1e9 after one step
    wl = trace_clean(model, torch.zeros(1, 4))
    assert [l.module for l in wl.mac_layers()] == ["step", "branch"]
    assert wl["branch"].macs == 32  # 1 * 4 * 8


# -- unsupported ops, strict mode, per-call overrides ----------------------------------------------------

class Unsupported3D(nn.Module):
    def __init__(self):
        super().__init__()
        self.c3 = nn.Conv3d(2, 4, 3)
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        y = self.c3(x)  # [1, 4, 3, 3, 3]
        spec = torch.fft.rfft(y, dim=-1).abs()  # [1, 4, 3, 3, 2]
        spec = torch.fft.rfft(spec, dim=-1).abs()  # a second call: [1, 4, 3, 3, 2]
        return self.fc(y) + spec.sum()


def test_unsupported_ops_are_listed_with_count_module_and_macs():
    with pytest.warns(UserWarning, match=r"Unsupported3D: ops not counted: .*3-D convolution.*x1.*_fft_r2c x2"):
        wl = dnnergy.trace(Unsupported3D(), (1, 2, 5, 5, 5))
    by_op = {u.op: u for u in wl.unsupported}
    conv3d = next(u for name, u in by_op.items() if "convolution" in name)
    assert conv3d.count == 1 and conv3d.modules == ("c3",)
    # 3-D conv: N*M*C*R*S*T*E*F*G = 1*4*2*27*27 = 5832 MACs (output 3x3x3)
    assert conv3d.macs == 5832
    fft = by_op["aten._fft_r2c"]
    assert fft.count == 2 and fft.modules == ("",) and fft.macs is None
    assert wl.unsupported_macs == 5832
    # what could be counted still is: the Linear on [1,4,3,3,3] -> 36 vectors * 3 * 3 = 324 MACs
    assert wl["fc"].macs == 324


def test_strict_raises_unsupported_op_error():
    with pytest.raises(UnsupportedOpError, match="unsupported ops: .*_fft_r2c") as info:
        dnnergy.trace(Unsupported3D(), (1, 2, 5, 5, 5), strict=True)
    assert "aten._fft_r2c" in info.value.ops and len(info.value.ops) == 2


def _fft_as_eltwise(ctx, args, kwargs, out):
    return formulas.eltwise([list(args[0].shape)], list(out.shape))


def _relu_as_eltwise(ctx, args, kwargs, out):
    return formulas.eltwise([list(args[0].shape)], list(out.shape))


def test_per_call_ops_override_does_not_touch_the_global_table():
    before = dnnergy.list_ops()
    with pytest.warns(UserWarning, match="3-D convolution"):
        wl = dnnergy.trace(Unsupported3D(), (1, 2, 5, 5, 5), ops={"aten._fft_r2c": _fft_as_eltwise})
    assert [u.op for u in wl.unsupported if "fft" in u.op] == []
    assert len([l for l in wl if l.op == "aten._fft_r2c"]) == 2
    # overriding a known op changes this call only
    assert one(trace_clean(nn.ReLU(), (2, 3), ops={"aten.relu": _relu_as_eltwise}), OpKind.ELTWISE).ops == 6
    assert one(trace_clean(nn.ReLU(), (2, 3)), OpKind.ACTIVATION).ops == 6
    assert dnnergy.list_ops() == before
    assert get_handler("aten._fft_r2c") is None


def test_list_ops_filters_by_pattern():
    convs = dnnergy.list_ops("aten.*conv*")
    assert "aten.convolution" in convs and all("conv" in n for n in convs)


def test_register_op_refuses_duplicates_and_non_ops():
    with pytest.raises(RuntimeError, match="'aten.relu' is already registered"):
        register_op(torch.ops.aten.relu)(_relu_as_eltwise)
    with pytest.raises(TypeError, match="expected an ATen op"):
        register_op("aten.relu")
    assert get_handler("aten.relu") is not _relu_as_eltwise


def test_register_op_puts_one_handler_under_every_target(monkeypatch):
    from dnnergy.workload import ops as ops_module

    monkeypatch.setattr(ops_module, "_REGISTRY", ops_module.registry_copy())
    aten = torch.ops.aten
    assert register_op(aten._fft_r2c, aten._fft_c2r.default)(_fft_as_eltwise) is _fft_as_eltwise
    assert get_handler("aten._fft_r2c") is get_handler("aten._fft_c2r") is _fft_as_eltwise
    assert dnnergy.list_ops("aten._fft_*") == ["aten._fft_c2r", "aten._fft_r2c"]
    register_op(aten._fft_r2c, override=True)(_relu_as_eltwise)
    assert get_handler("aten._fft_r2c") is _relu_as_eltwise and get_handler("aten._fft_c2r") is _fft_as_eltwise


def test_zero_padding_is_not_reported_unsupported():
    # F.pad / nn.ZeroPad2d moves data (like concat); it must not be reported as an op
    # dnnergy cannot account for.
    wl = trace_clean(nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(2, 3, 3)), (1, 2, 4, 4))
    assert wl["1"].macs == 1 * 3 * 2 * 9 * 4 * 4  # padded 6x6 input -> 4x4 output: 864


def test_local_response_norm_is_counted():
    # AlexNet, CaffeNet and GoogLeNet use LRN; PyTorch runs it as pad + avg_pool3d + pow/mul/add.
    # Every element is normalised over a window of `size` channels: it must be counted, not
    # reported unsupported.
    wl = trace_clean(nn.LocalResponseNorm(5), (1, 8, 4, 4))
    assert sum(l.ops for l in wl) >= 1 * 8 * 4 * 4  # at least one op per element


# -- bad input ---------------------------------------------------------------------------------------

def test_non_module_is_rejected():
    with pytest.raises(UserInputError, match="torch.nn.Module.*got function"):
        dnnergy.trace(lambda x: x, (1, 3))


def test_wrong_channels_raise_trace_error_with_shape_and_expected_channels():
    with pytest.raises(TraceError, match=r"\(1, 4, 8, 8\).*expects 3 input channels"):
        dnnergy.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 4, 8, 8))


def test_wrong_features_raise_trace_error():
    with pytest.raises(TraceError, match=r"\(1, 5\).*expects 3 input features"):
        dnnergy.trace(nn.Linear(3, 4), (1, 5))


@pytest.mark.parametrize("shape", [(1, 0), (1, -2), (1, 2.5), (), "abc", None, (1, True)], ids=repr)
def test_bad_shapes_raise_user_input_error(shape):
    with pytest.raises(UserInputError, match="input"):
        dnnergy.trace(nn.Linear(2, 2), shape)


def test_input_shape_keyword():
    assert trace_clean(nn.Linear(3, 4), None, input_shape=(2, 3)).macs == 24  # 2*3*4

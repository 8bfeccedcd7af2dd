"""Counting bugs found by the fuzz campaign (issue 14), each checked against a hand count.

Grouped-query attention, einsums that torch lowers to a broadcast ``aten.mul`` (a summed
index of size 1) and ``nn.LSTM`` on the oneDNN path. Expected numbers are closed forms
written out in the tests, never the tracer's own output.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy import OpKind
from dnnergy.workload import formulas


def trace_clean(model: nn.Module, example, **kw) -> dnnergy.Workload:
    """Trace and insist that nothing was reported unsupported (no warning either)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wl = dnnergy.trace(model, example, **kw)
    assert wl.unsupported == ()
    return wl


# -- 1. grouped-query attention --------------------------------------------------------------

class GQA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


@pytest.mark.parametrize("Ev", [4, 3])  # Ev == E takes the fused CPU kernel, Ev != E the math path
def test_grouped_query_attention(Ev):
    B, Hq, Hkv, L, S, E = 2, 8, 4, 5, 6, 4
    q, k, v = torch.randn(B, Hq, L, E), torch.randn(B, Hkv, S, E), torch.randn(B, Hkv, S, Ev)
    wl = trace_clean(GQA(), (q, k, v))
    qk, av = wl.of_kind(OpKind.MATMUL)
    # each of the B*Hq query heads attends to its group's key/value head
    assert qk.macs == 1920  # B*Hq*L*S*E = 2*8*5*6*4
    assert av.macs == 480 * Ev  # B*Hq*L*S*Ev = 2*8*5*6*Ev
    assert wl.macs == 1920 + 480 * Ev
    assert qk.groups == av.groups == 16  # B*Hq
    assert [l.ops for l in wl.of_kind(OpKind.ACTIVATION)] == [480]  # softmax over B*Hq*L*S scores


def test_grouped_query_attention_formula_reads_only_the_kv_heads():
    qk, softmax, av = (fields for _, fields in formulas.attention([1, 8, 5, 4], [1, 4, 6, 4], [1, 4, 6, 3]))
    assert (qk["macs"], av["macs"]) == (960, 720)  # 8*5*6*4, 8*5*6*3
    assert (qk["weights"], av["weights"]) == (96, 72)  # k: 4*6*4, v: 4*6*3 elements
    assert softmax["ops"] == 240  # 8*5*6
    with pytest.raises(ValueError, match="do not broadcast"):  # 6 query heads cannot share 4 kv heads
        formulas.attention([1, 6, 5, 4], [1, 4, 6, 4], [1, 4, 6, 4])


def test_a_formula_error_is_a_counting_gap_not_a_failed_forward():
    def broken(ctx, args, kwargs, out):
        raise ValueError("matmul: inner dimensions differ")

    with pytest.warns(UserWarning, match="aten.relu"):
        wl = dnnergy.trace(nn.ReLU(), (2, 3), ops={"aten.relu": broken})
    assert [u.op for u in wl.unsupported] == ["aten.relu (matmul: inner dimensions differ)"]


# -- 2. einsum lowered to aten.mul -----------------------------------------------------------

class PointwiseEinsum(nn.Module):
    def __init__(self, c: int, d: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d, c))

    def forward(self, x):
        return torch.einsum("bchw,dc->bdhw", x, self.w)


class BatchEinsum(nn.Module):
    def forward(self, a, b):
        return torch.einsum("blm,bmd->bld", a, b)


def test_einsum_with_a_size_one_channel_counts_like_a_pointwise_conv():
    layer = trace_clean(PointwiseEinsum(1, 8), (1, 1, 6, 19)).layers
    assert [(l.kind, l.macs) for l in layer] == [(OpKind.FC, 912)]  # N*D*C*H*W = 1*8*1*6*19
    assert (layer[0].N, layer[0].C, layer[0].M, layer[0].weights) == (114, 1, 8, 8)
    assert trace_clean(nn.Conv2d(1, 8, 1), (1, 1, 6, 19)).macs == 912  # the same work as a conv


def test_einsum_with_a_size_one_contraction_counts_like_bmm():
    (layer,) = trace_clean(BatchEinsum(), (torch.randn(2, 6, 1), torch.randn(2, 1, 6))).layers
    assert (layer.kind, layer.macs, layer.groups) == (OpKind.MATMUL, 72, 2)  # b*l*m*d = 2*6*1*6
    bmm = trace_clean(_Bmm(), (torch.randn(2, 6, 1), torch.randn(2, 1, 6))).layers[0]
    assert (bmm.op, bmm.macs) == ("aten.bmm", 72)


class _Bmm(nn.Module):
    def forward(self, a, b):
        return torch.bmm(a, b)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(1, 3), l=st.integers(1, 4), m=st.integers(1, 3), d=st.integers(1, 4))
def test_einsum_macs_are_b_l_m_d_whatever_the_sizes(b, l, m, d):
    wl = trace_clean(BatchEinsum(), (torch.randn(b, l, m), torch.randn(b, m, d)))
    assert wl.macs == b * l * m * d


@settings(max_examples=15, deadline=None)
@given(c=st.integers(1, 3), d=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3))
def test_pointwise_einsum_macs_match_the_conv_formula(c, d, h, w):
    assert trace_clean(PointwiseEinsum(c, d), (2, c, h, w)).macs == 2 * d * c * h * w  # N*M*C*H*W


class OuterProducts(nn.Module):
    def forward(self, x, y):
        a = x[:, :, None] * y[:, None, :]  # a broadcast mul outside any einsum
        return a + torch.einsum("bl,bd->bld", x, y)  # an einsum summing over nothing


def test_element_wise_broadcast_muls_stay_element_wise():
    wl = trace_clean(OuterProducts(), (torch.randn(2, 3), torch.randn(2, 4)))
    assert wl.macs == 0
    assert [(l.op, l.ops) for l in wl.of_kind(OpKind.ELTWISE)] == [("aten.mul", 24), ("aten.mul", 24), ("aten.add", 24)]


# -- 3. LSTM ------------------------------------------------------------------------------------

def lstm_macs(T: int, N: int, I: int, H: int, layers: int, directions: int) -> int:
    """Closed form: each layer and direction does 4H*(I_l + H) MACs per step and sequence."""
    total, inputs = 0, I
    for _ in range(layers):
        total += directions * T * N * 4 * H * (inputs + H)
        inputs = directions * H
    return total


def test_lstm_one_layer():
    T, N, I, H = 3, 2, 4, 6
    wl = trace_clean(nn.LSTM(I, H, batch_first=True), (N, T, I))
    assert lstm_macs(T, N, I, H, 1, 1) == 1440  # 3*2*24*(4+6)
    assert wl.macs == 1440
    ih, hh = wl.of_kind(OpKind.FC)
    assert (ih.N, ih.C, ih.M, ih.macs, ih.biases) == (6, 4, 24, 576, 24)  # T*N rows, I -> 4H
    assert (hh.N, hh.C, hh.M, hh.macs, hh.biases) == (6, 6, 24, 864, 24)  # T*N rows, H -> 4H
    assert [l.ops for l in wl.of_kind(OpKind.ACTIVATION)] == [180]  # 5 nonlinearities * T*N*H
    assert [l.ops for l in wl.of_kind(OpKind.ELTWISE)] == [288]  # 8 element-wise ops * T*N*H


@pytest.mark.parametrize("layers, bidirectional", [(2, True), (3, False)])
def test_lstm_stacked_and_bidirectional(layers, bidirectional):
    T, N, I, H = 4, 3, 5, 7
    wl = trace_clean(nn.LSTM(I, H, num_layers=layers, bidirectional=bidirectional, bias=False), (T, N, I))
    assert wl.macs == lstm_macs(T, N, I, H, layers, 2 if bidirectional else 1)
    assert all(l.biases == 0 for l in wl.of_kind(OpKind.FC))


def test_lstm_and_gru_count_alike():
    """GRU (decomposed by torch) has 3 gates where LSTM has 4: 3H*(I+H) vs 4H*(I+H) MACs per step."""
    T, N, I, H = 3, 2, 4, 6
    gru = trace_clean(nn.GRU(I, H), (T, N, I)).macs
    lstm = trace_clean(nn.LSTM(I, H), (T, N, I)).macs
    assert gru == T * N * 3 * H * (I + H) == 1080
    assert 3 * lstm == 4 * gru


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_reflect_and_replicate_padding_are_free_data_movement(mode):
    # padding copies data like constant padding: no MACs, no ops, nothing unsupported; the conv after it
    # reads the padded 10 x 10 map: 8 * 3 * 3 * 3 * 8 * 8 = 13,824 MACs
    model = nn.Sequential(nn.ReflectionPad2d(1) if mode == "reflect" else nn.ReplicationPad2d(1), nn.Conv2d(3, 8, 3))
    workload = dnnergy.trace(model, (1, 3, 8, 8))
    assert workload.macs == 13_824 and not workload.unsupported

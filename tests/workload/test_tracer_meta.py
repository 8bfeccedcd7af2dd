"""trace's default shapes-only pass (meta tensors) and its fall-back to a real forward pass.

The oracle is the real forward (``compute=True``): every record of every zoo model must be
the same field by field; a forward that needs values must fall back and say so; the meta
shortcuts of ``_MetaOps`` must give the layouts torch's own meta kernels give.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import dnnergy
from dnnergy import zoo
from dnnergy.errors import TraceError, UserInputError
from dnnergy.report import unsupported_lines
from dnnergy.workload.tracer import _MetaOps

aten = torch.ops.aten


def _differences(fast, real) -> list[str]:
    """Every (layer, field) whose value differs, plus the whole-workload fields."""
    diffs = [f"{a.name}/{b.name}.{f.name}: {getattr(a, f.name)!r} != {getattr(b, f.name)!r}"
             for a, b in zip(fast.layers, real.layers) for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
    if len(fast.layers) != len(real.layers):
        diffs.append(f"{len(fast.layers)} layers != {len(real.layers)}")
    for field in ("unsupported", "ignored", "params", "input_shapes", "name"):
        if getattr(fast, field) != getattr(real, field):
            diffs.append(f"workload.{field}: {getattr(fast, field)!r} != {getattr(real, field)!r}")
    return diffs


@pytest.mark.parametrize("name", zoo.list_models())
def test_default_trace_gives_the_real_forward_records_for_every_zoo_model(name):
    model, shape = zoo.create_model(name), zoo.model_info(name).input_shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = dnnergy.trace(model, shape)
        real = dnnergy.trace(model, shape, compute=True)
    assert (fast.traced_with, fast.trace_note, real.traced_with) == ("shapes", "", "forward")
    assert len(real.layers) > 0
    assert _differences(fast, real) == []
    assert fast.layers == real.layers  # the dataclass equality, in case a field escapes the listing


class Tied(nn.Module):
    """Two linears reading one weight (same Parameter) and a third whose own Parameter shares that storage."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 6), nn.Linear(6, 6)
        self.b.weight = self.a.weight
        self.c = nn.Linear(6, 6, bias=False)
        self.c.weight = nn.Parameter(self.a.weight.data)  # another Parameter object on a's storage

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def test_shared_parameters_are_recognised_on_meta_tensors():
    fast, real = dnnergy.trace(Tied(), (2, 6)), dnnergy.trace(Tied(), (2, 6), compute=True)
    assert fast.traced_with == "shapes" and _differences(fast, real) == []
    # hand count: one 6 x 6 weight (read by a, b and c) + biases 6 + 6
    assert fast.params == 48
    assert [layer.weight_is_param for layer in fast.mac_layers()] == [True, True, True]


class ValueBranch(nn.Module):
    """A value-dependent branch (``if y.sum() > 0``) and boolean indexing (``y[y > 0]``)."""

    def __init__(self, index: bool):
        super().__init__()
        self.index = index
        self.fc, self.extra = nn.Linear(4, 4), nn.Linear(4, 4)
        with torch.no_grad():
            self.fc.weight.fill_(0.5)
            self.fc.bias.fill_(1.0)

    def forward(self, x):
        y = self.fc(x)
        if self.index:
            return y[y > 0].sum()  # nonzero: the output shape depends on the values
        return self.extra(y) if y.sum() > 0 else y  # taken on real values (all positive), skipped on zeros


@pytest.mark.filterwarnings("ignore:ValueBranch. ops not counted. aten.index")  # boolean indexing has no count
@pytest.mark.parametrize(("index", "op"), [(False, "aten._local_scalar_dense"), (True, "aten.index")])
def test_a_forward_that_needs_values_falls_back_and_says_so(index, op):
    x = torch.ones(3, 4)
    fast = dnnergy.trace(ValueBranch(index), x)
    real = dnnergy.trace(ValueBranch(index), x, compute=True)
    assert fast.traced_with == "forward" and op in fast.trace_note and "in ''" not in fast.trace_note
    assert _differences(fast, real) == []
    # hand count: fc is 3 x 4 x 4 = 48 MACs; the branch adds extra's 48 on real values
    assert fast.macs == (48 if index else 96)
    assert json.loads(fast.to_json())["traced_with"] == "forward"
    assert op in json.loads(fast.to_json())["trace_note"]
    assert unsupported_lines(fast)[0].startswith("traced with a real forward pass: the shapes-only pass failed (")
    with pytest.raises(TraceError, match="compute=False.*compute=None"):
        dnnergy.trace(ValueBranch(index), x, compute=False)


def test_a_cpu_tensor_made_in_forward_falls_back():
    class Offset(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) + torch.ones(3)  # a CPU tensor meets a meta one

    workload = dnnergy.trace(Offset(), (1, 3))
    assert workload.traced_with == "forward" and "meta" in workload.trace_note
    assert workload.macs == 9


def test_compute_choices():
    model = nn.Linear(4, 2)
    assert dnnergy.trace(model, (1, 4)).traced_with == "shapes"
    assert dnnergy.trace(model, (1, 4), compute=False).traced_with == "shapes"
    assert dnnergy.trace(model, (1, 4), compute=True).traced_with == "forward"
    measured = dnnergy.trace(model, (1, 4), measure=True)
    assert measured.traced_with == "forward" and measured.trace_note == "" and measured.layers[0].o_density is not None
    with pytest.raises(UserInputError, match="measure=True needs compute=True or None"):
        dnnergy.trace(model, (1, 4), measure=True, compute=False)
    with pytest.raises(UserInputError, match="compute must be None"):
        dnnergy.trace(model, (1, 4), compute="yes")
    assert json.loads(dnnergy.trace(model, (1, 4)).to_json())["traced_with"] == "shapes"


def test_a_broken_model_still_reports_the_real_error():
    with pytest.raises(TraceError, match="forward pass failed on input of shape"):
        dnnergy.trace(nn.Linear(4, 2), (1, 5))


# -- _MetaOps shortcuts against torch's meta kernels ------------------------------------------------------


def _layout(t):
    return tuple(t.shape), t.stride(), t.dtype


def _meta(shape, channels_last, dtype=torch.float32):
    t = torch.empty(shape, dtype=dtype, device="meta")
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


shapes = st.lists(st.integers(1, 5), min_size=4, max_size=4)


@settings(max_examples=40, deadline=None)
@given(shape=shapes, channels_last=st.booleans(), transposed=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.int64]), case=st.integers(0, 7))
def test_pointwise_shortcut_matches_torch_meta_kernels(shape, channels_last, transposed, dtype, case):
    x = _meta(shape, channels_last, dtype)
    if transposed:
        x = x.transpose(1, 3)  # not dense in either order: the kernel runs
    calls = [
        (aten.relu.default, (x,), {}),
        (aten.add.Tensor, (x, x), {}),
        (aten.mul.Tensor, (x, torch.tensor(2.0, device="meta")), {}),  # a 0-d operand: promotion by category
        (aten.gt.Scalar, (x, 0), {}),  # bool result
        (aten.div.Tensor, (x, x), {}),  # integer division gives floats
        (aten.div.Tensor_mode, (x, x), {"rounding_mode": "floor"}),  # ... unless rounded
        (aten.sigmoid.default, (x,), {}) if dtype.is_floating_point else (aten.neg.default, (x,), {}),
        (aten.hardtanh.default, (x, 0.0, 6.0), {}),
    ]
    func, args, kwargs = calls[case]
    ops = _MetaOps()
    first, second = ops(func, args, kwargs), ops(func, args, kwargs)  # the second call takes the shortcut
    expected = _layout(func(*args, **kwargs))
    assert _layout(first) == expected and _layout(second) == expected


@settings(max_examples=25, deadline=None)
@given(shape=shapes, channels_last=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]), legit=st.booleans())
def test_batch_norm_shortcut_matches_torch_meta_kernels(shape, channels_last, dtype, legit):
    x, stats = _meta(shape, channels_last, dtype), torch.empty(shape[1], dtype=dtype, device="meta")
    if legit:
        func, args = aten._native_batch_norm_legit_no_training.default, (x, stats, stats, stats, stats, 0.1, 1e-5)
    else:
        func, args = aten.native_batch_norm.default, (x, stats, stats, stats, stats, False, 0.1, 1e-5)
    got, expected = _MetaOps()(func, args, {}), func(*args)
    assert [_layout(t) for t in got] == [_layout(t) for t in expected]


def test_in_place_shortcut_returns_its_operand_and_other_calls_are_remembered():
    ops = _MetaOps()
    x = _meta((1, 3, 5, 5), False)
    assert ops(aten.relu_.default, (x,), {}) is x
    assert ops(aten.add_.Tensor, (x, x), {}) is x
    w = torch.empty(4, 3, 3, 3, device="meta")
    args = (x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    first = ops(aten.convolution.default, args, {})
    second = ops(aten.convolution.default, args, {})
    assert len(ops.layouts) == 1 and first is not second
    assert _layout(second) == _layout(aten.convolution.default(*args)) == ((1, 4, 5, 5), (100, 25, 5, 1), torch.float32)
    assert ops(aten.t.default, (w.view(4, 27),), {}).shape == (27, 4)  # a view is never remembered
    assert len(ops.layouts) == 1


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_modules_whose_kernel_depends_on_the_device_are_traced_for_real(cell):
    # on the CPU nn.LSTM runs as oneDNN's mkldnn_rnn_layer; on meta tensors it would decompose into addmm and gates
    model = nn.Sequential(cell(4, 6, batch_first=True))
    fast, real = dnnergy.trace(model, (2, 3, 4)), dnnergy.trace(model, (2, 3, 4), compute=True)
    assert fast.traced_with == "forward" and "'0' picks its kernel by device" in fast.trace_note
    assert _differences(fast, real) == []

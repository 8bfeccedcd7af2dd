"""What the default trace remembers between calls: meta twins of a model's parameters, meta kernels' results.

The oracle is always a real forward pass (``compute=True``) of the model as it is at that
moment, plus hand counts: after any change to the model between two traces (a parameter's
shape or ``requires_grad``, a replaced module, a weight tied or untied) the default trace
must give the records of the changed model, never those of the remembered one.
"""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.workload import tracer
from dnnergy.workload.tracer import _META_STATES, _MetaOps

aten = torch.ops.aten


def _same_as_real(model: nn.Module, shape) -> dnnergy.Workload:
    """The default trace of ``model``, after checking it ran on shapes and equals the real forward's records."""
    fast, real = dnnergy.trace(model, shape), dnnergy.trace(model, shape, compute=True)
    assert fast.traced_with == "shapes"
    assert fast.layers == real.layers and fast.params == real.params and fast.unsupported == real.unsupported
    return fast


def _mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_twins_are_remembered_per_model_and_forgotten_with_it():
    model = _mlp()
    _same_as_real(model, (1, 4))
    signature, twins, _ = _META_STATES[model]
    dnnergy.trace(model, (1, 4))
    assert _META_STATES[model][1] is twins  # reused, not rebuilt
    assert all(t.device.type == "meta" for t in twins) and len(twins) == 4  # two weights, two biases
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert signature not in [entry[0] for entry in _META_STATES.values()]


def test_a_parameter_reshaped_in_place_between_traces_is_traced_with_its_new_shape():
    model = _mlp()
    assert _same_as_real(model, (1, 4)).macs == 4 * 8 + 8 * 2  # hand count
    with torch.no_grad():  # same Parameter objects (same ids), new shapes
        model[0].weight.data = torch.randn(16, 4)
        model[0].bias.data = torch.randn(16)
        model[2].weight.data = torch.randn(2, 16)
    workload = _same_as_real(model, (1, 4))
    assert workload.macs == 4 * 16 + 16 * 2 and workload.params == 16 * 4 + 16 + 2 * 16 + 2


def test_requires_grad_changed_between_traces_is_followed():
    # torch.matmul folds a transposed 3-D input into one mm when the weight requires grad, and runs bmm otherwise
    class Project(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 5))

        def forward(self, x):
            return torch.matmul(x.transpose(1, 2), self.w)

    model = Project()
    ops = []
    for requires_grad in (True, False, True):
        model.w.requires_grad_(requires_grad)
        ops.append([layer.op for layer in _same_as_real(model, (2, 4, 3)).layers])
    assert ops == [["aten.mm"], ["aten.bmm"], ["aten.mm"]]


def test_a_replaced_module_is_traced_as_the_new_one():
    model = _mlp()
    _same_as_real(model, (1, 4))
    model[0] = nn.Linear(4, 8, bias=False)  # same weight shape, no bias
    assert [layer.biases for layer in _same_as_real(model, (1, 4)).mac_layers()] == [0, 2]
    model[2] = nn.Linear(8, 3)
    assert _same_as_real(model, (1, 4)).macs == 4 * 8 + 8 * 3


def test_weights_tied_and_untied_between_traces_are_detected():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 6, bias=False), nn.Linear(6, 6, bias=False)

        def forward(self, x):
            return self.b(self.a(x))

    model = Pair()
    assert _same_as_real(model, (2, 6)).params == 2 * 36  # hand count: two 6 x 6 weights
    model.b.weight = model.a.weight  # tie: one weight read twice
    assert _same_as_real(model, (2, 6)).params == 36
    model.b.weight = nn.Parameter(model.a.weight.data)  # another Parameter object on the same storage
    assert _same_as_real(model, (2, 6)).params == 36
    model.b.weight = nn.Parameter(torch.randn(6, 6))  # untie
    assert _same_as_real(model, (2, 6)).params == 2 * 36


@pytest.mark.filterwarnings("ignore:Flip. ops not counted. aten.t_")  # an in-place transpose has no count
def test_a_forward_that_reshapes_a_buffer_in_place_does_not_leave_its_twin_behind():
    # the real buffer flips at every real forward; on meta tensors only the twin flips, so each default trace must start from
    # the buffer as it is in the model, (2, 3): x (1, 2) @ (2, 3)
    class Flip(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b", torch.ones(2, 3))

        def forward(self, x):
            y = x @ self.b
            self.b.t_()
            return y

    model = Flip()
    first, second = dnnergy.trace(model, (1, 2)), dnnergy.trace(model, (1, 2))
    assert first.traced_with == second.traced_with == "shapes"
    assert first.layers == second.layers == dnnergy.trace(copy.deepcopy(model), (1, 2), compute=True).layers
    assert (first.layers[0].C, first.layers[0].M) == (2, 3)
    assert model not in _META_STATES  # an op that may change metadata in place ran: nothing kept


def test_meta_kernel_results_are_shared_between_traces():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1))
    dnnergy.trace(model, (1, 3, 9, 9))
    layouts = dict(tracer._META_MEMO[1])
    calls = []
    original = _MetaOps.__call__

    def spy(self, func, args, kwargs):
        out = original(self, func, args, kwargs)
        calls.append(func)
        return out

    _MetaOps.__call__ = spy
    try:
        second = dnnergy.trace(copy.deepcopy(model), (1, 3, 9, 9))  # another model of the same shapes
    finally:
        _MetaOps.__call__ = original
    assert aten.convolution.default in calls and tracer._META_MEMO[1] == layouts  # nothing new to remember
    assert second.layers == dnnergy.trace(model, (1, 3, 9, 9), compute=True).layers


def test_the_memo_starts_afresh_above_its_limit():
    ops = _MetaOps()
    ops.LIMIT = 2
    x = torch.empty(1, 3, 5, 5, device="meta")
    for out_channels in (4, 5, 6):
        w = torch.empty(out_channels, 3, 3, 3, device="meta")
        out = ops(aten.convolution.default, (x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1), {})
        assert tuple(out.shape) == (1, out_channels, 3, 3)  # hand count: 5 - 3 + 1
    assert len(ops.layouts) == 1  # cleared at the third, which alone is remembered


def test_an_in_place_op_whose_shortcut_does_not_apply_still_returns_its_operand():
    ops = _MetaOps()
    x = torch.empty(2, 3, device="meta")
    assert ops(aten.add_.Tensor, (x, torch.empty(2, 3, dtype=torch.float64, device="meta")), {}) is x  # dtypes differ
    assert ops(aten.add_.Tensor, (x, torch.empty(3, device="meta")), {}) is x  # broadcast operand


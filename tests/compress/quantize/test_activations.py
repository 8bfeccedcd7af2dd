"""Layers that quantize their inputs: values, straight-through gradients, edits, hints as the tracer reads them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress.edits import edit_log, replay
from dnnergy.compress.quantize import QuantizedConv2d, QuantizedLinear, quantize_inputs
from dnnergy.errors import UserInputError


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


def test_uniform_input_after_a_relu_is_unsigned_with_the_calibrated_range():
    layer = QuantizedLinear(4, 2, input_scheme="uniform", input_bits=2)
    layer.calibrate(torch.tensor([[0.0, 0.3, 3.0, 1.0]]))  # range [0, 3], 2 bits: step 1, offset 0
    x = torch.tensor([[0.4, 1.6, 2.4, 7.0]])
    expected = nn.functional.linear(torch.tensor([[0.0, 2.0, 2.0, 3.0]]), layer.weight, layer.bias)
    assert torch.allclose(layer(x), expected)
    assert layer.dnnergy_hints == {"i_bits": 2}


def test_dfp_and_log_inputs():
    dfp = QuantizedLinear(3, 1, input_scheme="dfp", input_bits=4)
    dfp.calibrate(torch.tensor([1.5]))  # il = 1 + 1 -> fl 2: step 1/4, codes -8..7
    assert torch.equal(dfp._levels(torch.tensor([0.3, -3.0, 2.0]))[0], torch.tensor([0.25, -2.0, 1.75]))
    log = QuantizedLinear(3, 1, input_scheme="log", input_bits=2)
    log.calibrate(torch.tensor([0.0, 4.2]))  # unsigned, top = round(log2 4.2) = 2: levels 0, 1, 2, 4
    assert torch.equal(log._levels(torch.tensor([3.5, 0.9, 0.2]))[0], torch.tensor([4.0, 1.0, 0.0]))


def test_binary_and_xnor_inputs():
    x = torch.tensor([[0.0, 0.5, -2.0, 1.5]])
    bnn = QuantizedLinear(4, 1, input_scheme="binary", input_bits=1)
    assert torch.equal(bnn._levels(x)[0], torch.tensor([[-1.0, 1.0, -1.0, 1.0]]))  # x > 0 -> +1 (a ReLU's 0 is "negative")
    xnor = QuantizedLinear(4, 1, input_scheme="xnor", input_bits=1)
    assert torch.equal(xnor._levels(x)[0], torch.tensor([[-1.0, 1.0, -1.0, 1.0]]) * 1.0)  # beta = mean|x| = 4/4


def test_input_gradient_is_straight_through_inside_the_range():
    layer = QuantizedLinear(4, 1, bias=False, input_scheme="binary", input_bits=1)
    x = torch.tensor([[0.3, -0.7, 2.0, -1.5]], requires_grad=True)
    layer(x).sum().backward()
    assert torch.equal(x.grad, layer.weight.detach() * torch.tensor([[1.0, 1.0, 0.0, 0.0]]))  # |x| <= 1 (hard tanh)


def test_conv_input_quantization_matches_a_conv_on_quantized_inputs():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    layer = QuantizedConv2d(2, 3, [3, 3], padding=[1, 1], input_scheme="uniform", input_bits=3)
    layer.load_state_dict(conv.state_dict(), strict=False)
    x = torch.randn(1, 2, 5, 5)
    layer.calibrate(x)
    quantized = layer._levels(x)[0]
    assert torch.allclose(layer(x), conv(quantized), atol=1e-6)
    assert len(torch.unique(quantized)) <= 8


def test_quantize_inputs_logs_edits_keeps_weights_and_hints_every_width():
    model = _mlp()
    x = torch.randn(20, 16)
    before = model(x)
    quantize_inputs(model, {"3": 6, "5": 4}, "uniform", x)
    assert isinstance(model[3], QuantizedLinear) and isinstance(model[1], nn.Linear) and not isinstance(model[1], QuantizedLinear)
    assert [e.module for e in edit_log(model).edits] == ["3", "5"]
    workload = dnnergy.trace(model, x[:1])
    bits = {layer.module: (layer.i_bits, layer.o_bits) for layer in workload.mac_layers()}
    assert bits == {"1": (None, 6), "3": (6, 4), "5": (4, None)}  # o_bits on the layer whose output the next one reads
    assert (model(x) - before).abs().max() < 0.5  # 6 / 4-bit inputs: close, not equal
    fresh = replay(_mlp(), edit_log(model))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh(x), model(x))


def test_quantize_inputs_refuses_unknown_layers():
    with pytest.raises(UserInputError, match="not Linear/Conv2d layers"):
        quantize_inputs(_mlp(), {"2": 8}, "uniform", torch.randn(4, 16))
    with pytest.raises(UserInputError, match="bits must be 1"):
        QuantizedLinear(2, 2, input_scheme="binary", input_bits=4)

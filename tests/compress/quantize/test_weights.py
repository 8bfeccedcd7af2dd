"""Weight quantizers as transforms: values, w_bits hints, straight-through gradients, latent updates, saving."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dnnergy.compress import Masks, Transforms
from dnnergy.compress.quantize import (
    Binary,
    BinaryWeights,
    DynamicFixedPoint,
    LogDomain,
    Ternary,
    TrainedTernary,
    Uniform,
    levels,
)
from dnnergy.errors import UserInputError
from dnnergy.workload.hints import HINTS_ATTRIBUTE


def _layer(seed: int = 0, shape=(4, 6)) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(shape[1], shape[0])
    with torch.no_grad():
        layer.weight.mul_(3.0)
    return layer


QUANTIZERS = {
    "uniform": lambda w: Uniform("weight", w, 3),
    "uniform_per_channel": lambda w: Uniform("weight", w, 3, per_channel=True),
    "dfp": lambda w: DynamicFixedPoint("weight", w, 4),
    "log": lambda w: LogDomain("weight", w, 3),
    "ternary": lambda w: Ternary("weight", w),
    "ttq": lambda w: TrainedTernary("weight", w),
    "binary": lambda w: Binary("weight", w),
    "bwn": lambda w: BinaryWeights("weight", w),
}
BITS = {"uniform": 3, "uniform_per_channel": 3, "dfp": 4, "log": 3, "ternary": 2, "ttq": 2, "binary": 1, "bwn": 1}


@pytest.mark.parametrize("name", QUANTIZERS)
def test_attached_quantizer_writes_levels_and_hints_w_bits(name):
    layer = _layer()
    original = layer.weight.detach().clone()
    transform = Transforms.of(layer).add(QUANTIZERS[name](original))
    for row in layer.weight.detach():  # per-channel schemes have their own levels per output row
        assert len(torch.unique(row)) <= 2 ** BITS[name]
    assert not torch.equal(layer.weight.detach(), original)
    assert getattr(layer, HINTS_ATTRIBUTE) == {"w_bits": BITS[name]}
    assert transform.permanent_hints() == {"w_bits": BITS[name]}


def test_values_match_the_closed_forms():
    w = torch.tensor([[0.5, -1.5, 0.2], [2.0, -2.0, 1.0]])
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(w)
    Transforms.of(layer).add(BinaryWeights("weight", w))
    assert torch.allclose(layer.weight, torch.tensor([[2.2 / 3, -2.2 / 3, 2.2 / 3], [5 / 3, -5 / 3, 5 / 3]]))
    layer2 = nn.Linear(3, 2)
    with torch.no_grad():
        layer2.weight.copy_(w)
    Transforms.of(layer2).add(DynamicFixedPoint("weight", w, 4))  # max 2 -> il 2, fl 2: step 1/4, range [-2, 1.75]
    assert torch.equal(layer2.weight.detach(), torch.tensor([[0.5, -1.5, 0.25], [1.75, -2.0, 1.0]]))


@pytest.mark.parametrize("name", ["uniform", "dfp", "log", "binary", "ternary", "bwn"])
def test_straight_through_gradient_is_the_identity_inside_the_clipping_range(name):
    layer = _layer(1)
    quantizer = QUANTIZERS[name](layer.weight.detach())  # ranges from the weights as they are
    original = layer.weight.detach().clone()
    with torch.no_grad():
        original[0, 0] = 100.0  # then one latent weight far outside every range (ternary and bwn pass everything)
        layer.weight.copy_(original)
    transform = Transforms.of(layer).add(quantizer)
    upstream = torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(2))
    (layer.weight * upstream).sum().backward()  # d/dw_q = upstream
    inside = transform.inside(original)
    assert torch.equal(layer.weight.grad, upstream * inside)
    if name in ("ternary", "bwn"):
        assert bool(inside.all())
    else:
        assert not bool(inside[0, 0]) and bool(inside.flatten()[1:].all())


def test_uniform_straight_through_range_is_the_representable_range():
    w = torch.tensor([-1.0, 3.0])
    q = Uniform("weight", w, 2)  # levels -4/3 .. 8/3, step 4/3: rounding, not clipping, up to half a step beyond
    assert q.inside(torch.tensor([-4 / 3, 8 / 3, 3.3, -1.9, 3.4, -2.1])).tolist() == [True, True, True, True, False, False]


def test_an_optimizer_step_moves_the_latent_weights_and_requantizes_them():
    """BinaryConnect's update: the gradient taken at the binary weights moves the real-valued ones."""
    layer = _layer(3)
    latent = layer.weight.detach().clone()
    transforms = Transforms.of(layer)
    quantizer = transforms.add(BinaryWeights("weight", latent))
    upstream = torch.randn(latent.shape, generator=torch.Generator().manual_seed(4))
    (layer.weight * upstream).sum().backward()
    optimizer = torch.optim.SGD([layer.weight], lr=0.5)
    optimizer.step()
    transforms.after_step(layer)
    expected_latent = latent - 0.5 * upstream
    assert torch.allclose(quantizer.latent, expected_latent)
    alpha = expected_latent.abs().mean(dim=1, keepdim=True)  # re-estimated from the latent weights
    assert torch.allclose(layer.weight.detach(), torch.where(expected_latent >= 0, alpha, -alpha))


def test_binary_latent_weights_are_clipped():
    layer = _layer(5)
    transforms = Transforms.of(layer)
    quantizer = transforms.add(Binary("weight", layer.weight.detach()))
    with torch.no_grad():
        layer.weight.add_(100.0)
    transforms.apply()
    assert float(quantizer.latent.max()) == pytest.approx(quantizer.clip)


def test_ttq_scales_follow_their_gradients_and_the_latent_gradient_is_scaled():
    w = torch.tensor([[1.0, -1.0, 0.01, 2.0]])
    layer = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(w)
    transforms = Transforms.of(layer)
    ttq = transforms.add(TrainedTernary("weight", w, threshold=0.05, scale_lr=0.1))
    # delta = 0.05 * 2 = 0.1; W_p = mean(1, 2) = 1.5, W_n = 1
    assert (ttq.delta, ttq.positive, ttq.negative) == pytest.approx((0.1, 1.5, 1.0))
    assert torch.equal(layer.weight.detach(), torch.tensor([[1.5, -1.0, 0.0, 1.5]]))
    upstream = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    (layer.weight * upstream).sum().backward()
    assert torch.equal(layer.weight.grad, torch.tensor([[1.5, 2.0, 3.0, 6.0]]))  # W_p g, W_n g, g, W_p g (TTQ eq. 8)
    torch.optim.SGD([layer.weight], lr=0.01).step()
    transforms.after_step(layer)
    # dL/dW_p = 1 + 4 = 5; dL/dW_n = -2; Adam's first step is lr * sign(gradient) (bias-corrected m / sqrt(v)):
    # W_p 1.5 - 0.1 = 1.4, W_n 1 + 0.1 = 1.1
    assert (ttq.positive, ttq.negative) == pytest.approx((1.4, 1.1))


@pytest.mark.parametrize("name", QUANTIZERS)
def test_saved_state_rebuilds_identical_values(name):
    layer = _layer(6)
    transforms = Transforms.of(layer)
    transforms.add(QUANTIZERS[name](layer.weight.detach()))
    records, tensors = transforms.state()
    fresh = copy.deepcopy(layer)
    del fresh.dnnergy_transforms
    Transforms.load(fresh, records, tensors)
    assert torch.equal(fresh.weight, layer.weight)
    assert Transforms.of(fresh).state()[0] == records


def test_quantizers_keep_pruned_weights_at_zero_through_training():
    layer = _layer(7)
    masks = Masks(layer)
    masks.set("weight", layer.weight.abs() > 1.0)
    Transforms.of(layer).add(BinaryWeights("weight", layer.weight.detach()))
    pruned = ~masks["weight"]
    assert bool((layer.weight[pruned] == 0).all()) and bool((layer.weight[~pruned] != 0).all())
    optimizer = torch.optim.Adam([layer.weight], lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        layer(torch.randn(8, 6)).pow(2).sum().backward()
        optimizer.step()
        Transforms.of(layer).after_step(layer)
    assert bool((layer.weight[pruned] == 0).all())
    assert len(torch.unique(layer.weight.detach().abs()[~pruned])) <= layer.out_features  # one alpha per filter


def test_bad_widths_are_refused():
    w = torch.randn(3, 3)
    with pytest.raises(UserInputError, match="bits must be in \\[2, 16\\]"):
        Uniform("weight", w, 1)
    with pytest.raises(UserInputError, match="bits must be an int"):
        DynamicFixedPoint("weight", w, 40)
    with pytest.raises(UserInputError, match="threshold"):
        TrainedTernary("weight", w, threshold=1.5)


def test_levels_helper_agrees_with_the_transform():
    w = torch.randn(5, 5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(LogDomain("weight", w, 4).levels(w), levels.power_of_two(w, 4, levels.log_exponent(float(w.abs().max()))))

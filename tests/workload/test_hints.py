"""Energy hints a model carries: validated, applied by trace, priced by the estimate without restating them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.compress import Masks, Transforms, WeightTransform
from dnnergy.errors import UserInputError
from dnnergy.metrics import energy_objective
from dnnergy.workload.hints import model_hints, with_hints


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))


class EightBit(WeightTransform):
    """A test transform that declares 8-bit weights (values untouched): what a quantizer will state."""

    kind = "eight_bit_test"

    def apply(self, param):
        pass

    def hints(self):
        return {"w_bits": 8}


def test_trace_applies_bits_hints_to_the_modules_layers():
    model = _mlp()
    model[0].dnnergy_hints = {"w_bits": 4, "o_bits": 8}
    workload = dnnergy.trace(model, (1, 16))
    assert (workload["0"].w_bits, workload["0"].o_bits) == (4, 8)
    assert workload["2"].w_bits is None  # another module: untouched
    assert workload["1"].w_bits is None and workload["1"].o_bits is None  # the ReLU is its own module


def test_measured_densities_win_over_hinted_ones():
    model = _mlp()
    with torch.no_grad():
        model[0].weight[:, :4] = 0  # a quarter of fc1's weights are zero: density 0.75
    model[0].dnnergy_hints = {"w_density": 0.5, "mac_density": 0.9}
    declared = dnnergy.trace(model, (1, 16))
    measured = dnnergy.trace(model, torch.randn(2, 16), measure=True)
    assert declared["0"].w_density == 0.5 and measured["0"].w_density == 0.75
    assert declared["0"].mac_density == measured["0"].mac_density == 0.9  # never measured: the hint applies


def test_weight_hints_skip_layers_without_a_weight_parameter():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    model[1].dnnergy_hints = {"w_bits": 4}
    layer = dnnergy.trace(model, (1, 4))["1"]
    assert layer.w_bits is None


@pytest.mark.parametrize(
    ("hints", "match"),
    [
        ({"bits": 4}, "'bits'\\] is not a hint field"),
        ({"w_bits": 0}, "must be a positive int number of bits"),
        ({"w_bits": 4.0}, "must be a positive int number of bits"),
        ({"w_density": 1.5}, "must be a fraction in \\[0, 1\\]"),
        ({"mac_density": True}, "must be a fraction"),
    ],
)
def test_bad_hints_name_the_module_and_the_field(hints, match):
    model = _mlp()
    model[2].dnnergy_hints = hints
    with pytest.raises(UserInputError, match=f"module '2': dnnergy_hints.*{match}"):
        model_hints(model)


def test_a_transforms_bits_lower_the_estimate_without_restating_them():
    model = _mlp()
    images = torch.rand(4, 16)
    objective = energy_objective(images, "horowitz45", "weights_once", non_mac="exclude")
    dense = objective(model)
    Transforms.of(model).add(EightBit("0.weight"))
    # independently: the same workload with fc1's weights at 8 bits, priced by estimate
    by_hand = dnnergy.trace(_mlp(), images, measure=True).replace_layers({"0": {"w_bits": 8}})
    expected = dnnergy.estimate(by_hand, "horowitz45", "weights_once", non_mac="exclude").total
    assert objective(model) == pytest.approx(expected) and expected < dense
    # horowitz45 prices 32-bit words: fc1's 128 weights at 8 bits cost a quarter of DRAM (640 pJ) + SRAM (5 pJ),
    # and its 4 x 128 MACs take an 8-bit weight operand (the hardware's MAC cost model)
    mac = dnnergy.load_hardware("horowitz45").mac
    saved = 128 * (640 + 5) * (1 - 8 / 32) + 4 * 128 * (mac.energy(32, 32) - mac.energy(8, 32))
    assert dense - objective(model) == pytest.approx(saved)
    Transforms.of(model).make_permanent()  # this transform keeps no hint once baked
    assert objective(model) == pytest.approx(dense)


def test_a_masks_density_hint_prices_an_unprofiled_trace():
    model = _mlp()
    masks = Masks(model)
    masks.set("0.weight", torch.arange(128).reshape(8, 16) % 4 == 0)  # keep 32 of 128
    assert model_hints(model) == {"0": {"w_density": 0.25}}
    assert dnnergy.trace(model, (1, 16))["0"].w_density == 0.25
    masks.remove()
    assert model_hints(model) == {}


def test_with_hints_returns_the_workload_itself_without_hints():
    workload = dnnergy.trace(_mlp(), (1, 16))
    assert with_hints(workload, {}, measured=False) is workload


def test_hints_declared_on_a_module_class_are_read_like_instance_hints():
    from torch import nn

    from dnnergy.workload.hints import model_hints

    class FourBit(nn.Linear):
        dnnergy_hints = {"w_bits": 4}

    model = nn.Sequential(FourBit(2, 2), nn.Linear(2, 2))
    model[1].dnnergy_hints = {"i_bits": 8}
    assert model_hints(model) == {"0": {"w_bits": 4}, "1": {"i_bits": 8}}

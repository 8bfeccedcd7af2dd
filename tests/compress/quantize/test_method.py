"""The method ``quantize``: widths per layer, hints the estimate prices, QAT, mixed precision, chains, the CLI."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy.cli._params import method_options
from dnnergy.compress import CompressionContext, check_params, get_method, run
from dnnergy.compress.quantize import plan_widths
from dnnergy.energy import estimate
from dnnergy.errors import UserInputError
from dnnergy.hardware import load_hardware
from dnnergy.train import FINE_TUNE, train

ORDER = ["fc1", "fc2", "fc3"]


@pytest.mark.parametrize(
    ("scheme", "bits", "activation_bits", "qat", "keep_ends", "expected"),
    [
        ("uniform", None, None, False, None, ({"fc1": 8, "fc2": 8, "fc3": 8}, {"fc1": 8, "fc2": 8, "fc3": 8})),
        ("dfp", None, None, False, None, ({"fc1": 8, "fc2": 8, "fc3": 8}, {"fc1": 10, "fc2": 10, "fc3": 10})),  # seed: 8 / 10
        ("dfp", None, None, True, None, ({"fc1": 8, "fc2": 8, "fc3": 8}, {"fc1": 8, "fc2": 8, "fc3": 8})),  # 8 / 8 fine-tuned
        ("ternary", None, None, False, None, ({"fc2": 2}, {})),  # * first and last layers in float
        ("bwn", None, 8, False, None, ({"fc2": 1}, {"fc2": 8})),
        ("bnn", None, None, False, None, ({"fc1": 1, "fc2": 1, "fc3": 1}, {"fc1": 8, "fc2": 1, "fc3": 1})),  # the image stays 8-bit
        ("xnor", None, None, False, None, ({"fc2": 1}, {"fc2": 1})),
        ("uniform", {"fc1": 4, "fc3": 6}, None, False, True, ({"fc1": 4, "fc2": 8, "fc3": 6}, {"fc1": 4, "fc2": 8, "fc3": 6})),
        ("log", 5, 32, False, None, ({"fc1": 5, "fc2": 5, "fc3": 5}, {})),
    ],
)
def test_plan_widths(scheme, bits, activation_bits, qat, keep_ends, expected):
    assert plan_widths(ORDER, scheme, bits, activation_bits, qat=qat, keep_ends=keep_ends) == expected


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"scheme": "int3"}, "scheme must be one of"),
        ({"scheme": "binary", "bits": 4}, "'binary' has 1-bit weights"),
        ({"scheme": "uniform", "bits": 1}, "at least 2 bits"),
        ({"scheme": "uniform", "bits": 20}, "bits must be an int in \\[1, 16\\]"),
        ({"scheme": "uniform", "activation_bits": 1}, "1-bit activations are the bnn and xnor"),
        ({"scheme": "xnor", "activation_bits": 4}, "'xnor' has 1-bit activations"),
        ({"scheme": "log", "per_channel": True}, "per_channel applies to the uniform"),
        ({"scheme": "ttq", "search": True}, "search chooses widths"),
        ({"calibration": 0}, "calibration must be a positive int"),
    ],
)
def test_bad_parameters_fail_before_any_work(params, match):
    with pytest.raises(UserInputError, match=match):
        check_params("quantize", params)


def test_cli_options_read_schemes_flags_and_per_layer_widths():
    chain = [get_method("magnitude"), get_method("quantize")]
    options = method_options(["--scheme", "xnor", "--qat", "--activation-bits", "1", "--sparsity", "0.9"], chain)
    assert options == {"scheme": "xnor", "qat": True, "activation_bits": 1, "sparsity": 0.9}
    assert method_options(["--bits", "fc1=4,fc2=6", "--keep-ends", "false"], chain) == {"bits": {"fc1": 4, "fc2": 6}, "keep_ends": False}
    assert method_options(["--bits", "3"], chain) == {"bits": 3}


# -- on a tiny trained network -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlp(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10))
    train(model, digits, epochs=8, lr=3e-3, batch_size=32)
    return model.eval()


@pytest.fixture(scope="module")
def context(digits):
    return CompressionContext.build(digits, hardware="horowitz45", dataflow="weights_once", max_accuracy_drop=0.03,
                                    fine_tuning=dataclasses.replace(FINE_TUNE, epochs=2, lr=1e-3))


def test_eight_bit_uniform_prices_quarter_words_and_keeps_accuracy(mlp, context, digits):
    result = run(mlp, "quantize", context, scheme="uniform", bits=8)
    record = result.record
    workload = dnnergy.trace(result.model, digits.val.tensors[0][:1])
    assert [(l.w_bits, l.i_bits, l.o_bits) for l in workload.mac_layers()] == [(8, 8, 8), (8, 8, 8), (8, 8, None)]
    assert abs(record.after.val_accuracy - record.before.val_accuracy) <= 0.02
    # weights (64*48 + 48*32 + 32*10 = 4,928) at 1 byte instead of 4; biases and 2 scales per layer stay float32
    assert record.before.model_bytes - record.after.model_bytes == 4928 * 3 - 3 * 2 * 4
    # horowitz45 weights_once: DRAM weight traffic dominates and falls 32/8 = 4x (a little more: 52 weights round to 0)
    assert record.before.energy / record.after.energy == pytest.approx(4.0, rel=0.03)
    assert record.info["weight_bits"] == {"1": 8, "3": 8, "5": 8}


def test_bnn_macs_are_priced_as_xnor_popcount(mlp, context, digits):
    result = run(mlp, "quantize", context, scheme="bnn")
    workload = dnnergy.trace(result.model, digits.val.tensors[0][:1])
    hardware = load_hardware("horowitz45")
    report = estimate(workload, hardware, "weights_once")
    macs = {r.layer: r.energy for r in report.records if r.level == "MAC"}
    # fc "3" and "5": 1-bit weights x 1-bit inputs: XNOR 3.7/32**2 + popcount 0.9 * 2/32 per MAC
    assert macs["3"] == pytest.approx(48 * 32 * (3.7 / 1024 + 0.9 * 2 / 32))
    assert macs["5"] == pytest.approx(32 * 10 * (3.7 / 1024 + 0.9 * 2 / 32))
    # fc "1": 1-bit weights x 8-bit image: the multiplier law, 3.7 * (1/32) * (8/32) + 0.9 * 8/32
    assert macs["1"] == pytest.approx(64 * 48 * (3.7 / 128 + 0.9 / 4))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 16), st.integers(1, 16), st.integers(1, 16)), min_size=3, max_size=3),
       st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)), min_size=3, max_size=3),
       st.sampled_from([("eyeriss", "row_stationary"), ("horowitz45", "weights_once")]))
def test_energy_never_rises_when_bits_fall(lower, cuts, preset):
    """Any layer, any datum: fewer bits never cost more (memory linear in bits, MAC monotone, binary MAC cheapest)."""
    workload = dnnergy.trace(nn.Sequential(nn.Linear(20, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)), (1, 20),
                             measure=True)
    names = [layer.name for layer in workload.mac_layers()]
    low = {n: dict(zip(("w_bits", "i_bits", "o_bits"), bits)) for n, bits in zip(names, lower)}
    high = {n: {k: v + c for (k, v), c in zip(low[n].items(), cut)} for n, cut in zip(names, cuts)}
    hardware, dataflow = preset
    cheap = estimate(workload.replace_layers(low), hardware, dataflow).total
    dear = estimate(workload.replace_layers(high), hardware, dataflow).total
    assert cheap <= dear * (1 + 1e-12)


def test_qat_improves_on_post_training_binary_and_ternary(mlp, context):
    for scheme in ("binary", "ternary"):
        ptq = run(mlp, "quantize", context, scheme=scheme, keep_ends=False).record.after.val_accuracy
        qat = run(mlp, "quantize", context, scheme=scheme, keep_ends=False, qat=True).record.after.val_accuracy
        assert qat > ptq + 0.02, scheme


def test_chain_with_pruning_keeps_zeros_and_quantizes_survivors(mlp, context, digits):
    result = run(mlp, "magnitude,quantize", context, sparsity=0.5, scheme="uniform", bits=4)
    model = result.model
    for path in ("1", "3", "5"):
        weight = model.get_submodule(path).weight.detach()
        assert float((weight == 0).float().mean()) >= 0.5 - 1e-9  # pruned weights stay 0 (0 is a level)
        assert len(torch.unique(weight)) <= 16
    layers = dnnergy.trace(model, digits.val.tensors[0][:1]).mac_layers()
    assert all(l.w_bits == 4 and l.w_density <= 0.5 for l in layers)
    assert [s.method for s in result.record.stages] == ["magnitude", "quantize"]


@pytest.mark.slow
def test_mixed_precision_search_lowers_widths_within_the_budget(mlp, context):
    result = run(mlp, "quantize", context, scheme="uniform", bits=8, search=True)
    widths = result.record.info["weight_bits"]
    assert min(widths.values()) < 8 and result.record.info["within_budget"]
    fixed = run(mlp, "quantize", context, scheme="uniform", bits=8).record
    assert result.record.after.energy < fixed.after.energy
    assert result.record.after.val_accuracy >= result.record.before.val_accuracy - 0.03

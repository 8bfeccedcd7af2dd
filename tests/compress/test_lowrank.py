"""Low-rank decomposition: exact recovery of exactly low-rank layers, closed-form counts, save/load, the method.

Ground truth is built independently of the code under test: layers whose weights are
products of known factors (torch.einsum), ranks known by construction, MACs and weights
and activation words from the closed forms written in the comments, counted by
``dnnergy.trace``.
"""

from __future__ import annotations

import copy
import dataclasses
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext, check_params, run
from dnnergy.compress.factorize import (
    CPConv2d,
    SVDLinear,
    Tucker2Conv2d,
    cp_conv,
    energy_rank,
    svd_linear,
    tucker2_conv,
)
from dnnergy.compress.lowrank import decompose
from dnnergy.compress.magnitude import magnitude_prune
from dnnergy.errors import UserInputError
from dnnergy.train import FINE_TUNE, train


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rank_r_linear(c: int, m: int, r: int) -> nn.Linear:
    g = _generator()
    layer = nn.Linear(c, m)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(m, r, generator=g) @ torch.randn(r, c, generator=g) / r)
    return layer


def _conv(c: int, m: int, kernel, weight: torch.Tensor, **geometry) -> nn.Conv2d:
    conv = nn.Conv2d(c, m, kernel, **geometry)
    with torch.no_grad():
        conv.weight.copy_(weight)
    return conv


def _same(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_svd_of_a_rank_r_linear_is_exact_and_finds_r():
    layer = _rank_r_linear(40, 30, 5)  # rank 5 by construction
    found = decompose(layer, keep=1.0)
    assert isinstance(found.module, SVDLinear) and found.ranks == (5,)
    assert found.kept == pytest.approx(1.0, abs=1e-12)
    _same(found.module, layer, torch.randn(7, 40, generator=_generator(1)))


def test_tucker2_of_a_conv_built_from_a_known_core_and_factors_is_exact():
    g = _generator()
    r_in, r_out = 3, 4
    core, u_in, u_out = torch.randn(r_out, r_in, 3, 3, generator=g), torch.randn(6, r_in, generator=g), torch.randn(8, r_out, generator=g)
    weight = torch.einsum("abij,ma,cb->mcij", core, u_out, u_in)  # W = core x_0 U_out x_1 U_in
    conv = _conv(6, 8, 3, weight, stride=2, padding=1)
    x = torch.randn(2, 6, 9, 9, generator=_generator(1))
    found = tucker2_conv(conv, (r_in, r_out))
    assert isinstance(found.module, Tucker2Conv2d) and found.kept == pytest.approx(1.0, abs=1e-10)
    _same(found.module, conv, x)
    assert decompose(conv, keep=1.0).ranks == (r_in, r_out)  # the energy rule finds the multilinear ranks


def test_cp_of_an_exact_rank_r_kernel_is_exact():
    g = _generator(2)
    rank = 3
    a_out, a_in, a_h, a_w = (torch.randn(n, rank, generator=g) for n in (7, 5, 3, 5))
    weight = torch.einsum("mr,cr,ir,jr->mcij", a_out, a_in, a_h, a_w)  # sum of 3 rank-one kernels, 3x5
    conv = _conv(5, 7, (3, 5), weight, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    found = cp_conv(conv, rank, iterations=2000, tol=1e-14)
    assert isinstance(found.module, CPConv2d) and found.kept == pytest.approx(1.0, abs=1e-10)
    _same(found.module, conv, torch.randn(2, 5, 10, 12, generator=_generator(3)))


def test_factor_layers_have_the_closed_form_macs_weights_and_activation_words():
    # Linear C=40 -> M=30 at rank 6: 6 * (40 + 30) = 420 weights and MACs (per input vector)
    svd = dnnergy.trace(svd_linear(nn.Linear(40, 30), 6).module, (1, 40))
    assert (svd.macs, svd.weights) == (420, 420)
    # conv 6 -> 8, 3x3, same padding, 10x10 map, Tucker ranks (3, 4):
    # 1x1: 6*3*100 = 1,800; core: 3*4*9*100 = 10,800; 1x1: 4*8*100 = 3,200 -> 15,800 MACs;
    # weights 18 + 108 + 32 = 158; activation words (ifmap + ofmap per layer): (600+300) + (300+400) + (400+800) = 2,800
    conv = nn.Conv2d(6, 8, 3, padding=1)
    tucker = dnnergy.trace(tucker2_conv(conv, (3, 4)).module, (1, 6, 10, 10))
    assert (tucker.macs, tucker.weights) == (15_800, 158)
    assert sum(layer.ifmap + layer.ofmap for layer in tucker.mac_layers()) == 2_800
    # CP rank 5: 1x1 6*5*100 = 3,000; 3x1 and 1x3 depthwise 5*3*100 = 1,500 each; 1x1 5*8*100 = 4,000 -> 10,000 MACs;
    # weights 5 * (6 + 3 + 3 + 8) = 100
    cp = dnnergy.trace(cp_conv(conv, 5, iterations=5).module, (1, 6, 10, 10))
    assert (cp.macs, cp.weights) == (10_000, 100)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 10.0), min_size=1, max_size=12), st.floats(0.01, 1.0))
def test_energy_rank_is_the_smallest_rank_keeping_the_fraction(values, keep):
    s = np.sort(np.array(values))[::-1]
    rank = energy_rank(s, keep)
    total = float(np.sum(s ** 2))
    assert 1 <= rank <= len(s)
    if total > 0:
        kept = [float(np.sum(s[:r] ** 2)) / total for r in range(len(s) + 1)]  # brute force over every rank
        assert kept[rank] >= keep - 1e-6
        assert rank == 1 or kept[rank - 1] < keep


@pytest.fixture(scope="module")
def cnn(digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    train(model, digits, epochs=6, lr=3e-3, batch_size=32)
    return model.eval()


@pytest.fixture(scope="module")
def context(digits):
    return CompressionContext.build(digits, max_accuracy_drop=0.05, fine_tuning=None)


def test_the_method_reports_counts_per_layer_that_match_the_model(cnn, context):
    result = run(cnn, "lowrank", context, keep=0.9)
    info = result.record.info
    decomposed = dict(result.model.named_modules())
    assert info["layers"], info
    for path, layer in info["layers"].items():
        module = decomposed[path]
        assert isinstance(module, (SVDLinear, Tucker2Conv2d))
        assert layer["weights"][1] == sum(m.weight.numel() for m in module) < layer["weights"][0]
        assert layer["macs"][1] < layer["macs"][0]
        # SVD keeps `keep` of the energy exactly; a truncated HOSVD loses at most the sum of what each mode drops
        # (De Lathauwer et al. 2000, Property 10), and HOOI only improves on it
        assert layer["kept"] >= (0.9 if layer["kind"] == "svd_linear" else 2 * 0.9 - 1) - 1e-9
    # the Tucker-2 conv (8 -> 16, 3x3, 4x4 map) at its ranks: activation words in closed form, more than before
    r_in, r_out = info["layers"]["3"]["ranks"]
    hw = 16
    assert info["layers"]["3"]["activation_words"] == [8 * hw + 16 * hw, (8 + r_in) * hw + (r_in + r_out) * hw + (r_out + 16) * hw]
    assert set(info["skipped"]) | set(info["layers"]) == {"0", "3", "7", "9"}  # nothing left out silently
    assert len(info["latency_s"]) == 2 and all(t > 0 for t in info["latency_s"])
    assert set(info["energy_by_datum"]["after"]) == {"compute", "weight", "ifmap", "ofmap"}
    assert result.record.after.macs == result.record.before.macs - sum(v["macs"][0] - v["macs"][1] for v in info["layers"].values())


FACTORY = """
import torch.nn as nn

def cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


def test_a_cp_model_saves_and_loads_with_identical_outputs(tmp_path, monkeypatch, context, digits):
    from dnnergy.compress.artifact import build_architecture

    (tmp_path / "lowrank_models.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.manual_seed(0)
    model = build_architecture("lowrank_models:cnn")
    result = run(model, "lowrank", context, conv="cp", keep=0.5)
    assert isinstance(result.model[3], CPConv2d) and isinstance(result.model[7], SVDLinear)
    loaded = dnnergy.load(dnnergy.save(tmp_path / "cp.dnnergy", result.model, result.record))
    x = digits.test.tensors[0]
    with torch.no_grad():
        assert torch.equal(loaded.model(x), result.model(x))
    assert isinstance(loaded.model[3], CPConv2d) and loaded.model[3].rank == result.model[3].rank
    assert loaded.record.info == result.record.info


def test_the_energy_criterion_only_takes_steps_that_lower_energy_within_the_budget(cnn, context):
    result = run(cnn, "lowrank", context, criterion="energy", energy_target=0.0)
    record = result.record
    assert record.steps and record.after.energy < record.before.energy
    floor = record.before.val_accuracy - 0.05  # digits has no select split: decisions on validation
    assert all(step.accuracy >= floor for step in record.steps)
    for path in {step.layer for step in record.steps}:  # each layer walks down the keep levels
        levels = [step.strength for step in record.steps if step.layer == path]
        assert levels == sorted(levels, reverse=True) and len(set(levels)) == len(levels)
        assert path in record.info["layers"]


def test_a_masked_layer_is_left_alone_with_its_reason(cnn, context):
    model = copy.deepcopy(cnn)
    magnitude_prune(model, 0.5, layers=["7"])
    result = run(model, "lowrank", context, keep=0.9)
    assert "weight transform" in result.record.info["skipped"]["7"]
    assert isinstance(result.model[7], nn.Linear)


@pytest.mark.parametrize(("params", "match"), [
    ({"keep": 0.0}, "keep must be fractions in \\(0, 1\\]"),
    ({"conv": "svd"}, "conv must be one of tucker2, cp"),
    ({"criterion": "rank"}, "criterion must be one of keep, energy"),
    ({"levels": (0.5, 0.9)}, "levels must be a non-empty decreasing list"),
    ({"energy_target": 2.0}, "energy_target must be in \\[0, 1\\]"),
])
def test_bad_parameters_fail_before_any_work(params, match):
    with pytest.raises(UserInputError, match=match):
        check_params("lowrank", params)


def test_an_unknown_layer_is_named(cnn, context):
    with pytest.raises(UserInputError, match="no Linear/Conv2d layers named \\['fc9'\\]"):
        run(cnn, "lowrank", context, layers=("fc9",))


def test_missing_tensorly_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorly", None)
    with pytest.raises(UserInputError, match=r"pip install 'dnnergy\[lowrank\]'"):
        tucker2_conv(nn.Conv2d(4, 4, 3), (2, 2))


def test_fine_tuning_runs_through_the_factors(cnn, digits):
    ctx = CompressionContext.build(digits, max_accuracy_drop=0.05, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=1))
    untuned = run(cnn, "lowrank", ctx.replace(fine_tuning=None), keep=0.8, layers=("7",))
    tuned = run(cnn, "lowrank", ctx, keep=0.8, layers=("7",))
    assert tuned.record.summary.endswith("fine-tuned") and not untuned.record.summary.endswith("fine-tuned")
    assert not torch.equal(tuned.model[7][0].weight, untuned.model[7][0].weight)  # the factors themselves trained

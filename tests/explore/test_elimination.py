"""Algorithm 1 of seed 002 (Zhang, Davoodi, Hu): the elimination sweep, the energy-guided search and the method ``eliminate``."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import dnnergy
from dnnergy.compress import CompressionContext, get_method
from dnnergy.compress.eliminate import INPUTS, eliminate_neurons, eliminate_plan
from dnnergy.data import Dataset, load_dataset
from dnnergy.errors import UserInputError
from dnnergy.explore import elimination_search, elimination_sweep

torch.set_num_threads(1)


def weights(model: nn.Module) -> float:
    """Weights of the Linear layers: the energy stand-in of these tests."""
    return float(sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear)))


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


# -- hand-checkable: a redundant MLP and scripted accuracies -------------------------------------


def redundant_mlp() -> nn.Module:
    """5 -> 8 -> 4 -> 3 where hidden neurons 5, 6, 7 are 2, 1/2 and 4 times neurons 0, 1, 2.

    Scaling by a power of two is exact in floating point and relu(a z) = a relu(z) for a > 0,
    so the 8 hidden activations span exactly 5 dimensions: rank(X) = 5.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 3))
    scale = torch.tensor([2.0, 0.5, 4.0])
    with torch.no_grad():
        model[0].weight[5:] = model[0].weight[:3] * scale[:, None]
        model[0].bias[5:] = model[0].bias[:3] * scale
    return model.eval()


def toy_data(n: int = 300) -> Dataset:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)
    split = [TensorDataset(x[a:b], y[a:b]) for a, b in ((0, 200), (200, 250), (250, n))]
    return Dataset("toy", *split, input_shape=(5,), num_classes=3)


#: validation accuracy scripted by the neurons the hidden layer "0" keeps (8 = the original)
SCRIPT = {8: 0.9, 5: 0.9, 4: 0.85, 3: 0.75, 2: 0.7, 1: 0.6}


@pytest.fixture()
def scripted(monkeypatch):
    """Methods and sweeps see SCRIPT's accuracy for a model's hidden width; returns the widths evaluated."""
    seen = []

    def evaluate(self, model, split="val"):
        seen.append(model[0].out_features)
        return SCRIPT[model[0].out_features]

    monkeypatch.setattr(CompressionContext, "evaluate", evaluate)
    return seen


def test_sweep_descends_from_rank_and_stops_at_the_first_point_below_the_budget(scripted):
    model, data = redundant_mlp(), toy_data()
    with torch.no_grad():
        hidden = torch.relu(model[0](data.train.tensors[0])).double().numpy()
    assert np.linalg.matrix_rank(hidden) == 5  # the construction, checked by numpy
    context = CompressionContext(data, energy=weights, max_accuracy_drop=0.1, fine_tuning=None, reference_accuracy=0.9)
    # floor 0.8: p = 5 (0.90) and 4 (0.85) are within it, 3 (0.75) is the first below: kept, then stop
    points = elimination_sweep(model, context, "0")
    assert [p.strength for p in points] == [5, 4, 3]
    assert [p.val_accuracy for p in points] == [0.9, 0.85, 0.75]
    assert [p.energy for p in points] == [5 * p + p * 4 + 4 * 3 for p in (5, 4, 3)]  # weights of 5-p-4-3
    assert [p.info["plan"] for p in points] == [{"0": 5}, {"0": 4}, {"0": 3}]
    assert points[0].info["residual"] < 1e-6  # p = rank(X) reproduces the next layer
    assert all(p.label == "eliminate" and p.layer == "0" for p in points)
    # step 2: 5, then 3 is below the floor
    assert [p.strength for p in elimination_sweep(model, context, "0", step=2)] == [5, 3]
    # no budget: every p down to 1
    free = context.replace(max_accuracy_drop=None, reference_accuracy=None)
    assert [p.strength for p in elimination_sweep(model, free, "0")] == [5, 4, 3, 2, 1]


def test_sweep_measures_the_budget_from_the_model_when_the_context_has_no_reference(scripted):
    # a context built the documented way (no reference accuracy): the budget is measured from the
    # model swept, whose scripted accuracy is 0.9, as strongest() and every method do
    context = CompressionContext(toy_data(), energy=weights, max_accuracy_drop=0.1, fine_tuning=None)
    assert [p.strength for p in elimination_sweep(redundant_mlp(), context, "0")] == [5, 4, 3]


def test_eliminate_method_keeps_the_fewest_neurons_within_the_budget(scripted):
    model, data = redundant_mlp(), toy_data()
    context = CompressionContext(data, energy=weights, max_accuracy_drop=0.1, fine_tuning=None, reference_accuracy=0.9)
    result = get_method("eliminate")(model, context, layer=("0",), step=1, samples=200)
    assert result.model[0].out_features == 4 and result.model[2].in_features == 4  # 0.85 >= 0.8 > 0.75
    assert [(s.strength, s.accepted) for s in result.record.steps] == [(5, True), (4, True), (3, False)]
    assert result.record.info["plan"] == {"0": 4}
    assert model[0].out_features == 8  # the input model is untouched


def test_eliminate_method_with_a_plan_equals_eliminate_plan():
    model, data = redundant_mlp(), toy_data()
    context = CompressionContext(data, max_accuracy_drop=None, fine_tuning=None)
    plan = {"2": 3, "0": 4}
    result = get_method("eliminate")(model, context, plan=plan, samples=64)
    expected, info = eliminate_plan(model, data.train.tensors[0][:64], plan, samples=64)
    assert [(m.in_features, m.out_features) for m in result.model if isinstance(m, nn.Linear)] == [(5, 4), (4, 3), (3, 3)]
    x = data.val.tensors[0]
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), expected(x), rtol=0, atol=0)
    assert result.record.info["kept"] == info["kept"] and result.record.info["plan"] == plan
    assert result.record.steps == ()  # a plan is applied as given: nothing searched


def test_invalid_sweeps():
    model, data = redundant_mlp(), toy_data()
    context = CompressionContext(data, max_accuracy_drop=0.1, fine_tuning=None, reference_accuracy=0.9)
    with pytest.raises(UserInputError, match="step must be a positive int"):
        elimination_sweep(model, context, "0", step=0)
    with pytest.raises(UserInputError, match="steps must be a positive int"):
        elimination_search(model, context.replace(energy=weights), ["0"], steps=0)
    with pytest.raises(UserInputError, match="elimination_search needs an energy objective"):
        elimination_search(model, context, ["0"])
    with pytest.raises(UserInputError, match="no prunable Conv/Linear layer named 'zz'"):
        elimination_sweep(model, context, "zz")


# -- on digits -----------------------------------------------------------------------------------

DIGITS_MLP = """
from torch import nn


def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def digits_mlp(data: Dataset, descend, *hidden: int) -> nn.Module:
    """Flatten, then an MLP 64-hidden...-10 trained briefly on the digits training split."""
    x, y = data.train.tensors
    torch.manual_seed(0)
    sizes, layers = (64, *hidden), [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return descend(nn.Sequential(*layers, nn.Linear(sizes[-1], 10)), x, y, 40)


def test_sweep_on_digits_end_to_end(digits, descend, tmp_path, monkeypatch):
    model = digits_mlp(digits, descend, 32)
    xv, yv = digits.val.tensors
    acc0 = _accuracy(model, xv, yv)
    context = CompressionContext(digits, energy=weights, max_accuracy_drop=0.05, fine_tuning=None, reference_accuracy=acc0)
    x = digits.train.tensors[0][:1024]  # the calibration samples (samples=1024)
    with torch.no_grad():
        rank = int(np.linalg.matrix_rank(torch.relu(model[1](x.flatten(1))).double().numpy()))
    points = elimination_sweep(model, context, "1", step=4)
    assert all(pt.weights is None and pt.test_accuracy is None for pt in points)  # measured: validation and energy only
    ps = [int(pt.strength) for pt in points]
    assert ps[0] == rank and all(a - b == 4 for a, b in zip(ps, ps[1:]))
    # energy = weights: 64*p + p*10 for p hidden neurons
    assert [pt.energy for pt in points] == [74.0 * p for p in ps]
    drops = [acc0 - pt.val_accuracy for pt in points]
    assert all(d <= 0.05 for d in drops[:-1]) and (drops[-1] > 0.05 or ps[-1] <= 4)
    best = min((pt for pt, d in zip(points, drops) if d <= 0.05), key=lambda pt: pt.strength)
    pruned, _ = eliminate_neurons(model, "1", x, int(best.strength))
    assert _accuracy(pruned, xv, yv) == pytest.approx(best.val_accuracy)
    path = tmp_path / "eliminated.dnnergy"
    (tmp_path / "digits_models.py").write_text(textwrap.dedent(DIGITS_MLP))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        dnnergy.save(path, pruned, architecture="digits_models:digits_mlp")
        reloaded = dnnergy.load(path).model
    finally:
        sys.modules.pop("digits_models", None)
    assert reloaded[1].out_features == best.strength
    assert _accuracy(reloaded, xv, yv) == pytest.approx(best.val_accuracy)


def test_search_takes_the_best_energy_per_distortion_move_and_stops_at_the_threshold(digits, descend):
    model = digits_mlp(digits, descend, 24, 12)
    xv, yv = digits.val.tensors
    acc0 = _accuracy(model, xv, yv)
    context = CompressionContext(digits, energy=weights, max_accuracy_drop=0.03, fine_tuning=None, reference_accuracy=acc0)
    x = digits.train.tensors[0][:600]
    search = elimination_search(model, context, ["3", INPUTS, "1"], steps=4, samples=600)
    sizes = search.start.info["plan"]
    assert list(sizes.items()) == [(INPUTS, 64), ("1", 24), ("3", 12)]  # input side first
    assert search.start.val_accuracy == pytest.approx(acc0) and search.start.energy == weights(model)
    assert len(search.accepted) >= 3 and search.stopped_by is not None  # it moved, then met the threshold
    assert all(pt.val_accuracy >= acc0 - 0.03 for pt in search.accepted)
    energies = [search.start.energy] + [pt.energy for pt in search.accepted]
    assert all(a > b for a, b in zip(energies, energies[1:]))
    assert search.stopped_by.val_accuracy < acc0 - 0.03
    # the first move, recomputed independently: each layer lowered by n // 4 alone, scored by weights saved
    # per relative squared output error added
    with torch.no_grad():
        reference = model(x).double()
    scores = {}
    for key in sizes:
        plan = {k: (m - m // 4 if k == key else m) for k, m in sizes.items()}
        trial, _ = eliminate_plan(model, x, plan, samples=None)
        with torch.no_grad():
            distortion = float((trial(x).double() - reference).square().sum() / reference.square().sum())
        scores[key] = (weights(model) - weights(trial)) / distortion
    first = search.accepted[0]
    changed = [k for k, p in first.info["plan"].items() if p != sizes[k]]
    assert changed == [max(scores, key=scores.get)]
    final, _ = eliminate_plan(model, x, search.plan, samples=None)
    assert search.plan == search.accepted[-1].info["plan"]
    assert _accuracy(final, xv, yv) == pytest.approx(search.accepted[-1].val_accuracy)

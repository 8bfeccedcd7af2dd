"""Trade-off sweeps: metrics against hand counts, executors, per-layer curves, the strongest setting within a budget."""

import copy
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch
from torch import nn

import dnnergy.compress.context as context_module
from dnnergy.compress import CompressionContext, get_method
from dnnergy.compress.magnitude import magnitude_prune
from dnnergy.data import synthetic
from dnnergy.errors import UserInputError
from dnnergy.explore import Point, best_layer, largest_within, layer_curves, strongest, tradeoff
from dnnergy.explore.tradeoff import _Task
from dnnergy.metrics import macs_objective

torch.set_num_threads(1)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))


def _x():
    return torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.1  # strictly positive pixels


def _data():
    return synthetic(n=80, shape=(1, 4, 4), classes=4)  # 56 train / 8 val / 16 test images


def _context(**fields):
    """Energy = dense MACs of the 3-sample example batch; counts on its first sample; no retraining."""
    x = _x()
    return CompressionContext(_data(), **{"energy": macs_objective(x, nonzero=False), "example": x, "fine_tuning": None,
                                          **fields})


def _nonzero_weights(model):
    return sum(int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, nn.Linear))


def _accuracy(model, split):
    x, y = split.tensors
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_tradeoff_points_match_hand_counts():
    model, context = _model(), _context()
    points = tradeoff(model, context, "magnitude", [0.0, 0.5, 0.75])
    assert [p.strength for p in points] == [0.0, 0.5, 0.75]
    for p, s in zip(points, (0.0, 0.5, 0.75)):
        assert p.weights == 16 * 8 + 8 * 4 == 160 and p.macs == 160  # one sample: MACs = weights for an MLP
        assert p.nonzero_weights == (128 - round(s * 128)) + (32 - round(s * 32))
        assert p.model_bytes == (160 + 8 + 4) * 4  # float32 weights + biases
        assert p.energy == 3 * 160  # dense MACs of the 3-sample example batch
        assert p.latency_s > 0 and p.layer == "" and p.energy_unit == "MACs" and p.label == "magnitude"
        pruned = copy.deepcopy(model)  # the same strength by the one-shot primitive, scored by hand
        magnitude_prune(pruned, s).remove()
        assert p.accuracy == p.val_accuracy == pytest.approx(_accuracy(pruned, context.data.val))
        assert p.test_accuracy == pytest.approx(_accuracy(pruned, context.data.test))
        assert (p.val_samples, p.test_samples) == (8, 16)
    assert points[0].nonzero_macs > points[2].nonzero_macs
    assert _nonzero_weights(model) == 160  # input model untouched


def test_measure_nonzero_macs_of_a_pruned_layer():
    model, x = _model(), _x()
    magnitude_prune(model, 0.5, layers=["1"]).remove()
    point = _context().measure(model, latency=True)
    # layer 1: 64 of 128 weights non-zero, input pixels all non-zero -> 64 MACs; layer 3 input is ReLU output
    with torch.no_grad():
        hidden = torch.relu(model[1](model[0](x[:1])))
    expected = 64 + 32 * float((hidden != 0).float().mean())
    assert point.nonzero_macs == pytest.approx(expected)
    assert point.nonzero_weights == 64 + 32 and point.latency_s > 0


def _trained(descend):
    """_model() fitted to the synthetic task (full-batch gradient descent), so that pruning it all costs accuracy."""
    x, y = _data().train.tensors
    return descend(_model(), x, y, 100)


def test_tradeoff_applies_every_strength_without_a_budget(descend):
    model = _trained(descend)
    context = _context(max_accuracy_drop=0.0)  # no accuracy may be lost
    before = _accuracy(model, context.data.val)
    [point] = tradeoff(model, context, "magnitude", [1.0], latency=False)
    assert point.strength == 1.0 and point.nonzero_weights == 0  # applied although it breaks the budget
    # every weight zero: the logits are the last bias, so every image gets class argmax(b)
    constant = int(model[3].bias.argmax())
    expected = float((context.data.val.tensors[1] == constant).float().mean())
    assert point.val_accuracy == pytest.approx(expected) and point.val_accuracy < before
    # the method itself, with that budget, rolls the step back
    assert get_method("magnitude")(model, context, sparsity=1.0).record.after.nonzero_weights == 160


def test_executor_and_picklable_tasks():
    model, context = _model(), _context()
    task = _Task(model, context, "magnitude", {}, 0.5, "", context.measure(model), False)
    assert pickle.loads(pickle.dumps(task)).strength == 0.5  # picklable: can go to a process pool or Ray
    local = tradeoff(model, context, "magnitude", [0.25, 0.9], latency=False)
    with ThreadPoolExecutor(2) as pool:
        pooled = tradeoff(model, context, "magnitude", [0.25, 0.9], latency=False, executor=pool)
    assert [p.nonzero_weights for p in pooled] == [p.nonzero_weights for p in local] == [96 + 24, 13 + 3]


@pytest.mark.slow  # a spawned worker imports torch and dnnergy: seconds
def test_process_pool_executor():
    model, context = _model(), _context()
    # every task pickled to a fresh process ("spawn": a forked child of a process using torch's threads can hang)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pooled = tradeoff(model, context, "magnitude", [0.25, 0.9], latency=False, executor=pool)
    assert [p.strength for p in pooled] == [0.25, 0.9]
    assert [p.nonzero_weights for p in pooled] == [96 + 24, 13 + 3]  # 128 - round(s 128) + 32 - round(s 32)
    local = tradeoff(model, context, "magnitude", [0.25, 0.9], latency=False)
    assert [(p.val_accuracy, p.energy) for p in pooled] == [(p.val_accuracy, p.energy) for p in local]


def test_layer_curves_prune_one_layer_at_a_time():
    model, context = _model(), _context()
    curves = layer_curves(model, context, "magnitude", [0.5], layers=["1", "3"], latency=False)
    assert list(curves) == ["1", "3"]
    assert curves["1"][0].nonzero_weights == 64 + 32 and curves["3"][0].nonzero_weights == 128 + 16
    assert curves["1"][0].layer == "1" and curves["3"][0].strength == 0.5
    with pytest.raises(UserInputError, match="at least one layer"):
        layer_curves(model, context, "magnitude", [0.5], layers=[])


def _point(energy, accuracy, layer):
    return Point(strength=0.5, energy=energy, val_accuracy=accuracy, weights=10, nonzero_weights=5, macs=10,
                 nonzero_macs=5.0, latency_s=1e-3, model_bytes=40, layer=layer)


def test_best_layer_depends_on_target_accuracy():
    curves = {  # like seed 002: FC1 wins at high accuracy, FC2 at lower accuracy
        "fc1": [_point(10.0, 0.79, "fc1"), _point(8.0, 0.74, "fc1")],
        "fc2": [_point(11.0, 0.79, "fc2"), _point(6.0, 0.73, "fc2")],
    }
    assert best_layer(curves, 0.79)[0] == "fc1"
    assert best_layer(curves, 0.73)[0] == "fc2"
    assert best_layer(curves, 0.9) is None


@pytest.mark.parametrize(
    "field, value, match",
    [("val_accuracy", 1.5, "val_accuracy"), ("energy", -1.0, "energy"), ("weights", 2.5, "weights"),
     ("nonzero_weights", 11, r"nonzero_weights \(11\) exceeds")],
)
def test_point_invalid(field, value, match):
    fields = dict(strength=0.5, energy=1.0, val_accuracy=0.5, weights=10, nonzero_weights=5, macs=10, nonzero_macs=5.0,
                  latency_s=0.001, model_bytes=40)
    with pytest.raises(ValueError, match=f"Point: {match}"):
        Point(**(fields | {field: value}))
    assert Point(**fields).to_dict()["model_bytes"] == 40


def test_invalid_sweeps():
    model, context = _model(), _context()
    with pytest.raises(UserInputError, match="at least one value"):
        tradeoff(model, context, "magnitude", [])
    with pytest.raises(UserInputError, match="'eap' has no strength to sweep"):
        tradeoff(model, context, "eap", [0.5])
    with pytest.raises(UserInputError, match="'activation' cannot be limited to layers"):
        layer_curves(model, context, "activation", [0.1], layers=["1"])


# -- the strongest setting within the budget ---------------------------------------------------


def test_largest_within_hand_example():
    accuracies, calls = {0.1: 0.9, 0.2: 0.8, 0.3: 0.7}, []

    def trial(strength):
        calls.append(strength)
        return accuracies[strength], f"model at {strength}"

    assert largest_within((0.1, 0.2, 0.3), trial, 0.75) == ((0.2, "model at 0.2"), 2)
    assert calls == [0.2, 0.3]  # binary search: the middle, then the upper half
    calls.clear()
    assert largest_within((0.1, 0.2, 0.3), trial, 0.95) == (None, 2)
    assert calls == [0.2, 0.1]
    calls.clear()
    assert largest_within((0.1, 0.2, 0.3), trial, 0.5) == ((0.3, "model at 0.3"), 2)
    with pytest.raises(UserInputError, match="strictly increasing"):
        largest_within((0.2, 0.1), trial, 0.5)


def test_strongest_magnitude_by_binary_search(monkeypatch):
    # accuracy scripted by the fraction of zero weights (layer scope: round(s 128) + round(s 32) of 160):
    # unpruned 1.0, then 0.9, 0.8, 0.7 at sparsity 0.1, 0.2, 0.3; budget 0.25 -> floor 0.75 -> 0.2
    script = {0.0: 1.0, 0.1: 0.9, 0.2: 0.8, 0.3: 0.7}
    seen = []

    def evaluate(model, data, batch_size=1000):
        zeros = sum(int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, nn.Linear)) / 160
        seen.append(round(zeros, 3))
        return script[round(zeros, 3)]

    monkeypatch.setattr(context_module, "evaluate", evaluate)
    model = _model()
    found = strongest(model, _context(max_accuracy_drop=0.25), "magnitude", (0.1, 0.2, 0.3))
    assert found.strength == 0.2 and found.trials == 2
    assert found.result.record.after.nonzero_weights == 160 - 32 and found.result.record.after.val_accuracy == 0.8
    assert sorted(set(seen)) == [0.0, 0.2, 0.3]  # sparsity 0.1 was never tried
    none = strongest(model, _context(max_accuracy_drop=0.05), "magnitude", (0.1, 0.2, 0.3))
    assert (none.strength, none.result, none.trials) == (None, None, 2)
    with pytest.raises(UserInputError, match="has no strength parameter"):
        strongest(model, _context(), "eap", (0.1,))

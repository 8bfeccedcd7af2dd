"""Trade-off sweeps: metrics against hand counts, executors, per-layer curves."""

import functools
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from dnnergy.compress.magnitude import magnitude_prune
from dnnergy.compress.objectives import macs_objective
from dnnergy.errors import UserInputError
from dnnergy.explore import TradeoffPoint, best_layer, layer_curves, measure, tradeoff
from dnnergy.explore.tradeoff import _Task

torch.set_num_threads(1)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))


def _x():
    return torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) + 0.1  # strictly positive pixels


def _nonzero_weights(model):
    return sum(int((m.weight != 0).sum()) for m in model.modules() if isinstance(m, nn.Linear))


def _constant_accuracy(model):
    return 0.5


def test_tradeoff_points_match_hand_counts():
    model, x = _model(), _x()
    points = tradeoff(model, magnitude_prune, [0.0, 0.5, 0.75], _constant_accuracy, macs_objective(x, nonzero=False),
                      example_input=x, latency_runs=3)
    assert [p.strength for p in points] == [0.0, 0.5, 0.75]
    for p, s in zip(points, (0.0, 0.5, 0.75)):
        assert p.weights == 16 * 8 + 8 * 4 == 160 and p.macs == 160  # one sample: MACs = weights for an MLP
        assert p.nonzero_weights == (128 - round(s * 128)) + (32 - round(s * 32))
        assert p.size_bytes == (160 + 8 + 4) * 4  # float32 weights + biases
        assert p.energy == 3 * 160  # dense MACs of the 3-sample example batch
        assert p.accuracy == 0.5 and p.latency_s > 0 and p.layer == "" and p.energy_unit == "MACs"
    assert points[0].nonzero_macs > points[2].nonzero_macs
    assert _nonzero_weights(model) == 160  # input model untouched


def test_measure_nonzero_macs_of_a_pruned_layer():
    model, x = _model(), _x()
    magnitude_prune(model, 0.5, layers=["1"]).remove()
    point = measure(model, _constant_accuracy, macs_objective(x), x, latency_runs=1)
    # layer 1: 64 of 128 weights non-zero, input pixels all non-zero -> 64 MACs; layer 3 input is ReLU output
    with torch.no_grad():
        hidden = torch.relu(model[1](model[0](x[:1])))
    expected = 64 + 32 * float((hidden != 0).float().mean())
    assert point.nonzero_macs == pytest.approx(expected)
    assert point.nonzero_weights == 64 + 32


def test_executor_and_picklable_tasks():
    model, x = _model(), _x()
    accuracy = functools.partial(_constant_accuracy)
    objective = macs_objective(x)
    task = _Task(model, magnitude_prune, 0.5, "", accuracy, objective, x, 1)
    assert pickle.loads(pickle.dumps(task)).strength == 0.5  # picklable: can go to a process pool or Ray
    local = tradeoff(model, magnitude_prune, [0.25, 0.9], accuracy, objective, example_input=x, latency_runs=1)
    with ThreadPoolExecutor(2) as pool:
        pooled = tradeoff(model, magnitude_prune, [0.25, 0.9], accuracy, objective, example_input=x, latency_runs=1, executor=pool)
    assert [p.nonzero_weights for p in pooled] == [p.nonzero_weights for p in local]


def test_layer_curves_prune_one_layer_at_a_time():
    model, x = _model(), _x()
    curves = layer_curves(model, magnitude_prune, [0.5], _constant_accuracy, macs_objective(x), example_input=x,
                          layers=["1", "3"], latency_runs=1)
    assert list(curves) == ["1", "3"]
    assert curves["1"][0].nonzero_weights == 64 + 32 and curves["3"][0].nonzero_weights == 128 + 16
    assert curves["1"][0].layer == "1"
    with pytest.raises(UserInputError, match="at least one layer"):
        layer_curves(model, magnitude_prune, [0.5], _constant_accuracy, macs_objective(x), example_input=x, layers=[])


def _point(energy, accuracy, layer):
    return TradeoffPoint(0.5, energy, accuracy, 10, 5, 10, 5.0, 1e-3, 40, layer)


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
    [("accuracy", 1.5, "accuracy"), ("energy", -1.0, "energy"), ("weights", 2.5, "weights"), ("nonzero_weights", 11, "nonzero_weights .11. exceeds")],
)
def test_tradeoff_point_invalid(field, value, match):
    fields = dict(strength=0.5, energy=1.0, accuracy=0.5, weights=10, nonzero_weights=5, macs=10, nonzero_macs=5.0,
                  latency_s=0.001, size_bytes=40)
    with pytest.raises(ValueError, match=f"TradeoffPoint: {match}"):
        TradeoffPoint(**(fields | {field: value}))
    assert TradeoffPoint(**fields).to_dict()["size_bytes"] == 40


def test_invalid_sweeps():
    with pytest.raises(UserInputError, match="at least one value"):
        tradeoff(_model(), magnitude_prune, [], _constant_accuracy, macs_objective(_x()), example_input=_x())
    with pytest.raises(UserInputError, match="latency_runs"):
        measure(_model(), _constant_accuracy, macs_objective(_x()), _x(), latency_runs=0)

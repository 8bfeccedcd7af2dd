"""Objectives (per-image energy, latency), the latency timer, Point, model_bytes and model_counts."""

import math

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.errors import UserInputError
from dnnergy.metrics import (
    LatencyObjective,
    Point,
    energy_objective,
    measure_latency,
    model_bytes,
    model_counts,
    model_latency,
)


def test_per_image_energy_is_the_batch_1_estimate_with_batch_densities():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        model[0].weight[:, :8] = 0  # half of fc1's weights pruned
    images = torch.randn(8, 16)
    objective = energy_objective(images, "horowitz45", "weights_once", per_image=True, non_mac="exclude")
    # independently: densities from the batch trace, copied onto a batch-1 trace by hand
    batch = dnnergy.trace(model, images, measure=True)
    single = dnnergy.trace(model, (1, 16))
    fields = ("w_density", "i_density", "o_density", "w_stats", "i_stats", "o_stats")
    by_hand = single.replace_layers({l.name: {f: getattr(batch[l.name], f) for f in fields} for l in single})
    expected = dnnergy.estimate(by_hand, "horowitz45", "weights_once", non_mac="exclude").total
    assert objective(model) == expected
    assert batch["0"].w_density == 0.5
    # per image at batch 1 fetches every weight for one image: more than the batch's energy / 8
    whole = energy_objective(images, "horowitz45", "weights_once", non_mac="exclude")(model)
    assert objective(model) > whole / 8


def test_workload_and_price_give_the_objective_and_price_what_if_edits():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    images = torch.randn(8, 16)
    objective = energy_objective(images, "horowitz45", "weights_once", per_image=True, non_mac="exclude")
    workload = objective.workload(model)
    assert [l.name for l in workload.mac_layers()] == ["0", "2"] and workload["0"].N == 1  # batch 1
    assert objective.price(workload).total == objective(model)
    # what if every weight of the first layer were zero: priced like the same edit estimated by hand
    edited = workload.replace_layers({"0": {"w_density": 0.0, "w_stats": None}})
    expected = dnnergy.estimate(edited, "horowitz45", "weights_once", non_mac="exclude").total
    assert objective.price(edited).total == expected < objective(model)


# -- latency -------------------------------------------------------------------------------------
def test_measure_latency_runs_and_counts_calls():
    calls = []
    seconds = measure_latency(lambda: calls.append(1), repeats=7, warmup=2)
    assert len(calls) == 9 and seconds >= 0.0  # 2 untimed + 7 timed


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"repeats": True}, {"repeats": 2.0}, {"warmup": -1}, {"warmup": 0.5}])
def test_measure_latency_rejects_bad_counts(kwargs):
    with pytest.raises(UserInputError, match="measure_latency: repeats must be >= 1 and warmup >= 0"):
        measure_latency(lambda: None, **kwargs)


class _Counting(nn.Module):
    """Counts its forward passes and records the training flag each one ran in."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return x


def test_model_latency_runs_in_eval_mode_and_restores_the_flag():
    model = _Counting().train()
    seconds = model_latency(model, (1, 4), repeats=3, warmup=2)
    assert model.modes == [False] * 5 and model.training and seconds >= 0.0  # 2 warm-up + 3 timed, all in eval
    assert model_latency(model.eval(), torch.zeros(1, 4), repeats=1, warmup=0) >= 0.0 and not model.training
    with pytest.raises(UserInputError, match="repeats must be >= 1"):
        model_latency(model, (1, 4), repeats=0)
    with pytest.raises(UserInputError, match="warmup >= 0"):
        model_latency(model, (1, 4), warmup=-1)
    assert len(model.modes) == 6  # the rejected calls ran nothing


def test_latency_objective_is_in_seconds():
    objective = LatencyObjective((1, 4), repeats=2, warmup=0)
    assert objective.unit == "s"
    model = _Counting()
    assert objective(model) >= 0.0 and model.modes == [False, False]
    with pytest.raises(UserInputError, match="LatencyObjective: example_input is required"):
        LatencyObjective(None)


# -- Point -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [
        ("val_accuracy", 1.5), ("test_accuracy", -0.1), ("weights", -1), ("macs", 1.5), ("model_bytes", True),
        ("val_samples", -3), ("test_samples", 2.0), ("energy", math.nan), ("energy", -1.0), ("latency_s", math.inf),
        ("nonzero_macs", -1.0), ("info", {"a": object()}),
    ],
)
def test_point_rejects_invalid_fields_naming_them(field, value):
    with pytest.raises(ValueError, match=f"Point: {field}"):
        Point(**{field: value})


def test_point_rejects_more_nonzero_weights_than_weights():
    with pytest.raises(ValueError, match=r"Point: nonzero_weights \(5\) exceeds weights \(4\)"):
        Point(weights=4, nonzero_weights=5)


def test_point_standard_error_and_accuracy():
    point = Point(val_accuracy=0.9, val_samples=100, test_accuracy=0.95, test_samples=1000)
    assert point.standard_error() == pytest.approx(0.0068920, abs=1e-7)  # sqrt(0.95 * 0.05 / 1000)
    assert point.standard_error("val") == pytest.approx(0.03)  # sqrt(0.9 * 0.1 / 100)
    assert point.accuracy == 0.9  # decisions use validation
    assert Point(test_accuracy=0.95).standard_error() is None  # no sample count: unknown
    assert Point(test_samples=10).standard_error() is None  # not measured
    with pytest.raises(UserInputError, match="split must be 'val' or 'test'"):
        point.standard_error("train")


def test_point_round_trips_through_plain_data():
    point = Point(label="magnitude", strength=0.5, layer="fc1", val_accuracy=0.9, val_samples=100, test_accuracy=0.85,
                  test_samples=200, energy=12.5, energy_unit="pJ", weights=40, nonzero_weights=20, macs=40,
                  nonzero_macs=20.0, latency_s=0.001, model_bytes=168, info={"plan": [1, 2]})
    data = point.to_dict()
    assert data["energy_unit"] == "pJ" and data["info"] == {"plan": [1, 2]} and data["nonzero_weights"] == 20
    assert Point.from_dict(data) == point
    with pytest.raises(UserInputError, match=r"Point: unknown fields \['accuracy'\]"):
        Point.from_dict({**data, "accuracy": 0.9})


# -- counts and bytes --------------------------------------------------------------------------------
def test_model_bytes_counts_dtype_sizes_and_declared_weight_bits():
    layer = nn.Linear(4, 2)
    assert model_bytes(layer) == 40  # (4 * 2 weights + 2 biases) * 4 bytes
    layer.dnnergy_hints = {"w_bits": 4}
    assert model_bytes(layer) == 12  # 8 weights * 4 bits = 32 bits = 4 bytes, + 2 float32 biases = 8 bytes
    nested = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    # Linear 40; BatchNorm1d: weight, bias, running_mean, running_var 2 * 4 bytes each + num_batches_tracked int64 8
    assert model_bytes(nested) == 40 + 4 * 8 + 8
    nested[0].dnnergy_hints = {"w_bits": 2}
    assert model_bytes(nested) == (8 * 2 + 2 * 32) // 8 + 40  # 16 + 64 bits = 10 bytes, BatchNorm unchanged
    # a coded layer (Deep Compression) costs the bits it stores, whatever its values' width
    layer.dnnergy_hints = {"w_bits": 4, "w_coded_bits": 20}
    assert model_bytes(layer) == 11  # ceil((20 + 2 * 32) / 8) = ceil(10.5)


def test_model_counts_of_a_linear_layer():
    layer = nn.Linear(784, 300)
    counts = model_counts(layer, torch.ones(2, 784))  # the first sample is counted
    assert counts["macs"] == 784 * 300 == 235_200
    assert counts["weights"] == 235_200 and counts["nonzero_weights"] == 235_200
    assert counts["nonzero_macs"] == 235_200.0  # all-ones input: every MAC has two non-zero operands
    assert counts["model_bytes"] == (235_200 + 300) * 4
    assert model_counts(layer, (1, 784))["macs"] == 235_200  # a shape works as well
    with torch.no_grad():
        layer.weight[:, :392] = 0  # half of every row pruned
    counts = model_counts(layer, torch.ones(1, 784))
    assert counts["nonzero_weights"] == 117_600 and counts["nonzero_macs"] == 117_600.0 and counts["macs"] == 235_200


def test_an_energy_objective_refuses_unknown_hardware_and_dataflows_when_built():
    import pytest

    from dnnergy.errors import UserInputError
    from dnnergy.metrics import energy_objective

    with pytest.raises(UserInputError, match="did you mean eyeriss"):
        energy_objective((1, 4), "eyeris")
    with pytest.raises(UserInputError, match="unknown dataflow 'weight_once'"):
        energy_objective((1, 4), "horowitz45", "weight_once")

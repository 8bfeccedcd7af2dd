import pytest

from dnnergy.energy import AccessCounts, Dataflow, get_dataflow, list_dataflows, register_dataflow
from dnnergy.energy import dataflow as dataflow_module
from dnnergy.errors import UserInputError
from dnnergy.hardware import LevelKind, load_hardware
from dnnergy.workload import Datum, Layer, OpKind


def test_access_counts_valid_and_read_only():
    counts = AccessCounts(10, {("weight", "dram"): 4, (Datum.IFMAP, LevelKind.BUFFER): 2.5}, {"order": ["N", "M"]})
    assert counts.accesses[(Datum.WEIGHT, LevelKind.DRAM)] == 4
    assert counts.mapping["order"] == ["N", "M"]
    with pytest.raises(TypeError):
        counts.accesses[(Datum.WEIGHT, LevelKind.DRAM)] = 5


@pytest.mark.parametrize(
    ("macs", "accesses", "match"),
    [
        (-1, {}, "AccessCounts: macs must be a non-negative number"),
        (True, {}, "AccessCounts: macs"),
        (1, {"weight": 3}, "keys must be \\(Datum, LevelKind\\) pairs"),
        (1, {(Datum.WEIGHT, LevelKind.DRAM): -2}, "accesses\\[weight, dram\\] must be >= 0"),
        (1, {(Datum.WEIGHT, LevelKind.DRAM): float("nan")}, "must be >= 0"),
        (1, {("psum", "dram"): 1}, "'psum' is not a valid Datum"),
    ],
)
def test_access_counts_invalid(macs, accesses, match):
    with pytest.raises(ValueError, match=match):
        AccessCounts(macs, accesses)


def test_registry_lists_builtins_and_refuses_duplicates(monkeypatch):
    assert {"row_stationary", "weights_once"} <= set(list_dataflows())
    assert list_dataflows("weights*") == ["weights_once"]
    monkeypatch.setattr(dataflow_module, "_REGISTRY", dataflow_module._REGISTRY.copy())

    @register_dataflow("naive")
    class Naive:
        name = "naive"

        def accesses(self, layer, hardware):
            return AccessCounts(layer.macs, {(Datum.WEIGHT, LevelKind.BUFFER): layer.macs})

    assert isinstance(get_dataflow("naive"), Naive)
    with pytest.raises(RuntimeError, match="'naive' is already registered"):
        register_dataflow("naive")(Naive)
    assert register_dataflow("naive", override=True)(Naive) is Naive
    with pytest.raises(TypeError, match="names must be non-empty strings"):
        register_dataflow("")(Naive)
    with pytest.raises(TypeError, match="expected a class or factory"):
        register_dataflow("broken")(42)
    assert "broken" not in list_dataflows()


def test_get_dataflow_unknown_and_instances():
    with pytest.raises(UserInputError, match=r"unknown dataflow 'weight_once'; did you mean weights_once\? \(known: .*row_stationary"):
        get_dataflow("weight_once")
    with pytest.raises(UserInputError, match="dataflow must be a registered name"):
        get_dataflow(42)
    flow = get_dataflow("weights_once")
    assert get_dataflow(flow) is flow


@pytest.mark.parametrize("name", list_dataflows())
def test_every_dataflow_meets_the_protocol(name):
    flow = get_dataflow(name)
    assert isinstance(flow, Dataflow) and flow.name == name
    fc = Layer("fc", OpKind.FC, "aten.addmm", N=1, C=4, M=3, macs=12, weights=12, ifmap=4, ofmap=3)
    counts = flow.accesses(fc, load_hardware("eyeriss"))
    assert isinstance(counts, AccessCounts)
    assert counts.macs == 12  # 1 x 4 x 3

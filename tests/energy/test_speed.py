import time

from dnnergy.energy import estimate
from dnnergy.workload import Layer, Workload, formulas


def resnet50_sized() -> Workload:
    """170 layers like ResNet-50's: 53 convs + 1 FC, each conv followed by norm and activation, plus adds."""
    layers = []
    for i in range(53):
        c = 64 * (1 + i % 4)
        conv = formulas.conv([1, c, 14, 14], [c, c, 3, 3], [1, c, 14, 14], 1, 1, 1, 1)
        layers.append(Layer(f"conv{i}", op="aten.convolution", **conv))
        layers.append(Layer(f"bn{i}", op="aten.batch_norm", **formulas.norm([1, c, 14, 14], 2 * c)))
        layers.append(Layer(f"relu{i}", op="aten.relu", **formulas.activation([1, c, 14, 14])))
    for i in range(10):
        layers.append(Layer(f"add{i}", op="aten.add", **formulas.eltwise([[1, 256, 14, 14]] * 2, [1, 256, 14, 14])))
    layers.append(Layer("fc", op="aten.addmm", **formulas.fc(1, 2048, 1000)))
    return Workload(tuple(layers), "resnet50_sized")


def test_estimate_is_cheap_enough_for_pruning_loops():
    workload = resnet50_sized()
    assert len(workload.layers) == 170
    for flow in ("weights_once", "row_stationary"):
        estimate(workload, "eyeriss", flow)  # warm the preset and mapping caches
        times = []
        for _ in range(5):
            start = time.perf_counter()
            estimate(workload, "eyeriss", flow)
            times.append(time.perf_counter() - start)
        # target 50 ms; measured ~5 ms; the bound leaves room for a loaded CI machine
        assert sorted(times)[2] < 0.25, (flow, times)

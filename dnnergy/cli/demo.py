"""``dnnergy demo``: the main job end to end on the embedded defaults (no downloads)."""

from __future__ import annotations

from ._format import console

__all__ = ["run_demo"]


def run_demo() -> None:
    """Shapes and energy of LeNet-5 and AlexNet on Eyeriss (row-stationary) and on the 45 nm table."""
    from .. import zoo
    from ..energy import estimate
    from ..hardware import load_hardware
    from ..workload import trace
    from .estimate import energy_table, share_lines
    from .summary import summary_table

    for name in ("lenet5", "alexnet"):
        info = zoo.model_info(name)
        workload = trace(zoo.create_model(name), info.input_shape, name=name)
        console.print(summary_table(workload))
        for hardware, dataflow in (("eyeriss", "row_stationary"), ("horowitz45", "weights_once")):
            report = estimate(workload, hardware, dataflow)
            order = tuple(level.name for level in load_hardware(hardware).levels)
            console.print(energy_table(report, level_order=order))
            for line in share_lines(report):
                console.print(line)
        console.print()

"""``dnnergy demo``: the main job end to end on the embedded defaults."""

from __future__ import annotations

from ._format import console

__all__ = ["run_demo"]


def run_demo() -> None:
    """Summaries of LeNet-5 and AlexNet (later steps add energy and compression)."""
    from .. import zoo
    from ..workload import trace
    from .summary import summary_table

    for name in ("lenet5", "alexnet"):
        info = zoo.model_info(name)
        workload = trace(zoo.create_model(name), info.input_shape, name=name)
        console.print(summary_table(workload))

"""``dnnergy demo``: the main job end to end on the embedded defaults (no downloads)."""

from __future__ import annotations

from ._format import console, energy, render

__all__ = ["run_demo"]

#: Quick energy-aware pruning parameters for the demo (the benchmark uses fuller settings).
DEMO_EAP = dict(step=0.2, rounds=1, max_iterations=1, calibration=1500)


def run_demo() -> None:
    """Energy of LeNet-5 and AlexNet, then energy-aware pruning of a trained LeNet-300-100 and its trade-off."""
    _estimates()
    _prune_lenet300()


def _estimates() -> None:
    from .. import zoo
    from ..energy import estimate
    from ..report import energy_table, share_lines, summary_table
    from ..workload import trace
    from ._format import render

    for name in ("lenet5", "alexnet"):
        info = zoo.model_info(name)
        workload = trace(zoo.create_model(name), info.input_shape, name=name)
        console.print(render(summary_table(workload)))
        for hardware, dataflow in (("eyeriss", "row_stationary"), ("horowitz45", "weights_once")):
            report = estimate(workload, hardware, dataflow)
            console.print(render(energy_table(report)))
            for line in share_lines(report):
                console.print(line)
        console.print()


def _prune_lenet300() -> None:
    import dataclasses

    from .. import train
    from ..compress import CompressionContext, run
    from ..data import load_dataset
    from ..explore import pareto_front, tradeoff
    from ..metrics import energy_objective, model_latency
    from ..report import points_table, record_table

    with console.status("LeNet-300-100: training on the MNIST subset (cached after the first run)", spinner="dots"):
        dataset = load_dataset("mnist")
        model = train.pretrained("lenet300")
    context = CompressionContext.build(dataset, hardware="eyeriss", max_accuracy_drop=0.01,
                                       fine_tuning=dataclasses.replace(train.FINE_TUNE, epochs=1))
    with console.status("energy-aware pruning: highest-energy layer first, least-squares restore, fine-tuning", spinner="dots"):
        result = run(model, "eap", context, **DEMO_EAP)
    record = result.record
    console.print("energy-aware pruning of LeNet-300-100 (MNIST subset, budget: 1 point of validation accuracy):")
    console.print(render(record_table(record)))
    horowitz = energy_objective(context.examples, "horowitz45", "weights_once", per_image=True)
    for hw, before, after, unit in (("eyeriss", record.before.energy, record.after.energy, record.after.energy_unit),
                                    ("horowitz45", horowitz(model), horowitz(result.model), horowitz.unit)):
        shown = "" if unit == "pJ" else f" {unit}"  # pJ values print as joules
        console.print(f"  energy per image (batch 1) on {hw}: {energy(before, unit)} -> {energy(after, unit)}{shown}"
                      f" ({before / after:.1f}x less)")
    with console.status("trade-off: magnitude pruning without retraining", spinner="dots"):
        points = tradeoff(model, context.replace(fine_tuning=None), "magnitude", [0.0, 0.5, 0.8, 0.9, 0.95])
        points.append(dataclasses.replace(record.after, label="eap", latency_s=model_latency(result.model, context.examples[:1])))
    console.print(render(points_table(points, "LeNet-300-100 trade-off on eyeriss (per image); * = Pareto front",
                                      pareto_front(points))))

"""``dnnergy demo``: the main job end to end on the embedded defaults (no downloads)."""

from __future__ import annotations

from ._format import console, energy, render_table, si

__all__ = ["run_demo"]

#: A quick energy-aware pruning budget for the demo (the benchmark uses fuller settings).
DEMO_EAP = dict(accuracy_drop=0.01, step=0.2, rounds=1, max_iterations=1)


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
    from functools import partial

    from .. import data
    from ..compress import EAPConfig, energy_aware_prune, energy_objective, magnitude_prune
    from ..explore import measure, pareto_front, tradeoff

    with console.status("LeNet-300-100: training on the MNIST subset (cached after the first run)", spinner="dots"):
        dataset = data.load_dataset("mnist")
        model = data.pretrained("lenet300")
    validation = (dataset.val.tensors[0], dataset.val.tensors[1])
    evaluate = partial(data.evaluate, data=validation)
    images = dataset.val.tensors[0][:32]
    objectives = {hw: energy_objective(images, hw, flow, per_image=True) for hw, flow in (("eyeriss", "row_stationary"), ("horowitz45", "weights_once"))}
    with console.status("energy-aware pruning: highest-energy layer first, least-squares restore, fine-tuning", spinner="dots"):
        pruned, record = energy_aware_prune(
            model, evaluate=evaluate, calibration=dataset.train.tensors[0][:1500], energy_fn=objectives["eyeriss"],
            fine_tune=lambda m, masks: data.fine_tune(m, dataset, masks, epochs=1), config=EAPConfig(**DEMO_EAP))
    console.print(f"energy-aware pruning of LeNet-300-100 (layer order {', '.join(record.order[0])}):")
    console.print(f"  test accuracy {data.evaluate(model, dataset):.2%} -> {data.evaluate(pruned, dataset):.2%}")
    for hw, objective in objectives.items():
        before, after = objective(model), objective(pruned)
        unit = "" if objective.unit == "pJ" else f" {objective.unit}"  # pJ values print as joules
        console.print(f"  energy per image (batch 1) on {hw}: {energy(before, objective.unit)} -> {energy(after, objective.unit)}{unit}"
                      f" ({before / after:.1f}x less)")
    for layer in record.layers:
        console.print(f"  {layer.name}: {layer.sparsity:.0%} of {layer.numel:,} weights removed")
    with console.status("trade-off: magnitude pruning without retraining", spinner="dots"):
        points = tradeoff(model, magnitude_prune, [0.0, 0.5, 0.8, 0.9, 0.95], evaluate, objectives["eyeriss"], example_input=images[:1])
        points.append(measure(pruned, evaluate, objectives["eyeriss"], images[:1], strength=float("nan"), layer="EAP"))
    front = pareto_front(points)
    rows = [("energy-aware" if p.layer == "EAP" else f"magnitude {p.strength:.0%}", "*" if p in front else "", f"{p.accuracy:.2%}",
             si(p.energy), si(p.nonzero_weights), f"{p.latency_s * 1e3:.2f}") for p in points]
    console.print(render_table("LeNet-300-100 trade-off on eyeriss (MAC-normalized per image); * = Pareto front",
                               ["model", "front", "val accuracy", "energy", "nz weights", "latency ms"], rows))

"""``dnnergy demo``: the main job end to end on the embedded defaults (no downloads)."""

from __future__ import annotations

from ._format import console, energy, render

__all__ = ["run_demo"]

#: Quick energy-aware pruning parameters for the demo (the benchmark uses fuller settings).
DEMO_EAP = dict(step=0.2, rounds=1, max_iterations=1, calibration=1500)


def run_demo(quiet: bool = False) -> None:
    """Energy of LeNet-5 and AlexNet, then energy-aware pruning of a trained LeNet-300-100 and its trade-off.

    Progress goes to stderr (:func:`~dnnergy.cli._progress.progress_display`; none when ``quiet``).
    """
    _estimates()
    _prune_lenet300(quiet)


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


#: Sparsities of the demo's trade-off (magnitude pruning, no retraining).
DEMO_SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95)


def _prune_lenet300(quiet: bool) -> None:
    """Energy-aware pruning of LeNet-300-100, then its trade-off against magnitude pruning without retraining.

    The trade-off has no latency column: every point keeps LeNet-300-100's dense shapes
    (pruned weights are zeros in dense matrices), so batch-1 CPU latency is the same for
    all of them and its differences are timer noise (10 ms vs 0.04 ms on a busy machine).
    """
    import dataclasses

    from .. import train
    from ..compress import CompressionContext, run
    from ..data import load_dataset
    from ..explore import pareto_front, tradeoff
    from ..metrics import energy_objective
    from ..report import points_table, record_table
    from ._progress import progress_display, reporter, stepping

    with progress_display(quiet) as progress:
        task = progress.add_task("LeNet-300-100: training on the MNIST subset (cached after the first run)", total=None)
        dataset = load_dataset("mnist")
        model = train.pretrained("lenet300")
        progress.remove_task(task)
        context = CompressionContext.build(dataset, hardware="eyeriss", max_accuracy_drop=0.01,
                                           fine_tuning=dataclasses.replace(train.FINE_TUNE, epochs=1))
        label = "energy-aware pruning: highest-energy layer first, least-squares restore, fine-tuning"
        task = progress.add_task(label)
        result = run(model, "eap", context.replace(progress=reporter(progress, task, label)), **DEMO_EAP)
        progress.remove_task(task)
        label = "trade-off: magnitude pruning without retraining"
        task = progress.add_task(label, total=len(DEMO_SPARSITIES))
        sweep = context.replace(fine_tuning=None, progress=reporter(progress, task, label))
        points = tradeoff(model, sweep, "magnitude", DEMO_SPARSITIES, executor=stepping(sweep), latency=False)
        progress.remove_task(task)
    record = result.record
    console.print("energy-aware pruning of LeNet-300-100 (MNIST subset, budget: 1 point of validation accuracy):")
    console.print(render(record_table(record)))
    horowitz = energy_objective(context.examples, "horowitz45", "weights_once", per_image=True)
    for hw, before, after, unit in (("eyeriss", record.before.energy, record.after.energy, record.after.energy_unit),
                                    ("horowitz45", horowitz(model), horowitz(result.model), horowitz.unit)):
        shown = "" if unit == "pJ" else f" {unit}"  # pJ values print as joules
        console.print(f"  energy per image (batch 1) on {hw}: {energy(before, unit)} -> {energy(after, unit)}{shown}"
                      f" ({before / after:.1f}x less)")
    points = [dataclasses.replace(p, label="magnitude (no retrain)") for p in points]
    points.append(dataclasses.replace(record.after, label="eap (fine-tuned)"))
    title = ("LeNet-300-100 trade-off on eyeriss: magnitude pruning NOT retrained (strength = sparsity) vs "
             "energy-aware pruning with 1 epoch of fine-tuning; * = Pareto front")
    console.print(render(points_table(points, title, pareto_front(points))))
    console.print("No latency column: pruning zeroes weights inside dense matrices, so every model runs the same "
                  "dense work on a CPU (see `dnnergy tradeoff` for measured latency of structured pruning).")

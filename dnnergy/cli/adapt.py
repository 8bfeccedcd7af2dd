"""``dnnergy adapt``: NetAdapt a trained model to a resource budget, with a progress bar per iteration.

Writes the adapted model (``dnnergy.load``-able) to ``--out``, its record to
``OUT.json``, the NetAdapt history to ``OUT.history.json`` and a plot of resource and
accuracy per iteration to ``OUT.png`` (all atomically). After each iteration the run is
checkpointed to ``OUT.checkpoint`` (deleted at the end); ``--resume`` continues a killed run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

__all__ = ["adapt"]


def adapt(
    model: str = typer.Argument(..., help="A zoo name, module.path:factory or a saved .dnnergy model."),
    budget: str = typer.Option(..., "--budget", help="metric=value: energy, latency, macs or weights, as a fraction of "
                                                     "the original (energy=0.5) or, with --absolute, in its unit."),
    out: str = typer.Option(..., "--out", help="Write the adapted model here, its record to OUT.json, the history to "
                                               "OUT.history.json and a plot to OUT.png."),
    data: str = typer.Option("mnist", "--data", help="Training and evaluation data: fashion-mnist, mnist, digits, synthetic."),
    absolute: bool = typer.Option(False, "--absolute", help="The budget value is in the metric's unit (pJ, s, MACs)."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file (energy)."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="Dataflow of the energy estimate."),
    executor: str = typer.Option("local", "--executor", help="Where proposals run: local or ray."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster (default: start Ray here)."),
    step: float = typer.Option(0.1, "--step", help="Resource cut per iteration, a fraction of the original."),
    decay: float = typer.Option(1.0, "--decay", help="The step is multiplied by this every iteration."),
    short_term: int = typer.Option(1024, "--short-term", min=0, help="Training images of each proposal's short-term fine-tuning."),
    epochs: int = typer.Option(3, "--epochs", min=0, help="Epochs of the final (long-term) fine-tuning; 0: no fine-tuning at all."),
    latency_batch: int = typer.Option(1, "--latency-batch", min=1, help="Batch size whose latency is budgeted."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict to start from."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of fine-tuning."),
    json_out: bool = typer.Option(False, "--json", help="Print the history as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no notes on stderr (warnings and errors stay)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint (same options; "
                                                        "one saved after each iteration)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint file (default: OUT.checkpoint; deleted "
                                                                        "once the outputs are written)."),
) -> None:
    """NetAdapt: remove filters and neurons layer by layer until a resource budget is met, then fine-tune."""
    from ..compress import get_method
    from ..explore.netadapt import Budget, History, resource_objective
    from ..io import atomic_write
    from ._format import console
    from ._paths import check_output, check_plot
    from ._resolve import check_energy_options
    from .compress import checkpoint_file, finish_checkpoint, interruptible, prepare, progress_display
    from .compress import write_outputs

    parsed = Budget.parse(budget, absolute=absolute)
    check_energy_options(hardware, dataflow)
    method = get_method("netadapt")
    params = dict(metric=parsed.metric, budget=parsed.value, absolute=absolute, step=step, decay=decay, short_term=short_term,
                  latency_batch=latency_batch, executor=executor, ray_address=ray_address)
    method.check({**{p.name: p.default for p in method.params}, **params})
    for target in (out, f"{out}.json", f"{out}.history.json"):
        check_output(target, "--out")
    check_plot(f"{out}.png", "--out")
    saving = checkpoint_file(out, checkpoint, resume)
    with interruptible(saving), progress_display(quiet) as progress:
        setup = progress.add_task(f"preparing {model} on {data} (training once if not cached)", total=None)
        job = prepare(model, data, hardware, dataflow, weights, epochs=epochs, max_accuracy_drop=None, seed=seed,
                      checkpoint=saving)
        progress.remove_task(setup)
        expected = None if absolute else max(1, math.ceil((1 - parsed.value) / step))
        task = progress.add_task(f"netadapt {budget}", total=expected)

        def report(event) -> None:
            if event.kind == "iterated":
                progress.update(task, advance=1, description=event.message)

        result = method(job.model, job.context.replace(progress=report), **params)
    history = History.from_dict(result.record.info["history"])
    target = Path(out)
    written = write_outputs(out, job, result)
    written.append(atomic_write(target.with_name(target.name + ".history.json"), history.to_json()))
    from ..report.plots import plot_history

    written.append(plot_history(history, target.with_name(target.name + ".png")))
    if json_out:
        typer.echo(history.to_json())
    else:
        for it in history.iterations:
            console.print(f"{it.index:3d}  {it.layer:<20} -{len(it.indices):<4d} {history.metric} {it.resource:.4g} "
                          f"{history.unit}  accuracy ({history.split}) {it.accuracy:.2%}")
        console.print(result.record.summary)
    if parsed.metric == "latency" and not quiet:
        check = resource_objective("latency", job.context, latency_batch=latency_batch).check(result.model)
        typer.echo(f"latency table: predicted {check.predicted_s * 1e3:.3f} ms, measured {check.measured_s * 1e3:.3f} ms "
                   f"at batch {latency_batch} (prediction error {check.error:+.0%})", err=True)
    if history.final.get("resource", math.inf) > history.budget:
        typer.echo(f"warning: the budget is not met ({history.stopped})", err=True)
    for path in written if not quiet else ():
        typer.echo(f"wrote {path}", err=True)
    finish_checkpoint(saving)

"""The ``dnnergy`` command: summary, zoo, estimate, compress, tradeoff, demo.

User errors (a bad shape, an unknown model, a missing file) print one line
``error: ...`` on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..errors import DnnergyError
from ..errors import UserInputError as UserError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Where a neural network spends its energy, and how to make it spend less.")

MODEL_HELP = "A zoo name (see `dnnergy zoo`), an ONNX file, or module.path:factory."


@app.command()
def summary(
    model: str = typer.Argument(..., help=MODEL_HELP),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Example input shape, e.g. 1,3,224,224."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch size (replaces the first dimension)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    csv_out: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
) -> None:
    """Per-layer shapes, MACs, parameters and feature-map sizes, with totals."""
    from ..report import summary_table, unsupported_lines
    from ._format import console, render
    from ._resolve import load_workload, parse_shape
    from .summary import summary_csv

    workload = load_workload(model, parse_shape(input_shape), batch)
    if json_out:
        typer.echo(workload.to_json())
    elif csv_out:
        typer.echo(summary_csv(workload), nl=False)
    else:
        console.print(render(summary_table(workload)))
        for line in unsupported_lines(workload):
            console.print(line)


@app.command()
def estimate(
    model: str = typer.Argument(..., help=MODEL_HELP),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="row_stationary, row_stationary_search (mapper) or weights_once."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch size (replaces the first dimension)."),
    bits: Optional[str] = typer.Option(None, "--bits", help="Weight and activation bits, e.g. 8,8."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Measure sparsity on mnist, digits or random data."),
    zero_mode: str = typer.Option("gate", "--zero-mode", help="Zero operands: gate, skip or none."),
    coding: str = typer.Option("rlc", "--coding", help="DRAM coding of sparse data: rlc, zero_flag or none."),
    non_mac: str = typer.Option("price", "--non-mac", help="Pooling, element-wise, norm layers: price or exclude."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Example input shape, e.g. 1,3,224,224."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    csv_out: bool = typer.Option(False, "--csv", help="Print the records as CSV."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a per-layer breakdown plot (PNG)."),
) -> None:
    """Energy per layer, split into computation and data movement per level and data type."""
    from .. import energy as energy_pkg
    from ..report import energy_table, plot_breakdown, share_lines
    from ._format import console, render
    from ._resolve import load_model, load_workload, parse_shape
    from .estimate import parse_bits, profile_input

    shape = parse_shape(input_shape)
    if profile is not None:
        if model.lower().endswith(".onnx"):
            raise UserError("--profile needs a PyTorch model (a zoo name or module.path:factory), not an ONNX file")
        net, net_shape, name = load_model(model, shape, batch)
        workload = energy_pkg.profile(net, profile_input(profile, net_shape), name=name)
    else:
        workload = load_workload(model, shape, batch)
    report = energy_pkg.estimate(workload, hardware, dataflow, bits=parse_bits(bits), zero_mode=zero_mode, coding=coding, non_mac=non_mac)
    if json_out:
        typer.echo(report.to_json())
    elif csv_out:
        typer.echo(report.to_csv(), nl=False)
    else:
        console.print(render(energy_table(report, per=workload.batch)))
        for line in share_lines(report):
            console.print(line)
    if plot:
        path = plot_breakdown(report, plot)
        typer.echo(f"wrote {path}", err=True)


@app.command()
def compress(
    model: str = typer.Argument(..., help=MODEL_HELP),
    method: str = typer.Option(..., "--method", help="eap, magnitude, structured or eliminate."),
    data: str = typer.Option("mnist", "--data", help="Training and evaluation data: mnist, digits or synthetic."),
    max_accuracy_drop: float = typer.Option(1.0, "--max-accuracy-drop", min=0.0, help="Largest validation accuracy loss, in points."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="Dataflow of the energy estimate."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict to start from (default: train once and cache)."),
    sparsity: str = typer.Option("0.5,0.75,0.9,0.95", "--sparsity", help="magnitude: the prune/retrain schedule."),
    ratio: float = typer.Option(0.5, "--ratio", help="structured (l1/l2/reconstruction): fraction of channels removed."),
    criterion: str = typer.Option("energy", "--criterion", help="structured: l1, l2, reconstruction or energy."),
    layer: Optional[str] = typer.Option(None, "--layer", help="eliminate: the hidden layer to simplify (default: the first Linear); several, comma-separated, "
                                         "and 'inputs' (the input features) run the energy-guided search over all of them."),
    epochs: int = typer.Option(3, "--epochs", min=0, help="Fine-tuning epochs per step."),
    out: Optional[str] = typer.Option(None, "--out", help="Write the compressed model here (and FILE.json)."),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Compress a trained model within an accuracy budget and report the energy it saves."""
    import json
    import time

    from ._format import console, energy as fmt_energy
    from ._resolve import parse_fractions
    from .compress import run_compress, save_compressed, summarize, watched_job

    schedule = parse_fractions(sparsity, "--sparsity")
    with watched_job(model, data, hardware, dataflow, weights, f"{method} on {model}") as job:
        start = time.perf_counter()
        options = {"schedule": schedule, "ratio": ratio, "criterion": criterion, "layer": layer, "epochs": epochs}
        compressed, details = run_compress(job, method, max_accuracy_drop / 100, options)
    summary = summarize(job, job.model, compressed, method, time.perf_counter() - start, details)
    if json_out:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        unit = summary["unit"]
        console.print(f"{model} / {method}: test accuracy {summary['accuracy_before']:.2%} -> {summary['accuracy_after']:.2%}")
        console.print(f"non-zero weights {summary['nonzero_weights_before']:,} -> {summary['nonzero_weights_after']:,}"
                      f" (of {summary['weights_after']:,} after)")
        console.print(f"energy per image at batch 1 ({hardware}, {dataflow}) {fmt_energy(summary['energy_before'], unit)} -> "
                      f"{fmt_energy(summary['energy_after'], unit)} {unit}: {summary['energy_reduction']:.2f}x less, in {summary['seconds']:.1f} s")
    if out:
        for path in save_compressed(out, compressed, summary):
            typer.echo(f"wrote {path}", err=True)


@app.command()
def tradeoff(
    model: str = typer.Argument(..., help=MODEL_HELP),
    method: str = typer.Option("magnitude", "--method", help="magnitude (strength = sparsity) or structured (channel ratio)."),
    strengths: str = typer.Option("0,0.5,0.75,0.9,0.95", "--strengths", help="Comma-separated strengths to sweep."),
    data: str = typer.Option("mnist", "--data", help="mnist, digits or synthetic."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="Dataflow of the energy estimate."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict to start from (default: train once and cache)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write accuracy vs energy with the Pareto front (PNG)."),
    json_out: bool = typer.Option(False, "--json", help="Print the points as JSON."),
) -> None:
    """Sweep a method's strength: energy, accuracy, weights, MACs, CPU latency per point, and the Pareto front."""
    import json

    from ..explore import pareto_front
    from ..report import plot_tradeoff
    from ._format import console, render_table, si
    from ._resolve import parse_fractions
    from .compress import run_tradeoff, watched_job

    values = parse_fractions(strengths, "--strengths")
    with watched_job(model, data, hardware, dataflow, weights, f"sweeping {method}") as job:
        points = run_tradeoff(job, method, values)
    front = pareto_front(points)
    if json_out:
        typer.echo(json.dumps({"points": [p.to_dict() for p in points], "pareto": [p.strength for p in front]}, indent=1))
    else:
        rows = [(f"{p.strength:g}", "*" if p in front else "", f"{p.accuracy:.2%}", si(p.energy), si(p.nonzero_weights), si(p.nonzero_macs),
                 f"{p.latency_s * 1e3:.2f}", si(p.size_bytes)) for p in points]
        console.print(render_table(f"{model} / {method} on {hardware} ({job.energy_fn.unit}); * = Pareto front",
                                   ["strength", "front", "val accuracy", "energy", "nz weights", "nz MACs", "latency ms", "bytes"], rows))
    if plot:
        path = plot_tradeoff({method: [(p.energy, p.accuracy) for p in points]}, plot, xlabel=f"energy per image ({job.energy_fn.unit})",
                             front=[(p.energy, p.accuracy) for p in front])
        typer.echo(f"wrote {path}", err=True)


@app.command()
def zoo() -> None:
    """List the architectures in the zoo with their input shapes and published figures."""
    from ..report import zoo_table
    from ._format import console, render

    console.print(render(zoo_table()))


@app.command()
def demo() -> None:
    """Run the main job end to end on built-in defaults (no downloads)."""
    from .demo import run_demo

    run_demo()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dnnergy`` script: user errors exit 2 with one line, no traceback.

    Usage errors are handled by typer itself (standalone mode, exit 2); errors dnnergy
    raises on purpose are caught here.
    """
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    try:
        app(args=argv, prog_name="dnnergy")
    except DnnergyError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        typer.echo(f"error: file not found: {exc.filename}", err=True)
        sys.exit(2)

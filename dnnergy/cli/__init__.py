"""The ``dnnergy`` command: summary, zoo, estimate, methods, compress, tradeoff, adapt, report, demo.

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

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Where a neural network spends its energy, and how to make it spend less.")

MODEL_HELP = "A zoo name (see `dnnergy zoo`), an ONNX file, or module.path:factory."


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"dnnergy {version('dnnergy')}")
        raise typer.Exit()


#: Examples under each command's --help.
_EXAMPLES = {
    "summary": ["dnnergy summary resnet50", "dnnergy summary model.onnx --json",
                "dnnergy summary mypkg.models:build --input-shape 1,3,32,32"],
    "estimate": ["dnnergy estimate alexnet", "dnnergy estimate alexnet --hardware horowitz45 --dataflow weights_once",
                 "dnnergy estimate lenet5 --profile mnist --bits 8,8 --zero-mode skip --plot lenet5.png"],
    "compress": ["dnnergy compress lenet300 --method magnitude --sparsity 0.5,0.8,0.9 --out small.dnnergy",
                 "dnnergy compress lenet5 --data fashion-mnist --method eap --out eap.dnnergy",
                 "dnnergy compress lenet5 --data fashion-mnist --method eap --out eap.dnnergy --resume   (after Ctrl-C)",
                 "dnnergy compress lenet300 --method magnitude,quantize --sparsity 0.9 --scheme uniform --bits 4 --qat"],
    "tradeoff": ["dnnergy tradeoff lenet300 --method magnitude --strengths 0,0.5,0.9 --plot curve.png",
                 "dnnergy tradeoff lenet5 --method structured --strengths 0.25,0.5 --json > sweep.json"],
    "methods": ["dnnergy methods", "dnnergy methods 'q*'"],
    "zoo": ["dnnergy zoo"],
    "demo": ["dnnergy demo", "dnnergy demo --quiet"],
    "adapt": ["dnnergy adapt lenet5 --budget energy=0.5 --out lenet5-small.dnnergy",
              "dnnergy adapt lenet300 --budget latency=0.7 --out fast.dnnergy"],
    "report": ["dnnergy report alexnet -o alexnet.html",
               "dnnergy report lenet300 --records sweep.json --records small.dnnergy.json -o lenet300.html"],
}


def _examples(command: str) -> str:
    """The --help epilog of ``command`` (``\\b`` keeps click from rewrapping the lines)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in _EXAMPLES[command])


def _trust_architecture(reference: Optional[str]) -> None:
    if reference:
        from ..compress.artifact import trust_factory
        from ._resolve import importable_from_cwd

        trust_factory(reference)
        importable_from_cwd()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    architecture: Optional[str] = typer.Option(
        None, "--architecture", callback=_trust_architecture, metavar="module.path:factory",
        help="Allow saved .dnnergy models built by this factory to be rebuilt (it runs your code; a file alone "
             "never makes dnnergy import code)."),
) -> None:
    """Where a neural network spends its energy, and how to make it spend less."""


def _one_format(json_out: bool, csv_out: bool) -> None:
    """Refuse ``--json`` together with ``--csv`` (each replaces the table; only one can)."""
    if json_out and csv_out:
        raise UserError("--json and --csv exclude each other: give one")


@app.command(epilog=_examples('summary'))
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

    _one_format(json_out, csv_out)
    workload = load_workload(model, parse_shape(input_shape), batch)
    if json_out:
        typer.echo(workload.to_json())
    elif csv_out:
        typer.echo(summary_csv(workload), nl=False)
    else:
        console.print(render(summary_table(workload)))
        for line in unsupported_lines(workload):
            console.print(line)


@app.command(epilog=_examples('estimate'))
def estimate(
    model: str = typer.Argument(..., help=MODEL_HELP),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="row_stationary, row_stationary_search (mapper) or weights_once."),
    batch: Optional[int] = typer.Option(None, "--batch", min=1, help="Batch size (replaces the first dimension)."),
    bits: Optional[str] = typer.Option(None, "--bits", help="Weight and activation bits, e.g. 8,8."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Measure sparsity on mnist, digits or random data."),
    zero_mode: Optional[str] = typer.Option(None, "--zero-mode", help="Zero operands: gate, skip or none (default: what the hardware declares, else gate)."),
    coding: Optional[str] = typer.Option(None, "--coding", help="DRAM coding of sparse data: rlc, zero_flag, bitmask, csc or none (default: what the hardware declares, else rlc)."),
    non_mac: str = typer.Option("price", "--non-mac", help="Pooling, element-wise, norm layers: price or exclude."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Example input shape, e.g. 1,3,224,224."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    csv_out: bool = typer.Option(False, "--csv", help="Print the records as CSV."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write a per-layer breakdown plot (PNG)."),
) -> None:
    """Energy per layer, split into computation and data movement per level and data type."""
    from .. import energy as energy_pkg
    from ..report import energy_table, plot_breakdown, share_lines
    from ._resolve import check_energy_options, load_model, load_workload, parse_shape
    from ._paths import check_plot
    from .estimate import parse_bits, profile_input

    _one_format(json_out, csv_out)
    if plot:
        check_plot(plot)
    shape = parse_shape(input_shape)
    bit_widths = parse_bits(bits)
    check_energy_options(hardware, dataflow)
    if profile is not None:
        if model.lower().endswith(".onnx"):
            raise UserError("--profile needs a PyTorch model (a zoo name or module.path:factory), not an ONNX file")
        resolved = load_model(model, shape, batch)
        workload = energy_pkg.profile(resolved.model, profile_input(profile, resolved.shape), name=resolved.name)
    else:
        workload = load_workload(model, shape, batch)
    report = energy_pkg.estimate(workload, hardware, dataflow, bits=bit_widths, zero_mode=zero_mode, coding=coding, non_mac=non_mac)
    if json_out:
        typer.echo(report.to_json())
    elif csv_out:
        typer.echo(report.to_csv(), nl=False)
    else:
        from ._format import console, render  # rich only for tables

        console.print(render(energy_table(report, per=workload.batch)))
        for line in share_lines(report):
            console.print(line)
    if plot:
        path = plot_breakdown(report, plot)
        typer.echo(f"wrote {path}", err=True)


_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command(context_settings=_EXTRA, epilog=_examples('compress'))
def compress(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=MODEL_HELP + " Also a saved .dnnergy model."),
    method: str = typer.Option(..., "--method", help="A registered method, or several comma-separated to chain "
                                                    "(see `dnnergy methods`); its parameters follow as --name value."),
    data: str = typer.Option("mnist", "--data", help="Training and evaluation data: fashion-mnist, mnist, digits, synthetic, or idx:DIR (an MNIST-style IDX directory)."),
    max_accuracy_drop: float = typer.Option(1.0, "--max-accuracy-drop", min=0.0, max=100.0,
                                            help="Largest validation accuracy loss, in points."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="Dataflow of the energy estimate."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict to start from (default: the cached pretrained LeNets on mnist and fashion-mnist; any other model is trained now)."),
    epochs: int = typer.Option(3, "--epochs", min=0, help="Fine-tuning epochs each time a method retrains (0: never)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of fine-tuning."),
    out: Optional[str] = typer.Option(None, "--out", help="Save the compressed model here (reload with dnnergy.load; "
                                                          "summary/estimate read it) and its record as FILE.json."),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no notes on stderr (warnings and errors stay)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint (same options; "
                                                        "one saved after each finished step)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint file of eap, eliminate and netadapt (default: OUT.checkpoint with --out; deleted on success)."),
) -> None:
    """Compress a trained model within an accuracy budget and report the energy it saves.

    Method parameters are options named after them, e.g. `--method magnitude --sparsity
    0.5,0.9 --scope global` or `--method structured --criterion l1 --ratio 0.5`.
    """
    from ..compress import check_params, parse_chain, run
    from ..report import budget_lines, record_table
    from ._format import console, render
    from ._params import method_options
    from ._paths import check_output
    from ._resolve import check_energy_options
    from .compress import checkpoint_file, finish_checkpoint, interruptible, watched_job, write_outputs

    check_energy_options(hardware, dataflow)
    chain = parse_chain(method)
    params = method_options(ctx.args, chain)
    check_params(chain, params)  # bad values fail here, before a model is loaded or trained
    for target in (out, f"{out}.json") if out else ():
        check_output(target, "--out")
    saving = checkpoint_file(out, checkpoint, resume, method)
    options = dict(data=data, hardware=hardware, dataflow=dataflow, weights=weights, epochs=epochs,
                   max_accuracy_drop=max_accuracy_drop / 100, seed=seed, checkpoint=saving)
    with interruptible(saving), watched_job(model, f"{method} on {model}", quiet=quiet, **options) as job:
        result = run(job.model, chain, job.context, **params)
    if json_out:
        typer.echo(result.record.to_json())
    else:
        console.print(render(record_table(result.record)))
        reduction = result.record.energy_reduction
        console.print(f"energy per image at batch 1 ({hardware}, {dataflow}): {reduction:.2f}x less, in {result.record.seconds:.1f} s")
    for line in budget_lines(result.record):
        typer.echo(f"warning: {line}", err=True)
    if out:
        for path in write_outputs(out, job, result):
            if not quiet:
                typer.echo(f"wrote {path}", err=True)
    finish_checkpoint(saving)


@app.command(context_settings=_EXTRA, epilog=_examples('tradeoff'))
def tradeoff(
    ctx: typer.Context,
    model: str = typer.Argument(..., help=MODEL_HELP),
    method: str = typer.Option("magnitude", "--method", help="A registered method with a strength (see `dnnergy methods`)."),
    strengths: str = typer.Option("0,0.5,0.75,0.9,0.95", "--strengths", help="Comma-separated strengths to sweep."),
    data: str = typer.Option("mnist", "--data", help="fashion-mnist, mnist, digits, synthetic, or idx:DIR (an MNIST-style IDX directory)."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="Dataflow of the energy estimate."),
    weights: Optional[str] = typer.Option(None, "--weights", help="A state_dict to start from (default: the cached pretrained LeNets on mnist and fashion-mnist; any other model is trained now)."),
    epochs: int = typer.Option(0, "--epochs", min=0, help="Fine-tuning epochs per point (0: none)."),
    plot: Optional[str] = typer.Option(None, "--plot", help="Write accuracy vs energy with the Pareto front (PNG)."),
    json_out: bool = typer.Option(False, "--json", help="Print the points as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no notes on stderr (warnings and errors stay)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its checkpoint (same options; "
                                                        "one saved after each finished step)."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="Checkpoint file, saved after each point (default: PLOT.checkpoint with --plot; deleted on success)."),
) -> None:
    """Sweep a method's strength: energy, accuracy, weights, MACs, CPU latency per point, and the Pareto front."""
    import json

    from ..compress import get_method
    from ..explore import pareto_front
    from ..explore import tradeoff as sweep
    from ..report import points_table
    from ..report.plots import plot_sweep
    from ._format import console, render
    from ._params import convert, method_options
    from ._paths import check_plot
    from ._progress import stepping
    from ._resolve import check_energy_options
    from .compress import checkpoint_file, finish_checkpoint, interruptible, watched_job

    if plot:
        check_plot(plot)
    check_energy_options(hardware, dataflow)
    spec = get_method(method)
    if spec.strength is None:
        raise UserError(f"--method {method}: it has no strength to sweep (see `dnnergy methods`)")
    params = method_options(ctx.args, [spec])
    annotation = next(p.annotation for p in spec.params if p.name == spec.strength)
    values = [convert(v, annotation, spec.strength) for v in strengths.split(",") if v.strip()]
    if not values:
        raise UserError(f"--strengths takes comma-separated values of {spec.strength} (got {strengths!r})")
    for value in values:  # bad values fail here, before a model is loaded or trained
        spec.check({**params, spec.strength: value})
    saving = checkpoint_file(plot, checkpoint, resume)
    options = dict(data=data, hardware=hardware, dataflow=dataflow, weights=weights, epochs=epochs, max_accuracy_drop=None,
                   checkpoint=saving)
    with interruptible(saving), watched_job(model, f"sweeping {method}", steps=len(values), quiet=quiet, **options) as job:
        points = sweep(job.model, job.context, method, values, params=params, executor=stepping(job.context))
    front = pareto_front(points)
    if json_out:
        from .. import __version__

        run = {"model": model, "method": method, "data": data, "hardware": hardware, "dataflow": dataflow,
               "seed": job.context.seed, "version": __version__}
        typer.echo(json.dumps({**run, "points": [p.to_dict() for p in points], "pareto": [p.strength for p in front]},
                              indent=1))
    else:
        console.print(render(points_table(points, f"{model} / {method} ({spec.strength}) on {hardware}; * = Pareto front", front)))
    if plot:
        path = plot_sweep(points, plot, f"{model}: {method} ({spec.strength}) on {data}, {hardware} ({dataflow})", front)
        if not quiet:
            typer.echo(f"wrote {path}", err=True)
    finish_checkpoint(saving)


@app.command(epilog=_examples('methods'))
def methods(pattern: str = typer.Argument("*", help="Only names matching this wildcard pattern.")) -> None:
    """List the compression methods with their parameters and defaults."""
    from ..catalog import method_entries  # plain data: no torch (tests/cli/test_catalog.py keeps it current)

    for spec in method_entries(pattern):
        sweep = f" (sweeps --{spec.strength.replace('_', '-')})" if spec.strength else ""
        typer.echo(f"{spec.name}{sweep}: {spec.summary}")
        for p in spec.params:
            typer.echo(f"    --{p.name.replace('_', '-')} {p.default}    ({p.accepts})")


@app.command(epilog=_examples('zoo'))
def zoo() -> None:
    """List the architectures in the zoo with their input shapes and published figures."""
    from ..catalog import zoo_entries  # plain data: no torch (tests/cli/test_catalog.py keeps it current)
    from ..report import zoo_table
    from ._format import console, render

    console.print(render(zoo_table(zoo_entries())))


@app.command(epilog=_examples('demo'))
def demo(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no notes on stderr (warnings and errors stay)."),
) -> None:
    """Run the main job end to end on built-in defaults (no downloads)."""
    from .demo import run_demo

    run_demo(quiet=quiet)


from .adapt import adapt as _adapt  # noqa: E402  (its own module: NetAdapt's options and outputs)

app.command(name="adapt", epilog=_examples("adapt"))(_adapt)

from .report import report as _report  # noqa: E402  (its own module: the HTML report's options)

app.command(name="report", epilog=_examples("report"))(_report)


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
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:  # a path no up-front check could foresee
        typer.echo(f"error: {exc.filename}: {exc.strerror}", err=True)
        sys.exit(2)

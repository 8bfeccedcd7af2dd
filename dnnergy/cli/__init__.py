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
    from ._format import console
    from ._resolve import load_workload, parse_shape
    from .summary import summary_csv, summary_table, unsupported_lines

    workload = load_workload(model, parse_shape(input_shape), batch)
    if json_out:
        typer.echo(workload.to_json())
    elif csv_out:
        typer.echo(summary_csv(workload), nl=False)
    else:
        console.print(summary_table(workload))
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
    from ..report import plot_breakdown
    from ._format import console
    from ._resolve import load_model, load_workload, parse_shape
    from .estimate import energy_table, parse_bits, profile_input, share_lines

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
        from ..hardware import load_hardware

        order = tuple(level.name for level in load_hardware(hardware).levels)
        console.print(energy_table(report, per=workload.batch, level_order=order))
        for line in share_lines(report):
            console.print(line)
    if plot:
        path = plot_breakdown(report, plot)
        typer.echo(f"wrote {path}", err=True)


@app.command()
def zoo() -> None:
    """List the architectures in the zoo with their input shapes and published figures."""
    from ._format import console
    from .summary import zoo_table

    console.print(zoo_table())


@app.command()
def demo() -> None:
    """Run the main job end to end on built-in defaults (no downloads)."""
    from .demo import run_demo

    run_demo()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``dnnergy`` script: user errors exit 2 with one line, no traceback."""
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    try:
        app(args=argv, standalone_mode=False)
    except DnnergyError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except FileNotFoundError as exc:
        typer.echo(f"error: file not found: {exc.filename}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise

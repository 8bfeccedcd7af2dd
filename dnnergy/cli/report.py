"""``dnnergy report``: one self-contained HTML page of a model's energy (``dnnergy.report.html``).

Everything that can be refused (the output path, the records files, the hardware and
dataflow, the ``--compare`` names) is checked before a model is traced; a records file of
another model than MODEL is plotted with a warning, on stderr and next to its curve. The
lightweight-model comparison (seed 004: AlexNet, SqueezeNet, GoogLeNet, MobileNet,
ShuffleNet) is on by default: it traces those models at batch 1 and takes a few seconds;
``--no-zoo`` leaves those five out, ``--compare`` adds models.
"""

from __future__ import annotations

from typing import List, Optional

import typer

__all__ = ["report"]


def report(
    model: str = typer.Argument(..., help="A zoo name (see `dnnergy zoo`), an ONNX file, module.path:factory or a saved .dnnergy model."),
    out: str = typer.Option(..., "-o", "--out", help="The HTML file to write (one self-contained page)."),
    hardware: str = typer.Option("eyeriss", "--hardware", help="A preset (eyeriss, horowitz45) or a YAML file."),
    dataflow: str = typer.Option("row_stationary", "--dataflow", help="row_stationary, row_stationary_search (mapper) or weights_once."),
    profile: Optional[str] = typer.Option(None, "--profile", help="Measure sparsity on mnist, digits or random data."),
    compare: List[str] = typer.Option([], "--compare", help="Another model to set side by side (repeat, or comma-separate)."),
    zoo: bool = typer.Option(True, "--zoo/--no-zoo", help="Include seed 004's lightweight models in the comparison."),
    records: List[str] = typer.Option([], "--records", help="A record (compress/adapt --out FILE.json) or a `tradeoff --json` "
                                                             "output to plot accuracy against energy (repeat)."),
    input_shape: Optional[str] = typer.Option(None, "--input-shape", help="Example input shape, e.g. 1,3,224,224."),
) -> None:
    """Write an HTML report: energy per layer by data type and level, shares of energy vs MACs and weights,
    bitwidth and sparsity, models side by side, and compression trade-offs with their Pareto fronts."""
    from ..errors import UserInputError
    from ..hardware import load_hardware
    from ..report.html import write_report
    from ..report.records import load_results
    from ._paths import check_output
    from ._resolve import check_energy_options

    check_output(out, "--out")
    results = load_results(records) if records else None
    check_energy_options(hardware, dataflow)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserInputError("the HTML report draws its charts with matplotlib: pip install 'dnnergy[plot]'") from None
    others = [spec.strip() for item in compare for spec in item.split(",") if spec.strip()]
    _check_specs(others)
    workload, estimate = _subject(model, hardware, dataflow, profile, input_shape)
    costs = _comparison(model, workload, estimate, [*(_zoo() if zoo else ()), *others], hardware, dataflow)
    aliases = _aliases(model)
    if results is not None:
        _say_models(results, [workload.name, *aliases])
    path = write_report(out, workload, estimate, word_bits=load_hardware(hardware).word_bits, comparison=costs, results=results,
                        aliases=aliases)
    typer.echo(f"wrote {path}", err=True)


def _check_specs(specs: list[str]) -> None:
    """Refuse a ``--compare`` model that is not a zoo name, an existing ONNX or saved model file, or of the form
    ``module.path:factory`` before any model is traced: one error naming it, with the zoo names close to it."""
    from ..errors import UserInputError
    from ._resolve import check_model_spec

    for spec in specs:
        try:
            check_model_spec(spec)
        except UserInputError as exc:
            raise UserInputError(f"--compare {spec}: {exc}") from None


def _aliases(model: str) -> list[str]:
    """The other name a saved ``.dnnergy`` model goes by: the architecture it was built from (``lenet300`` for a
    pruned LeNet-300 saved as ``small.dnnergy``), which its compression records name; none for other models."""
    from ..compress.artifact import KIND, architecture_of
    from ..io import read_container
    from ._resolve import is_saved_model

    if not is_saved_model(model):
        return []
    built = architecture_of(read_container(model, kind=KIND).header["architecture"])
    return [built.get("zoo") or built["factory"]]


def _say_models(results, names: list[str]) -> None:
    """On stderr: a warning for each ``--records`` file of another model, a note for each that names none."""
    from ..report.records import model_lines

    warnings, notes = model_lines(results, names)
    for method, lines in warnings.items():
        for line in lines:
            typer.echo(f"warning: --records: the curve {method}: {line}", err=True)
    for line in notes:
        typer.echo(f"note: --records {line}", err=True)


def _zoo() -> tuple[str, ...]:
    from ..report.compare import LIGHTWEIGHT_MODELS

    return LIGHTWEIGHT_MODELS


def _subject(model: str, hardware: str, dataflow: str, profile: str | None, input_shape: str | None):
    """The model's workload (profiled on real data with ``--profile``) and its energy estimate."""
    from .. import energy
    from ..errors import UserInputError
    from ._resolve import load_model, load_workload, parse_shape
    from .estimate import profile_input

    shape = parse_shape(input_shape)
    if profile is not None:
        if model.lower().endswith(".onnx"):
            raise UserInputError("--profile needs a PyTorch model (a zoo name or module.path:factory), not an ONNX file")
        resolved = load_model(model, shape)
        workload = energy.profile(resolved.model, profile_input(profile, resolved.shape), name=resolved.name)
    else:
        workload = load_workload(model, shape)
    return workload, energy.estimate(workload, hardware, dataflow)


def _comparison(model: str, workload, estimate, specs: list[str], hardware: str, dataflow: str):
    """Costs of ``specs`` (each once, in order, at batch 1) plus this report's model, which is reused rather than
    traced again."""
    from ..report.compare import compare_models, model_cost
    from ._resolve import load_workload

    if not specs:
        return []
    names = list(dict.fromkeys([*specs, model]))
    workloads = {spec: load_workload(spec, batch=1) for spec in names if spec != model}
    others = dict(zip(workloads, compare_models(list(workloads.values()), hardware, dataflow)))
    return [model_cost(workload, estimate) if spec == model else others[spec] for spec in names]

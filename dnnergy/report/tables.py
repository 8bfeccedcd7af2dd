"""Report tables as plain values: per-layer shapes and counts, per-layer energy, the zoo, compression records, trade-off points.

A :class:`Table` keeps numbers as numbers (cells are str, int, float or None) and writes
units into the column headers (``"total (pJ)"``, ``"share (%)"``); front ends decide how
to show them (the CLI renders them with rich through ``dnnergy.cli._format.render``), and
``to_csv``/``to_json`` are the machine forms.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

from typing import TYPE_CHECKING, Sequence

from .breakdown import layer_breakdown

if TYPE_CHECKING:
    from ..catalog import ZooEntry
    from ..compress import Record
    from ..energy import EnergyReport
    from ..metrics import Point
    from ..workload import Layer, Workload

__all__ = ["Cell", "Table", "summary_table", "energy_table", "zoo_table", "record_table", "points_table",
           "unsupported_lines", "share_lines", "budget_lines", "unit_note"]

#: One table cell: text, a number in its column's unit, or None (empty).
Cell = str | int | float | None

_UNIT = re.compile(r" \(([^()]+)\)$")


def _cells(cells: object, width: int, where: str) -> tuple[Cell, ...]:
    """``cells`` as a tuple of ``width`` plain values, or ValueError naming ``where``."""
    cells = tuple(cells)
    if len(cells) != width:
        raise ValueError(f"Table: {where} has {len(cells)} cells for {width} columns")
    for cell in cells:
        if cell is not None and (isinstance(cell, bool) or not isinstance(cell, (str, int, float))):
            raise ValueError(f"Table: {where} has {cell!r}; cells must be str, int, float or None")
    return cells


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table of plain values: header ``columns``, ``rows`` of cells, an optional ``footer`` of totals and ``notes``.

    Cells are str, int, float or None (empty). A column's unit is the header's trailing
    ``" (unit)"`` (``"energy (pJ)"``, ``"share (%)"``, read back by :attr:`units`); count
    columns are named after what they count (``"MACs"``, ``"params"``) and need none. The
    footer is not a row: records, frames and CSV hold the rows only. ``notes`` are lines
    a reader needs under the table (what the columns and units mean, per image or per
    batch). Example:
    ``Table("fc", ("layer", "MACs"), [("fc1", 784 * 300)]).to_records() == [{"layer": "fc1", "MACs": 235200}]``,
    and with a unit column:

    >>> table = Table("fc", ("layer", "MACs", "energy (pJ)"), [("fc1", 235200, 1.5e6)])
    >>> table.units
    ('', '', 'pJ')
    >>> table.to_frame().shape, table.to_csv().splitlines()[1]
    ((1, 3), 'fc1,235200,1500000.0')
    >>> import json; json.loads(table.to_json())["rows"]
    [{'layer': 'fc1', 'MACs': 235200, 'energy (pJ)': 1500000.0}]
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    footer: tuple[Cell, ...] | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.title, str):
            raise ValueError(f"Table: title must be a str (got {self.title!r})")
        columns = tuple(self.columns)
        if not columns or not all(isinstance(c, str) and c for c in columns) or len(set(columns)) != len(columns):
            raise ValueError(f"Table {self.title!r}: columns must be distinct non-empty strings (got {columns!r})")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", tuple(_cells(row, len(columns), f"{self.title!r} row {i}") for i, row in enumerate(self.rows)))
        if self.footer is not None:
            object.__setattr__(self, "footer", _cells(self.footer, len(columns), f"{self.title!r} footer"))
        notes = (self.notes,) if isinstance(self.notes, str) else tuple(self.notes)
        if not all(isinstance(note, str) for note in notes):
            raise ValueError(f"Table {self.title!r}: notes must be strings (got {self.notes!r})")
        object.__setattr__(self, "notes", notes)

    @property
    def units(self) -> tuple[str, ...]:
        """Each column's unit from its header (``"total (pJ)" -> "pJ"``), ``""`` for text and count columns."""
        return tuple(match.group(1) if (match := _UNIT.search(c)) else "" for c in self.columns)

    def column(self, header: str) -> list[Cell]:
        """The cells of the column named ``header``, row by row. Example: a table with columns ("layer", "MACs") and
        rows ("fc1", 235200), ("fc2", 30000) gives ``table.column("MACs") == [235200, 30000]``."""
        index = self.columns.index(header)
        return [row[index] for row in self.rows]

    def to_records(self) -> list[dict[str, Cell]]:
        """One dict per row keyed by column header, numbers unformatted (``[{"layer": "fc1", "MACs": 235200}]``)."""
        return [dict(zip(self.columns, row)) for row in self.rows]

    def to_frame(self):
        """The rows as a pandas DataFrame whose columns are the headers (units included)."""
        import pandas as pd

        return pd.DataFrame.from_records(list(self.rows), columns=list(self.columns))

    def to_csv(self) -> str:
        """CSV text: the header line, then one line per row; numbers in full (``235200``), None as an empty field."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def to_json(self) -> str:
        """JSON text: ``title``, ``columns``, ``units``, ``rows`` (the records), ``footer`` (a record or null) and ``notes``."""
        footer = dict(zip(self.columns, self.footer)) if self.footer is not None else None
        return json.dumps({"title": self.title, "columns": list(self.columns), "units": list(self.units),
                           "rows": self.to_records(), "footer": footer, "notes": list(self.notes)}, indent=1)


def _shape(layer: Layer) -> tuple[str, str, str]:
    """Input ``CxHxW``, output ``MxExF`` and the kernel (``5x5``, ``2x2/s2 g20``, empty for 1x1)."""
    kernel = f"{layer.R}x{layer.S}" if layer.R * layer.S > 1 else ""
    if layer.stride != (1, 1):
        kernel += f"/s{layer.stride[1]}"
    if layer.groups > 1:
        kernel += f" g{layer.groups}"
    return f"{layer.C}x{layer.H}x{layer.W}", f"{layer.M}x{layer.E}x{layer.F}", kernel


def summary_table(workload: Workload) -> Table:
    """Per-layer shapes and counts (MACs, other ops, learned params, ifmap and ofmap elements) with totals.

    The params total counts shared parameters once (:attr:`Workload.params`); the other
    totals are sums over the rows. Example: ``trace(nn.Linear(784, 300), (1, 784))`` gives
    one row ``("addmm", "fc", "784x1x1", "300x1x1", "", 235200, 0, 235500, 784, 300)``
    (784 * 300 MACs; 235,200 weights + 300 biases).
    """
    rows = [(layer.name, layer.kind.value, *_shape(layer), layer.macs, layer.ops, layer.params, layer.ifmap, layer.ofmap)
            for layer in workload]
    totals = workload.totals()
    footer = ("total", f"{len(rows)} layers", None, None, None, totals["macs"], sum(layer.ops for layer in workload),
              totals["params"], totals["ifmap"], totals["ofmap"])
    shapes = ", ".join(str(shape) for shape in workload.input_shapes)
    columns = ("layer", "kind", "in CxHxW", "out MxExF", "kernel", "MACs", "ops", "params", "ifmap", "ofmap")
    batch = workload.batch
    notes = (f"Counts for {'one image (batch 1)' if batch == 1 else f'the whole batch of {batch} images'}: MACs = "
             "multiply-accumulates; ops = other operations (pooling, activations, element-wise, norms); params = learned "
             "weights and biases; ifmap / ofmap = elements of the input / output feature maps (activations) a layer reads "
             "/ writes. in CxHxW = channels x height x width; kernel RxS, /s stride, g groups.",)
    return Table(f"{workload.name}  input {shapes}", columns, rows, footer, notes)


def energy_table(report: EnergyReport, per: int = 1) -> Table:
    """Per-layer energy by data type and by level, the layer's total and its share of the network, with totals.

    Level columns (``"@DRAM (pJ)"``) come compute first (``MAC``, ``ALU``), then in
    ``report.levels`` order (the hardware's, DRAM first); energies are in the report's
    unit divided by ``per`` (images in the batch; the title then says "per image"), shares
    in percent of the report's total. Example: a report of one layer ``fc`` with 10 pJ of
    MACs and 30 pJ of weight reads from DRAM, ``per=2``, has the row
    ``("fc", "fc", 5.0, 15.0, 5.0, 15.0, 20.0, 100.0)``.
    """
    if isinstance(per, bool) or not isinstance(per, int) or per < 1:
        raise ValueError(f"energy_table: per must be a positive int (images; got {per!r})")
    layers, datums, levels = layer_breakdown(report, report.levels)
    total = report.total
    rows = [(row.layer, row.kind, *(row.by_datum.get(d, 0.0) / per for d in datums),
             *(row.by_level.get(lv, 0.0) / per for lv in levels), row.total / per, 100 * row.total / total if total else 0.0)
            for row in layers]
    sums = (sum(row[i] for row in rows) for i in range(2, 3 + len(datums) + len(levels)))
    footer = ("total", f"{len(rows)} layers", *sums, 100.0 if total else 0.0)
    unit = report.unit
    columns = ("layer", "kind", *(f"{d} ({unit})" for d in datums), *(f"@{lv} ({unit})" for lv in levels), f"total ({unit})", "share (%)")
    title = f"{report.workload}: energy{' per image' if per > 1 else ''} on {report.hardware} ({report.dataflow})"
    return Table(title, columns, rows, footer, _energy_notes(report, per, levels))


def _energy_notes(report: EnergyReport, per: int, levels: Sequence[str]) -> tuple[str, ...]:
    """What an energy table's numbers are: per image or per batch, the unit, the data-type and level columns."""
    batch = getattr(report, "batch", per)
    if per > 1:
        scope = f"Energy per image: the batch of {per} images' energy / {per} (data fetched once per batch is shared)."
    elif batch > 1:
        scope = f"Energy per batch of {batch} images (not per image)."
    else:
        scope = "Energy per image (batch 1)."
    meanings = {"MAC": "multiply-accumulates", "ALU": "other ops (pooling, activations, element-wise)",
                "DRAM": "off-chip memory", "RF": "each PE's register file"}
    where = ", ".join(f"@{lv} = {meanings[lv]}" for lv in levels if lv in meanings)
    return (f"{scope} {unit_note(report.unit)}",
            "compute = arithmetic; ifmap / weight / ofmap = moving input feature maps, weights, output feature maps "
            f"(with partial sums); @level = energy spent at that level (memories outermost first): {where}.")


def unit_note(unit: str) -> str:
    """One sentence saying what energies in ``unit`` are, e.g. ``unit_note("MAC-normalized")`` starts
    ``"MAC-normalized = energy in units of one MAC"``."""
    if unit == "MAC-normalized":
        return "MAC-normalized = energy in units of one MAC (one multiply-accumulate of the hardware's word costs 1)."
    if unit == "pJ":
        return "Energies in joules with SI prefixes (uJ = 1e-6 J, mJ = 1e-3 J), from the hardware's costs in pJ."
    return f"Energies in {unit}." if unit and unit != "none" else "No energy objective: energies are not estimated."


def zoo_table(entries: Sequence[ZooEntry] | None = None) -> Table:
    """The zoo: each model's name, example input (``1x1x28x28``), published MACs and params (None if unpublished), description.

    ``entries``: the models to list; by default every registered one (``dnnergy.catalog.build()``, so
    models registered by user code too); ``dnnergy zoo`` passes the built-in catalogue
    (``catalog.zoo_entries()``, plain data: no torch). Published params fall back to published weights
    when only those are known. Example: the ``lenet5`` row has 2,293,000 MACs (288,000 + 1,600,000 +
    400,000 + 5,000); the first row is
    ``{'model': 'alexnet', 'input': '1x3x227x227', 'published MACs': 724000000.0, 'published params': 61000000.0, ...}``.
    """
    if entries is None:
        from ..catalog import build

        entries = build()[0]
    rows = [(e.name, "x".join(map(str, e.input_shape)), e.macs, e.params if e.params is not None else e.weights, e.description)
            for e in entries]
    return Table("dnnergy zoo", ("model", "input", "published MACs", "published params", "description"), rows,
                 notes=("input: the example batch (N x C x H x W); published: the figures of the model's paper or reference "
                        "implementation, for one image (`dnnergy summary MODEL` counts them from the traced model).",))


def unsupported_lines(workload: Workload) -> list[str]:
    """One line per op that was not counted (with its share of all MACs), one counting the free ops,
    and one saying why the trace ran a real forward pass when its shapes-only pass fell back.

    Example: a model with three views/reshapes and nothing unsupported gives
    ``["free ops (views, reshapes, tensor creation): 3"]``.
    """
    lines = [f"traced with a real forward pass: {workload.trace_note}"] if workload.trace_note else []
    shares = workload.unsupported_share()
    for op in workload.unsupported:
        share = shares[op.op]
        share_text = f"{share:.1%} of MACs" if share is not None else "MACs unknown"
        lines.append(f"not counted: {op.op} x{op.count} in {', '.join(m or '<root>' for m in op.modules)} ({share_text})")
    free = sum(count for _, count in workload.ignored)
    if free:
        lines.append(f"free ops (views, reshapes, tensor creation): {free}")
    return lines


def share_lines(report: EnergyReport) -> list[str]:
    """Two lines: the report's split by data type and by level, in whole percent, in the energy table's column order.

    Example: 10 pJ of MACs and 30 pJ of weight reads from DRAM give
    ``["by data type: compute 25%, weight 75%", "by level: MAC 25%, DRAM 75%"]``.
    """
    _, datums, levels = layer_breakdown(report, report.levels)
    total = report.total or 1.0
    by_datum, by_level = report.by_datum(), report.by_level()
    datum = ", ".join(f"{d} {by_datum[d] / total:.0%}" for d in datums)
    level = ", ".join(f"{lv} {by_level[lv] / total:.0%}" for lv in levels)
    return [f"by data type: {datum}", f"by level: {level}"]


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _se_points(point: Point, split: str) -> float | None:
    se = point.standard_error(split)
    return None if se is None else 100 * se


def record_table(record: "Record") -> Table:
    """The model before and after a compression (and after each stage of a chain): accuracy, energy, sizes.

    Columns: validation and test accuracy (%), each with its binomial standard error (in
    percentage points, columns "val SE (%)" and "test SE (%)"), energy in the record's unit, weights, non-zero weights, MACs (one
    sample) and bytes. Example: a magnitude record from 95.6 % to 94.9 % test accuracy on
    1,000 images has the rows ``before`` and ``magnitude`` with test accuracies 95.6 and
    94.9 and standard errors 0.65 and 0.70 points.
    """
    unit = record.after.energy_unit or record.before.energy_unit
    stages = record.stages or (record,)
    rows = [("before", *_point_cells(record.before))] + [(stage.method, *_point_cells(stage.after)) for stage in stages]
    columns = ("model", "val accuracy (%)", "val SE (%)", "test accuracy (%)", "test SE (%)", f"energy ({unit or 'none'})",
               "weights", "non-zero weights", "MACs", "bytes")
    return Table(f"{record.method}: {record.summary}", columns, rows, notes=(_ACCURACY_NOTE, _per_image_note(unit)))


#: What the two accuracy columns of record and trade-off tables are.
_ACCURACY_NOTE = ("val = validation split: the accuracy budget and every choice of a method are measured on it; test = "
                  "held-out split, only reported. SE = binomial standard error, in points.")


def _per_image_note(unit: str, latency: bool = False) -> str:
    return f"{'Energy, MACs and latency' if latency else 'Energy and MACs'} per image (batch 1). {unit_note(unit)}"


def _point_cells(point: Point) -> tuple[Cell, ...]:
    return (_percent(point.val_accuracy), _se_points(point, "val"), _percent(point.test_accuracy),
            _se_points(point, "test"), point.energy,
            point.weights, point.nonzero_weights, point.macs, point.model_bytes)


def points_table(points: Sequence[Point], title: str, front: Sequence[Point] = ()) -> Table:
    """One row per trade-off point: strength, Pareto-front mark, accuracies (%), energy, non-zero weights and MACs,
    batch-1 latency (ms; the column is left out when no point was timed) and bytes. ``front`` marks the points on the
    Pareto front with ``*``.

    Example: the points of ``tradeoff(model, context, "magnitude", [0, 0.9])`` give two rows
    whose strengths are 0.0 and 0.9.
    """
    unit = next((p.energy_unit for p in points if p.energy_unit), "none")
    marked = {id(p) for p in front}
    timed = any(p.latency_s is not None for p in points)
    rows = [(p.label or "-", p.strength, "*" if id(p) in marked else "", _percent(p.val_accuracy), _percent(p.test_accuracy),
             p.energy, p.nonzero_weights, p.nonzero_macs, *([None if p.latency_s is None else 1e3 * p.latency_s] if timed else []),
             p.model_bytes)
            for p in points]
    columns = ("method", "strength", "front", "val accuracy (%)", "test accuracy (%)", f"energy ({unit})",
               "non-zero weights", "non-zero MACs", *(("latency (ms)",) if timed else ()), "bytes")
    latency = " latency = median batch-1 forward pass on this CPU." if timed else ""
    return Table(title, columns, rows, notes=(_ACCURACY_NOTE, _per_image_note(unit, timed) + latency))


def budget_lines(record: "Record") -> list[str]:
    """A line when the *test* accuracy fell by more than the budget the method kept on validation, else none.

    Example: a budget of 1 point and a test loss of 1.7 points give ``["test accuracy fell
    1.7 points, more than the 1.0-point budget kept on validation (test SE 0.7 points)"]``.
    """
    if not record.test_budget_broken:
        return []
    se = record.after.standard_error("test")
    return [f"test accuracy fell {100 * record.accuracy_drop('test'):.1f} points, more than the "
            f"{100 * record.max_accuracy_drop:.1f}-point budget kept on validation"
            + (f" (test SE {100 * se:.1f} points)" if se is not None else "")]

"""Compression results read back from JSON: records of ``dnnergy compress``/``adapt`` and sweeps of ``dnnergy tradeoff``.

A file holds either one :class:`~dnnergy.compress.Record` (``format: dnnergy.record/1``,
written as ``OUT.json`` by ``compress --out`` and ``adapt --out``) or a sweep, the
``{"points": [...], "pareto": [...]}`` that ``dnnergy tradeoff --json`` prints.
:func:`load_results` turns files into :class:`Results`: one accuracy-energy series per
method (a record contributes its starting point and the point after each stage; a sweep
its points), ready for :func:`~dnnergy.explore.pareto_front`. Each file names the model it
ran on (a record's ``model``, a sweep's ``"model"``); :func:`model_lines` checks them
against the report's model, and says which files record none (those written before
dnnergy recorded it).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..compress.record import RECORD_FORMAT, Record
from ..errors import UserInputError
from ..explore.pareto import pareto_front
from ..metrics import Point

__all__ = ["Source", "Results", "load_results", "plotted", "model_lines"]

_EXPECTED = (f"a record written by `dnnergy compress --out` or `dnnergy adapt --out` (format {RECORD_FORMAT!r}) "
             "or the output of `dnnergy tradeoff --json`")


@dataclass(frozen=True, slots=True)
class Source:
    """One file read: its ``path``, the ``model`` it names (``None``: not recorded) and the ``methods`` (the curves)
    its points went into."""

    path: str
    model: str | None
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Results:
    """What the files held: ``records`` (path, Record) and ``sweeps`` (path, points) as read, and ``series``:
    per method, its distinct points (the model before compression is labelled ``"before"``); ``sources``: each file
    in the order given, with the model it names and the curves it feeds."""

    records: tuple[tuple[str, Record], ...] = ()
    sweeps: tuple[tuple[str, tuple[Point, ...]], ...] = ()
    series: dict[str, list[Point]] = field(default_factory=dict)
    sources: tuple[Source, ...] = ()

    @property
    def points(self) -> list[Point]:
        """Every distinct point of every series, in the order first seen."""
        seen: dict[tuple, Point] = {}
        for points in self.series.values():
            for point in points:
                seen.setdefault(_key(point), point)
        return list(seen.values())

    @property
    def unit(self) -> str:
        """The energy unit all points share (``""`` when none has an energy)."""
        return next((p.energy_unit for p in self.points if p.energy is not None), "")

    def fronts(self) -> dict[str, list[Point]]:
        """Each method's Pareto front (lowest energy, highest validation accuracy) over its plotted points."""
        return {method: pareto_front(plotted(points)) for method, points in self.series.items()}

    def front(self) -> list[Point]:
        """The Pareto front of all plotted points together."""
        return pareto_front(plotted(self.points))


def plotted(points: Sequence[Point]) -> list[Point]:
    """The points that have both an energy and a validation accuracy (the others cannot be placed on the plane)."""
    return [p for p in points if p.energy is not None and p.accuracy is not None]


def _key(point: Point) -> tuple:
    return (point.label, point.strength, point.energy, point.val_accuracy, point.test_accuracy, point.weights, point.macs)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"records file {path}: not UTF-8 text; expected {_EXPECTED}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"records file {path}: not JSON (line {exc.lineno}: {exc.msg}); expected {_EXPECTED}") from None


def _record_points(record: Record) -> tuple[str, list[Point]]:
    before = dataclasses.replace(record.before, label="before")
    stages = record.stages or (record,)
    return record.method, [before, *(dataclasses.replace(stage.after, label=stage.method) for stage in stages)]


def _sweep_points(data: dict, path: Path) -> list[Point]:
    points = data["points"]
    if not isinstance(points, list) or not points:
        raise UserInputError(f"records file {path}: 'points' must be a non-empty list of points; expected {_EXPECTED}")
    try:
        return [Point.from_dict(p) for p in points]
    except (TypeError, ValueError) as exc:  # UserInputError is a ValueError
        raise UserInputError(f"records file {path}: invalid point ({exc})") from None


def load_results(paths: Sequence[str | os.PathLike]) -> Results:
    """Read record and sweep files into one :class:`Results`; a file that is neither, or points in several energy
    units, raises :class:`UserInputError` naming the file.

    Example: a ``magnitude`` record from 1e6 to 2.5e5 MAC-normalized gives the series
    ``{"magnitude": [before, after]}`` with labels ``"before"`` and ``"magnitude"``.
    """
    records, sweeps, series, sources = [], [], {}, []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise UserInputError(f"records file {path}: not found" if not path.exists() else f"records file {path}: not a file")
        data = _read(path)
        if isinstance(data, dict) and data.get("format") == RECORD_FORMAT:
            try:
                record = Record.from_dict(data)
            except UserInputError as exc:
                raise UserInputError(f"records file {path}: {exc}") from None
            records.append((str(path), record))
            method, points = _record_points(record)
            model = record.model
        elif isinstance(data, dict) and "points" in data:
            points = _sweep_points(data, path)
            sweeps.append((str(path), tuple(points)))
            method, model = None, data.get("model")
            if model is not None and not isinstance(model, str):
                raise UserInputError(f"records file {path}: 'model' must be the name of a model (got {model!r:.80})")
        else:
            raise UserInputError(f"records file {path}: not a compression record or sweep; expected {_EXPECTED}")
        methods = []
        for point in points:
            name = method or point.label or "sweep"
            bucket = series.setdefault(name, [])
            if _key(point) not in {_key(p) for p in bucket}:
                bucket.append(point)
            methods += [name] * (name not in methods)
        sources.append(Source(str(path), model or None, tuple(methods)))
    units = sorted({p.energy_unit for points in series.values() for p in points if p.energy is not None})
    if len(units) > 1:
        raise UserInputError(f"records files {', '.join(map(str, paths))}: energies in several units {units}; "
                             "give results estimated on one hardware")
    return Results(tuple(records), tuple(sweeps), series, tuple(sources))


def _same_model(recorded: str, names: Sequence[str]) -> bool:
    """Whether a file's model is one of ``names``; a model file path (``runs/small.dnnergy``, as ``tradeoff --json``
    records its MODEL argument) also matches its stem (``small``, as a report names a saved model)."""
    path = Path(recorded)
    return recorded in names or (path.suffix.lower() in (".dnnergy", ".onnx") and path.stem in names)


def model_lines(results: Results, names: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Check each file's model against ``names`` (the report's model, first, and any other name it goes by, such
    as the architecture of a saved model): per curve (method), the warnings of the files that name another model,
    and one note per file that records no model.

    Example: a sweep ``s.json`` of ``lenet5`` feeding the curve ``magnitude``, checked against ``["lenet300"]``, gives
    ``({"magnitude": ["s.json is a run of lenet5, not of lenet300"]}, [])``; an old record ``r.json`` without a model
    gives ``({}, ["r.json: model not recorded (...)"])``.
    """
    warnings: dict[str, list[str]] = {}
    notes = []
    for source in results.sources:
        if source.model is None:
            notes.append(f"{source.path}: model not recorded (written before dnnergy recorded it); "
                         f"it cannot be checked to be a run of {names[0]}")
        elif not _same_model(source.model, names):
            for method in source.methods:
                warnings.setdefault(method, []).append(f"{source.path} is a run of {source.model}, not of {names[0]}")
    return warnings, notes

"""``EnergyReport``: flat energy records of one estimate and the views over them."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import UserInputError
from ..io import atomic_write

__all__ = ["EnergyRecord", "EnergyReport", "COMPUTE", "RECORD_FIELDS"]

#: ``datum`` of the records that price arithmetic (MACs and non-MAC ops) rather than data movement.
COMPUTE = "compute"


@dataclass(frozen=True, slots=True)
class EnergyRecord:
    """Energy of one (layer, data type, level) triple.

    ``datum`` is ``"ifmap"``, ``"weight"``, ``"ofmap"`` or ``"compute"``; ``level`` is a
    memory level's name (``"DRAM"``, ``"RF"``, ...) or ``"MAC"``/``"ALU"`` for compute.
    ``accesses`` are effective accesses after zero gating/skipping and DRAM coding
    (coded traffic expressed in words of ``bits`` bits; for compute, operations), so
    ``energy = accesses * cost(bits)`` in the report's unit. For MAC records ``bits`` is
    the wider operand. Example: estimating ``nn.Linear(4, 2)`` on the ``eyeriss`` preset (unit
    MAC-normalized, one DRAM access of a 16-bit word = 200) gives the record
    ``EnergyRecord(layer='addmm', kind='fc', datum='weight', level='DRAM', accesses=8.0, bits=16,
    energy=1600.0)``: its 8 weights read once from DRAM.
    """

    layer: str
    kind: str
    datum: str
    level: str
    accesses: float
    bits: float
    energy: float


RECORD_FIELDS = tuple(f.name for f in fields(EnergyRecord))


@dataclass(frozen=True, slots=True)
class EnergyReport:
    """Where the energy of one workload goes, as flat :class:`EnergyRecord` rows in one ``unit``.

    Every view (``by_layer``, ``by_datum``, ``by_level``, ``total``) sums the same
    records. ``mappings`` holds the mapping each layer's dataflow chose (when it reports
    one); ``excluded`` the layers left out (non-MAC layers with ``non_mac="exclude"``);
    ``mac_energy`` the energy of one reference MAC, used by :meth:`normalized`;
    ``levels`` the hardware's memory-level names, outermost (DRAM) first, so tables and
    plots can order level columns as the hardware does; ``batch`` the images of the pass
    (the workload's batch), so :attr:`total` is per batch and :attr:`per_image` per image.
    Reports add (``a + b``) only when their units and batches agree. ``unit`` is the
    hardware's: ``"pJ"`` or ``"MAC-normalized"`` (multiples of one reference MAC).

    Example (the ``eyeriss`` preset is MAC-normalized: a 16-bit MAC costs 1, a DRAM access 200):

    >>> import dnnergy, torch.nn as nn
    >>> report = dnnergy.estimate(dnnergy.trace(nn.Linear(4, 2), (1, 4)), "eyeriss")
    >>> report.unit, report.total, report.macs
    ('MAC-normalized', 2932.0, 8.0)
    >>> report.by_level()["DRAM"]  # (8 weights + 4 inputs + 2 outputs) x 200
    2800.0
    >>> report.by_datum()["compute"], report.by_layer()
    (8.0, {'addmm': 2932.0})
    >>> report.by_datum_and_level()[("weight", "DRAM")]
    1600.0
    >>> report.normalized() is report  # already MAC-normalized; a pJ report is divided by mac_energy
    True
    >>> report.to_frame().shape, report.to_csv().splitlines()[0]  # 11 records x (7 fields + unit)
    ((11, 8), 'layer,kind,datum,level,accesses,bits,energy,unit')
    >>> report.to_dict()["by_level"]["MAC"], '"total": 2932.0' in report.to_json()
    (8.0, True)
    """

    records: tuple[EnergyRecord, ...]
    unit: str
    hardware: str = ""
    dataflow: str = ""
    workload: str = ""
    mac_energy: float = 1.0
    mappings: Mapping[str, Mapping[str, Any]] | None = None
    excluded: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    batch: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.unit, str) or not self.unit:
            raise UserInputError(f"EnergyReport: unit must be a non-empty str (got {self.unit!r})")
        if not self.mac_energy > 0:
            raise UserInputError(f"EnergyReport: mac_energy must be > 0 (got {self.mac_energy!r})")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise UserInputError(f"EnergyReport: batch must be a positive int, the images of the pass (got {self.batch!r})")
        object.__setattr__(self, "records", tuple(self.records))
        object.__setattr__(self, "mappings", dict(self.mappings or {}))
        object.__setattr__(self, "levels", tuple(self.levels))

    # -- totals and views --------------------------------------------------------
    @property
    def total(self) -> float:
        """Total energy of the whole pass (all :attr:`batch` images), in ``unit``."""
        return sum(r.energy for r in self.records)

    @property
    def per_image(self) -> float:
        """Total energy per image: :attr:`total` / :attr:`batch`, in ``unit``. Example: a report of a batch of 8
        totalling 4.8e10 MAC-normalized has ``per_image == 6e9``."""
        return self.total / self.batch

    @property
    def macs(self) -> float:
        """Effective MACs performed (after zero gating/skipping)."""
        return sum(r.accesses for r in self.records if r.level == "MAC")

    def _group(self, key: Callable[[EnergyRecord], Any]) -> dict[Any, float]:
        out: dict[Any, float] = {}
        for record in self.records:
            k = key(record)
            out[k] = out.get(k, 0.0) + record.energy
        return out

    def by_layer(self) -> dict[str, float]:
        """Energy per layer, in execution order (``unit``)."""
        return self._group(lambda r: r.layer)

    def by_datum(self) -> dict[str, float]:
        """Energy per data type: ``compute``, ``ifmap``, ``weight``, ``ofmap`` (``unit``)."""
        return self._group(lambda r: r.datum)

    def by_level(self) -> dict[str, float]:
        """Energy per level name (``MAC``, ``ALU`` and the memory levels), in ``unit``."""
        return self._group(lambda r: r.level)

    def by_datum_and_level(self) -> dict[tuple[str, str], float]:
        """Energy per (data type, level) pair, in ``unit``."""
        return self._group(lambda r: (r.datum, r.level))

    def normalized(self) -> "EnergyReport":
        """The same report with every energy divided by one reference MAC's (unit ``MAC-normalized``)."""
        if self.unit == "MAC-normalized":
            return self
        scale = 1.0 / self.mac_energy
        records = tuple(
            EnergyRecord(r.layer, r.kind, r.datum, r.level, r.accesses, r.bits, r.energy * scale) for r in self.records
        )
        return EnergyReport(records, "MAC-normalized", self.hardware, self.dataflow, self.workload, 1.0, self.mappings,
                            self.excluded, self.levels, self.batch)

    def __str__(self) -> str:
        """A compact text table (:func:`dnnergy.report.display.text`)."""
        from ..report.display import text

        return text(self)

    def _repr_html_(self) -> str:
        """The full HTML table, for Jupyter (:func:`dnnergy.report.display.html`)."""
        from ..report.display import html

        return html(self)

    def __add__(self, other: "EnergyReport") -> "EnergyReport":
        if not isinstance(other, EnergyReport):
            return NotImplemented
        if other.unit != self.unit:
            raise UserInputError(f"EnergyReport: cannot add reports in {self.unit!r} and {other.unit!r}; normalize one first")
        if other.batch != self.batch:
            raise UserInputError(f"EnergyReport: cannot add reports of batches {self.batch} and {other.batch}; "
                                 "estimate both at one batch size")
        names = [n for n in (self.workload, other.workload) if n]
        return EnergyReport(
            self.records + other.records,
            self.unit,
            self.hardware if self.hardware == other.hardware else f"{self.hardware}+{other.hardware}",
            self.dataflow if self.dataflow == other.dataflow else f"{self.dataflow}+{other.dataflow}",
            "+".join(names),
            self.mac_energy,
            {**self.mappings, **other.mappings},
            self.excluded + other.excluded,
            self.levels + tuple(name for name in other.levels if name not in self.levels),
            self.batch,
        )

    # -- export -------------------------------------------------------------------
    def to_frame(self):
        """The records as a pandas DataFrame (one row per record, plus a ``unit`` column)."""
        import pandas as pd

        frame = pd.DataFrame.from_records([tuple(asdict(r).values()) for r in self.records], columns=list(RECORD_FIELDS))
        frame["unit"] = self.unit
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Plain data: metadata, totals and records."""
        return {
            "workload": self.workload,
            "hardware": self.hardware,
            "dataflow": self.dataflow,
            "unit": self.unit,
            "total": self.total,
            "batch": self.batch,
            "per_image": self.per_image,
            "by_level": self.by_level(),
            "by_datum": self.by_datum(),
            "by_layer": self.by_layer(),
            "excluded": list(self.excluded),
            "levels": list(self.levels),
            "mappings": {k: dict(v) for k, v in self.mappings.items()},
            "records": [asdict(r) for r in self.records],
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1, default=str)
        if path is not None:
            atomic_write(path, text)
        return text

    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """The records as CSV text (header + one row per record, with ``unit``); written atomically to ``path`` when given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow((*RECORD_FIELDS, "unit"))
        for record in self.records:
            writer.writerow((*(getattr(record, f) for f in RECORD_FIELDS), self.unit))
        text = buffer.getvalue()
        if path is not None:
            atomic_write(path, text)
        return text

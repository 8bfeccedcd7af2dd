"""Per-layer energy breakdown: one row per layer with energy by data type and by level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ..energy import EnergyReport

__all__ = ["LayerBreakdown", "layer_breakdown"]


@dataclass(frozen=True, slots=True)
class LayerBreakdown:
    """Energy of one layer split two ways (both sum to ``total``), in the report's unit."""

    layer: str
    kind: str
    by_datum: dict[str, float]
    by_level: dict[str, float]
    total: float


def layer_breakdown(report: EnergyReport, level_order: Sequence[str] = ()) -> tuple[list[LayerBreakdown], list[str], list[str]]:
    """Rows in execution order, plus the data-type and level column names that occur.

    Energies are in the report's unit. Data types come ``compute``, ``ifmap``,
    ``weight``, ``ofmap``; levels compute first (``MAC``, ``ALU``), then in
    ``level_order`` (by default ``report.levels``, the hardware's, DRAM first), then any
    others by name. Example: records of 10 on (compute, MAC) and 30 on (weight, DRAM) for
    layer ``fc`` give one row with ``by_datum == {"compute": 10, "weight": 30}``, total 40,
    and columns ``["compute", "weight"]``, ``["MAC", "DRAM"]``.
    """
    rows: dict[str, LayerBreakdown] = {}
    datums: list[str] = []
    levels: list[str] = []
    for record in report.records:
        row = rows.get(record.layer)
        if row is None:
            row = rows[record.layer] = LayerBreakdown(record.layer, record.kind, {}, {}, 0.0)
        row.by_datum[record.datum] = row.by_datum.get(record.datum, 0.0) + record.energy
        row.by_level[record.level] = row.by_level.get(record.level, 0.0) + record.energy
        if record.datum not in datums:
            datums.append(record.datum)
        if record.level not in levels:
            levels.append(record.level)
    order = {"compute": 0, "ifmap": 1, "weight": 2, "ofmap": 3}
    datums.sort(key=lambda d: order.get(d, 9))
    rank = {name: i for i, name in enumerate(("MAC", "ALU", *(level_order or report.levels)))}
    levels.sort(key=lambda lv: (rank.get(lv, len(rank)), lv))
    result = [LayerBreakdown(r.layer, r.kind, r.by_datum, r.by_level, sum(r.by_datum.values())) for r in rows.values()]
    return result, datums, levels

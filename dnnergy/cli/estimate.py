"""``dnnergy estimate``: per-layer energy by data type and level, with totals."""

from __future__ import annotations

from typing import Any

from ..energy import EnergyReport
from ..errors import UserInputError
from ..report import layer_breakdown
from ._format import energy, render_table

__all__ = ["parse_bits", "energy_table", "profile_input"]


def parse_bits(text: str | None) -> tuple[int, int] | None:
    """``"8,16"`` -> (weight bits 8, activation bits 16); ``"8"`` -> (8, 8)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise UserInputError(f"--bits takes W,A such as 8,16 (got {text!r})") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise UserInputError(f"--bits takes two positive integers W,A such as 8,16 (got {text!r})")
    return parts[0], parts[1]


def profile_input(source: str, shape: tuple[int, ...]) -> Any:
    """The batch to profile on: ``random`` (normal noise of the model's input shape) or a dataset name."""
    import torch

    if source == "random":
        return torch.randn(shape, generator=torch.Generator().manual_seed(0))
    from ..data.datasets import load_dataset

    dataset = load_dataset(source)
    images = dataset.split("test").tensors[0][: shape[0]]
    if tuple(images.shape[1:]) != tuple(shape[1:]):
        raise UserInputError(
            f"--profile {source}: its images are {tuple(images.shape[1:])} but the model takes {tuple(shape[1:])}; use --profile random"
        )
    return images


def energy_table(report: EnergyReport, per: int = 1, level_order: tuple[str, ...] = ()):
    """Per-layer table: energy by data type, by level, total and share; energies divided by ``per`` (images)."""
    rows, datums, levels = layer_breakdown(report, level_order)
    total = report.total or 1.0

    def fmt(value: float) -> str:
        return energy(value / per, report.unit)

    body = []
    for row in rows:
        body.append((row.layer, row.kind, *(fmt(row.by_datum.get(d, 0.0)) for d in datums),
                     *(fmt(row.by_level.get(lv, 0.0)) for lv in levels), fmt(row.total), f"{row.total / total:.1%}"))
    by_datum, by_level = report.by_datum(), report.by_level()
    footer = ("total", f"{len(rows)} layers", *(fmt(by_datum.get(d, 0.0)) for d in datums),
              *(fmt(by_level.get(lv, 0.0)) for lv in levels), fmt(report.total), "100%")
    unit = ("joules" if report.unit == "pJ" else report.unit) + (" per image" if per > 1 else "")
    title = f"{report.workload}: energy in {unit} on {report.hardware} ({report.dataflow})"
    columns = ["layer", "kind", *datums, *(f"@{lv}" for lv in levels), "total", "share"]
    return render_table(title, columns, body, footer)


def share_lines(report: EnergyReport) -> list[str]:
    """One line each: the split by data type and by level, in percent."""
    total = report.total or 1.0
    datum = ", ".join(f"{k} {v / total:.0%}" for k, v in report.by_datum().items())
    level = ", ".join(f"{k} {v / total:.0%}" for k, v in report.by_level().items())
    return [f"by data type: {datum}", f"by level: {level}"]

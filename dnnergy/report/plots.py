"""Matplotlib figures written atomically to PNG/SVG/PDF (the ``plot`` extra)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..energy import EnergyReport
from ..errors import UserInputError
from ..io import atomic_write
from .breakdown import layer_breakdown

__all__ = ["plot_breakdown", "plot_tradeoff", "plot_history"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("plots need matplotlib: pip install 'dnnergy[plot]'") from None
    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically to ``path`` in the format its suffix names (PNG when it has none)."""
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=120, bbox_inches="tight"))


def plot_breakdown(report: EnergyReport, path: str | os.PathLike, top: int = 40) -> Path:
    """A stacked bar per layer by data type, and the whole network's split by level.

    Shows the ``top`` most energy-hungry layers (in execution order); energies in the
    report's unit. Returns the written path.
    """
    plt = _pyplot()
    rows, datums, _ = layer_breakdown(report)
    if len(rows) > top:
        keep = {r.layer for r in sorted(rows, key=lambda r: r.total, reverse=True)[:top]}
        rows = [r for r in rows if r.layer in keep]
    fig, (ax_layers, ax_levels) = plt.subplots(1, 2, figsize=(max(8, 0.35 * len(rows) + 5), 4.5), gridspec_kw={"width_ratios": [4, 1]})
    bottom = [0.0] * len(rows)
    for datum in datums:
        values = [r.by_datum.get(datum, 0.0) for r in rows]
        ax_layers.bar(range(len(rows)), values, bottom=bottom, label=datum)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax_layers.set_xticks(range(len(rows)), [r.layer for r in rows], rotation=90, fontsize=7)
    ax_layers.set_ylabel(f"energy ({report.unit})")
    ax_layers.set_title(f"{report.workload}: energy per layer by data type ({report.hardware}, {report.dataflow})")
    ax_layers.legend()
    levels = report.by_level()
    total = sum(levels.values()) or 1.0
    ax_levels.bar(range(len(levels)), [v / total * 100 for v in levels.values()])
    ax_levels.set_xticks(range(len(levels)), list(levels), rotation=45)
    ax_levels.set_ylabel("share of total energy (%)")
    ax_levels.set_title("by level")
    fig.subplots_adjust(wspace=0.4)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_tradeoff(series: dict[str, Sequence[tuple[float, float]]], path: str | os.PathLike, xlabel: str, ylabel: str = "accuracy", front: Sequence[tuple[float, float]] | None = None) -> Path:
    """Accuracy-vs-energy curves, one line per method (points as (x, y)), with an optional Pareto front."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in series.items():
        pts = sorted(points)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
    if front:
        pts = sorted(front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "k--", linewidth=1, label="Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_history(history, path: str | os.PathLike) -> Path:
    """A NetAdapt :class:`~dnnergy.explore.History` as a plot written atomically to ``path`` (PNG/SVG/PDF):
    the resource per iteration as a fraction of the original, with the budget line, and the accuracy on the
    selection split after each iteration's short-term fine-tuning."""
    plt = _pyplot()
    iterations = list(range(len(history.iterations) + 1))
    resource = [history.original] + [it.resource for it in history.iterations]
    accuracy = [history.accuracy] + [it.accuracy for it in history.iterations]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(iterations, [r / history.original for r in resource], marker="o", label=f"{history.metric} (of original)")
    ax.axhline(history.budget / history.original, color="k", linestyle="--", linewidth=1, label="budget")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{history.metric} / original")
    other = ax.twinx()
    other.plot(iterations, accuracy, marker="s", color="tab:orange", label=f"accuracy ({history.split})")
    other.set_ylabel(f"accuracy on {history.split} (after short-term fine-tuning)")
    ax.grid(alpha=0.3)
    fig.legend(loc="lower left", bbox_to_anchor=(0.12, 0.12))
    ax.set_title(f"NetAdapt: {history.metric} budget {history.budget / history.original:.0%} of the original")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)

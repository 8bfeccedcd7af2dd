"""Matplotlib figures written atomically to PNG/SVG/PDF (the ``plot`` extra)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

from ..energy import EnergyReport
from ..errors import UserInputError
from ..io import atomic_write
from .breakdown import layer_breakdown

__all__ = ["plot_breakdown", "plot_tradeoff", "plot_sweep", "sweep_figure", "plot_history", "breakdown_figure", "levels_figure", "bars_figure",
           "tradeoff_figure", "svg_text"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("plots need matplotlib: pip install 'dnnergy[plot]'") from None
    return plt


def _saved(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` atomically to ``path`` in the format its suffix names (PNG when it has none), and close it."""
    path = Path(path)
    fmt = path.suffix[1:].lower() or "png"
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=120, bbox_inches="tight"))
    finally:
        _pyplot().close(fig)


def svg_text(fig) -> str:
    """``fig`` as an ``<svg>`` element to inline in HTML: text drawn as paths (no fonts to fetch), no XML
    prologue, no metadata, and every ``id`` prefixed with a hash of the figure, so several figures in one
    page never share an id. The figure is not closed."""
    import hashlib
    import io
    import re

    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "dnnergy"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)  # RDF boilerplate, not needed inline
    prefix = "f" + hashlib.sha1(text.encode()).hexdigest()[:8] + "-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    return re.sub(r'(href="#|url\(#)([^")]+)', lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)


def _top(rows: list, top: int) -> list:
    """The ``top`` rows of largest ``total``, in their original (execution) order."""
    if len(rows) <= top:
        return rows
    keep = {r.layer for r in sorted(rows, key=lambda r: r.total, reverse=True)[:top]}
    return [r for r in rows if r.layer in keep]


def _per_image(report: EnergyReport, top: int) -> tuple[list, list[str], list[str]]:
    """:func:`layer_breakdown` of ``report``'s ``top`` layers, energies divided by the report's batch (per image)."""
    rows, datums, levels = layer_breakdown(report, report.levels)
    batch = report.batch
    rows = [dataclasses.replace(r, total=r.total / batch, by_datum={d: v / batch for d, v in r.by_datum.items()},
                                by_level={lv: v / batch for lv, v in r.by_level.items()}) for r in _top(rows, top)]
    return rows, datums, levels


def _stack(ax, rows: list, attr: str, names: Sequence[str]) -> None:
    """Stacked bars, one per row, of ``getattr(row, attr)[name]`` for each name, labelled by layer."""
    bottom = [0.0] * len(rows)
    for name in names:
        values = [getattr(r, attr).get(name, 0.0) for r in rows]
        ax.bar(range(len(rows)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(range(len(rows)), [r.layer for r in rows], rotation=90, fontsize=7)
    ax.legend()


def breakdown_figure(report: EnergyReport, top: int = 40):
    """The figure of :func:`plot_breakdown`: per-layer bars stacked by data type, and the network's split by level.

    Energies are per image (the report's energies / its ``batch``) in the report's unit;
    the figure's title names the model, hardware and dataflow. The level panel is a
    horizontal bar chart (names on the y axis, outermost memory on top) and the layout is
    constrained, so no label overlaps another.
    """
    plt = _pyplot()
    rows, datums, order = _per_image(report, top)
    fig, (ax_layers, ax_levels) = plt.subplots(1, 2, figsize=(max(8, 0.35 * len(rows) + 5), 4.5), layout="constrained",
                                               gridspec_kw={"width_ratios": [4, 1.3]})
    fig.suptitle(f"{report.workload}: energy per image on {report.hardware} ({report.dataflow})")
    _stack(ax_layers, rows, "by_datum", datums)
    ax_layers.set_ylabel(f"energy per image ({report.unit})")
    ax_layers.set_title("per layer, by data type", fontsize="medium")
    by_level = report.by_level()
    levels = {level: by_level[level] for level in order}
    total = sum(levels.values()) or 1.0
    ax_levels.barh(range(len(levels)), [v / total * 100 for v in levels.values()])
    ax_levels.set_yticks(range(len(levels)), list(levels), fontsize=8)
    ax_levels.invert_yaxis()  # compute first, then the memories outermost first, top to bottom
    ax_levels.set_xlabel("share of total energy (%)")
    ax_levels.set_title("by level", fontsize="medium")
    return fig


def plot_breakdown(report: EnergyReport, path: str | os.PathLike, top: int = 40) -> Path:
    """A stacked bar per layer by data type, and the whole network's split by level.

    Shows the ``top`` most energy-hungry layers (in execution order); energies in the
    report's unit. Returns the written path. Example:
    ``plot_breakdown(dnnergy.estimate(dnnergy.trace(nn.Linear(4, 2), (1, 4)), "eyeriss"), "breakdown.png")``
    writes a PNG (the y axis in MAC-normalized) and returns ``Path("breakdown.png")``.
    """
    return _saved(breakdown_figure(report, top), path)


def levels_figure(report: EnergyReport, top: int = 40):
    """Per-layer bars stacked by level (``MAC``, ``ALU``, then the hardware's levels, DRAM first), for the ``top``
    most energy-hungry layers in execution order; energies per image (as :func:`breakdown_figure`), in the
    report's unit."""
    plt = _pyplot()
    rows, _, levels = _per_image(report, top)
    fig, ax = plt.subplots(figsize=(max(8, 0.3 * len(rows) + 4), 4.5))
    _stack(ax, rows, "by_level", levels)
    ax.set_ylabel(f"energy per image ({report.unit})")
    ax.set_title(f"{report.workload}: energy per image and layer by level ({report.hardware}, {report.dataflow})")
    return fig


def bars_figure(labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str, title: str, log: bool = False):
    """Grouped bars: for each label, one bar per series (in the series' order); ``log`` for a logarithmic y axis.

    Example: labels ``("conv1", "fc1")`` and series ``{"energy": (30, 70), "MACs": (80, 20)}``
    put two bars (energy, MACs) at each layer.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(labels) * len(series) + 3), 4.5))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))], list(values), width, label=name)
    ax.set_xticks(range(len(labels)), list(labels), rotation=90 if len(labels) > 8 else 0, fontsize=7 if len(labels) > 8 else 9)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig


def tradeoff_figure(series: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str = "accuracy",
                    front: Sequence[tuple[float, float]] | None = None,
                    fronts: dict[str, Sequence[tuple[float, float]]] | None = None, title: str = ""):
    """The figure of :func:`plot_tradeoff`; ``fronts`` adds each method's own Pareto front as a thick pale
    line in the method's colour under its curve (points as (x, y)); ``title`` tops the figure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in series.items():
        pts = sorted(points)
        (line,) = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        if fronts and fronts.get(name):
            own = sorted(fronts[name])
            ax.plot([p[0] for p in own], [p[1] for p in own], color=line.get_color(), linewidth=6, alpha=0.25,
                    label=f"{name} front")
    if front:
        pts = sorted(front)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "k--", linewidth=1, label="Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize="medium", wrap=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_tradeoff(series: dict[str, Sequence[tuple[float, float]]], path: str | os.PathLike, xlabel: str, ylabel: str = "accuracy", front: Sequence[tuple[float, float]] | None = None,
                  title: str = "") -> Path:
    """Accuracy-vs-energy curves, one line per method (points as (x, y)), with an optional Pareto front and ``title``.

    Units are the caller's, named in the axis labels. Example: ``plot_tradeoff({"magnitude": [(2932.0, 0.97),
    (1500.0, 0.95)]}, "tradeoff.svg", "energy (MAC-normalized)")`` writes an SVG with one line of two points
    (y: accuracy as a fraction, as given) and returns its path.
    """
    return _saved(tradeoff_figure(series, xlabel, ylabel, front, title=title), path)


def sweep_figure(points: Sequence, title: str, front: Sequence = ()):
    """The trade-off of a sweep's :class:`~dnnergy.metrics.Point` s: validation accuracy in percent (as the tables
    show it) against energy per image, one line per method label, the Pareto ``front`` dashed, under ``title``
    (name the model, data and hardware). Example: a point of 95.6 % validation accuracy is drawn at y = 95.6."""
    unit = next((p.energy_unit for p in points if p.energy_unit), "") or "none"
    series: dict[str, list[tuple[float, float]]] = {}
    drawn = lambda ps: [p for p in ps if p.energy is not None and p.accuracy is not None]  # noqa: E731
    for p in drawn(points):
        series.setdefault(p.label or "points", []).append((p.energy, 100 * p.accuracy))
    return tradeoff_figure(series, f"energy per image ({unit})", "validation accuracy (%)",
                           [(p.energy, 100 * p.accuracy) for p in drawn(front)], title=title)


def plot_sweep(points: Sequence, path: str | os.PathLike, title: str, front: Sequence = ()) -> Path:
    """:func:`sweep_figure` written atomically to ``path`` (PNG/SVG/PDF); returns the path."""
    return _saved(sweep_figure(points, title, front), path)


def plot_history(history, path: str | os.PathLike) -> Path:
    """A NetAdapt :class:`~dnnergy.explore.History` as a plot written atomically to ``path`` (PNG/SVG/PDF):
    the resource per iteration as a fraction of the original, with the budget line, and the accuracy on the
    selection split after each iteration's short-term fine-tuning.

    Example: ``plot_history(netadapt_search(...).history, "netadapt.png")`` returns ``Path("netadapt.png")``;
    a history with no iteration yet draws the original resource (1.0) and the budget line only.
    """
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
    return _saved(fig, path)

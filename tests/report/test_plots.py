"""Plots: titles that name what is plotted, accuracy in percent like the tables, per-image energies, no overlapping labels.

Overlap is measured on the drawn figure: the renderer's bounding boxes of tick labels and
titles (matplotlib ``get_window_extent``), in display pixels.
"""

from __future__ import annotations

import itertools

import pytest

from dnnergy import estimate, trace, zoo
from dnnergy.energy import EnergyRecord, EnergyReport
from dnnergy.metrics import Point
from dnnergy.report.plots import breakdown_figure, levels_figure, plot_sweep, sweep_figure

plt = pytest.importorskip("matplotlib.pyplot")


def _extents(fig, artists):
    renderer = fig.canvas.get_renderer()
    return [(a.get_text(), a.get_window_extent(renderer)) for a in artists if a.get_visible() and a.get_text()]


def _overlaps(fig, artists) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn boxes intersect (shrunk by half a pixel: touching is not overlapping)."""
    boxes = [(text, box.expanded(1, 1).padded(-0.5)) for text, box in _extents(fig, artists)]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


@pytest.fixture(scope="module")
def alexnet_report() -> EnergyReport:
    return estimate(trace(zoo.create_model("alexnet"), zoo.model_info("alexnet").input_shape, name="alexnet"), "eyeriss")


def test_breakdown_labels_do_not_overlap_and_the_title_names_model_and_hardware(alexnet_report):
    fig = breakdown_figure(alexnet_report)
    try:
        fig.canvas.draw()
        layers, levels = fig.axes
        level_names = [t.get_text() for t in levels.get_yticklabels()]
        assert level_names == ["MAC", "ALU", "DRAM", "global_buffer", "array", "RF"]  # compute, then eyeriss.yaml's order
        assert _overlaps(fig, levels.get_yticklabels()) == []
        assert _overlaps(fig, layers.get_xticklabels()) == []
        # titles, axis labels and the level names do not run into each other or across panels
        texts = [fig._suptitle, layers.title, levels.title, layers.yaxis.label, levels.xaxis.label, *levels.get_yticklabels()]
        assert _overlaps(fig, texts) == []
        renderer = fig.canvas.get_renderer()
        right_of_layers = layers.get_window_extent(renderer).x1
        assert all(box.x0 >= right_of_layers for _, box in _extents(fig, levels.get_yticklabels()))
        title = fig._suptitle.get_text()
        assert "alexnet" in title and "eyeriss" in title and "row_stationary" in title and "per image" in title
    finally:
        plt.close(fig)


def test_breakdown_bars_are_per_image():
    # one layer, batch of 4: 40 pJ of MACs and 360 pJ of DRAM weight reads -> 10 and 90 pJ per image
    records = (EnergyRecord("fc", "fc", "compute", "MAC", 4, 16, 40.0), EnergyRecord("fc", "fc", "weight", "DRAM", 9, 16, 360.0))
    fig = breakdown_figure(EnergyReport(records, "pJ", "hw", "flow", "net", levels=("DRAM",), batch=4))
    try:
        layers, levels = fig.axes
        heights = sorted(round(bar.get_height(), 6) for bar in layers.patches)
        assert heights == [10.0, 90.0]
        assert "per image" in layers.get_ylabel() and "(pJ)" in layers.get_ylabel()
        # the level panel is in percent of the total: 40 / 400 = 10 %, 360 / 400 = 90 %
        assert sorted(round(bar.get_width(), 6) for bar in levels.patches) == [10.0, 90.0]
    finally:
        plt.close(fig)


def test_level_bars_are_per_image_like_the_breakdown():
    # the same layer, batch of 4: 40 pJ at the MAC and 360 pJ at DRAM -> 10 and 90 pJ per image
    records = (EnergyRecord("fc", "fc", "compute", "MAC", 4, 16, 40.0), EnergyRecord("fc", "fc", "weight", "DRAM", 9, 16, 360.0))
    fig = levels_figure(EnergyReport(records, "pJ", "hw", "flow", "net", levels=("DRAM",), batch=4))
    try:
        (ax,) = fig.axes
        assert sorted(round(bar.get_height(), 6) for bar in ax.patches if bar.get_height()) == [10.0, 90.0]
        assert "per image" in ax.get_ylabel() and "(pJ)" in ax.get_ylabel()
    finally:
        plt.close(fig)


def _points() -> tuple[list[Point], list[Point]]:
    def point(strength: float, val: float, energy: float) -> Point:
        return Point(label="magnitude", strength=strength, val_accuracy=val, val_samples=500, test_accuracy=val - 0.01,
                     test_samples=1000, energy=energy, energy_unit="MAC-normalized")

    points = [point(0.0, 0.956, 56.2e6), point(0.5, 0.95, 38.4e6), point(0.9, 0.466, 10.5e6)]
    return points, points


def test_sweep_figure_titles_and_plots_validation_accuracy_in_percent():
    points, front = _points()
    fig = sweep_figure(points, "lenet300: magnitude (sparsity) on mnist, eyeriss (row_stationary)", front)
    try:
        fig.canvas.draw()
        (ax,) = fig.axes
        title = ax.get_title()
        assert "lenet300" in title and "mnist" in title and "eyeriss" in title
        assert "%" in ax.get_ylabel() and "validation" in ax.get_ylabel()
        assert ax.get_xlabel() == "energy per image (MAC-normalized)"
        curve = next(line for line in ax.get_lines() if line.get_label() == "magnitude")
        # the table's percentages: 0.956 -> 95.6, 0.95 -> 95.0, 0.466 -> 46.6 (sorted by energy)
        assert list(curve.get_ydata()) == pytest.approx([46.6, 95.0, 95.6])
        assert ax.get_ylim()[1] > 90  # a percent axis (a fraction's would end near 1)
        assert _overlaps(fig, ax.get_xticklabels()) == [] and _overlaps(fig, ax.get_yticklabels()) == []
    finally:
        plt.close(fig)


def test_plot_sweep_writes_a_png(tmp_path):
    points, front = _points()
    path = plot_sweep(points, tmp_path / "sweep.png", "net on data, hw", front)
    assert path.read_bytes()[:4] == b"\x89PNG"

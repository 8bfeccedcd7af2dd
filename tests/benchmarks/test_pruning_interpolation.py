"""The pruning benchmark's equal-accuracy comparison: the interpolated accuracy-energy front, by hand."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pruning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pruning_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_interpolates_between_the_two_front_points_around_the_accuracy(bench):
    points = [(10.0, 0.90), (4.0, 0.88), (2.0, 0.80), (3.0, 0.70)]  # (3, 0.70) is dominated by (2, 0.80)
    assert bench.energy_at_accuracy(points, 0.85) == pytest.approx(2 + 0.05 / 0.08 * 2)
    assert bench.energy_at_accuracy(points, 0.80) == pytest.approx(2.0)
    assert bench.energy_at_accuracy(points, 0.75) == pytest.approx(2.0)  # never extrapolates below the cheapest
    assert bench.energy_at_accuracy(points, 0.95) is None


def test_equal_accuracy_ratio_reads_both_fronts(bench):
    m = bench.Measured
    base = m(0.9, 0.90, 100, (10.0,))
    mag = bench.Line("mag", "", m(0.9, 0.89, 50, (5.0,)), 0, 0, 0.0, (m(0.9, 0.87, 20, (2.5,)),))
    eap = bench.Line("eap", "", m(0.9, 0.89, 40, (2.0,)), 0, 0, 0.0, ())
    red_mag, red_eap = bench.equal_accuracy_ratio(base, mag, eap, 0.88, 0)
    # magnitude: between (2.5, 0.87) and (5, 0.89): 3.75 -> 10 / 3.75; EAP: (2, 0.89) reaches it -> 10 / 2
    assert red_mag == pytest.approx(10 / 3.75) and red_eap == pytest.approx(5.0)

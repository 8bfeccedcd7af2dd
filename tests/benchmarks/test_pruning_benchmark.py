"""The pruning benchmark (benchmarks/pruning.py) end to end in its --quick mode, in a subprocess.

Checks the table it writes: a baseline row and one row per method for each model,
accuracies in [0, 1], reductions >= 1 for the pruning methods, weight reductions that
agree with the weights-kept column (baseline weights / kept, recomputed here), and that
only the "Pruning" section of an existing results file is replaced.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (a minute of CPU); CI runs it, the fast tier does not

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "pruning.py"
METHODS = (
    "magnitude, iterative (Han 2015)",
    "torch.nn.utils.prune global L1 (peer)",
    "structured, ThiNet + LS (physical)",
    "energy-aware (Yang 2017)",
    "neuron elimination, hidden layers (seed 002, no retraining)",
)
INPUT_ELIMINATION = "neuron + input-feature elimination (no retraining)"  # models whose first layer is Linear
# tiny networks of --quick, weights counted by hand:
# mlp 64*48 + 48*24 + 24*10 = 3072 + 1152 + 240 = 4464
# cnn 1*8*9 + 8*16*9 + 64*32 + 32*10 = 72 + 1152 + 2048 + 320 = 3592
DENSE_WEIGHTS = {"mlp": 4464, "cnn": 3592}


def _tables(text: str) -> dict[str, list[list[str]]]:
    """model name -> table rows (cells) of every '### <model> on <dataset>' section."""
    out = {}
    for name, block in re.findall(r"^### (\w+) on \w+\n\n((?:\|.*\n?)+)", text, flags=re.M):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()]
        out[name] = rows[2:]  # skip header and separator
    return out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Pruning\n\nold text\n\n## Later\n\nkeep me too\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out.read_text()


def test_a_row_per_method_for_each_model(quick_run):
    stdout, written = quick_run
    tables = _tables(written)
    assert set(tables) == set(DENSE_WEIGHTS)
    assert [r[0] for r in tables["mlp"]] == ["baseline (dense)", *METHODS, INPUT_ELIMINATION]
    assert [r[0] for r in tables["cnn"]] == ["baseline (dense)", *METHODS]  # conv first: no input features to drop
    assert _tables(stdout) == tables  # the printed table is the written one


def test_values_are_sane(quick_run):
    for name, rows in _tables(quick_run[1]).items():
        base_weights = int(rows[0][5].replace(",", ""))
        assert base_weights == DENSE_WEIGHTS[name]
        for cells in rows:
            (val, val_se), (test, test_se) = (map(float, cells[i].split(" ± ")) for i in (2, 3))
            assert 0.0 <= val <= 1.0 and 0.0 <= test <= 1.0
            # binomial standard errors on the quick run's 180 validation / 360 test digits
            assert val_se == pytest.approx((val * (1 - val) / 180) ** 0.5, abs=6e-4)
            assert test_se == pytest.approx((test * (1 - test) / 360) ** 0.5, abs=6e-4)
            kept = int(cells[5].replace(",", ""))
            assert 0 < kept <= base_weights
            assert float(cells[6].rstrip("x")) == pytest.approx(base_weights / kept, abs=0.006)
            for reduction in (cells[6], cells[7], cells[8]):
                assert float(reduction.rstrip("x")) >= 1.0
            assert float(cells[11]) >= 0.0
        assert rows[0][6:9] == ["1.00x", "1.00x", "1.00x"]  # the baseline against itself


def test_targets_and_budgets_are_stated(quick_run):
    written = quick_run[1]
    assert "Budgets:" in written and "Targets (issue 4):" in written
    for name in DENSE_WEIGHTS:
        for view in ("as chosen on validation", "on the test curves"):
            assert re.search(rf"- {name}, eyeriss/row_stationary, {view}.*: EAP .* \*\*(met|NOT met)\*\*", written)
        assert re.search(rf"- {name}, eyeriss/row_stationary, at equal test accuracy [\d.]+ .*: EAP [\d.]+x vs "
                         rf"magnitude [\d.]+x energy reduction = \*\*[\d.]+x\*\*", written)


def _curve_tables(text: str) -> dict[str, list[list[str]]]:
    """model name -> rows of the 'On the test curves' table that follows each model's main table."""
    out = {}
    for name, block in re.findall(r"^### (\w+) on \w+\n\n(?:\|.*\n)+\nOn the test curves.*\n\n((?:\|.*\n?)+)", text, flags=re.M):
        out[name] = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()][2:]
    return out


def test_curve_tables_list_the_fine_tuning_methods_and_the_ceiling(quick_run):
    curves = _curve_tables(quick_run[1])
    assert set(curves) == set(DENSE_WEIGHTS)
    for name, rows in curves.items():
        methods = [r[0] for r in rows]
        assert methods[-1].startswith("ceiling of unstructured pruning")
        assert "magnitude, iterative (Han 2015)" in methods and "energy-aware (Yang 2017)" in methods
        assert not any(m.startswith("neuron") for m in methods)  # no fine-tuning, no curve
        for cells in rows[:-1]:
            assert int(cells[1]) >= 1
            for cell in cells[2:]:  # "2.10x (-0.4, 3.0x)": test loss within the 1-point budget
                if cell != "none":
                    assert float(re.match(r"[\d.]+x \(([-+][\d.]+),", cell).group(1)) >= -1.0


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("pruning_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the class is created
    spec.loader.exec_module(module)
    return module


def test_best_on_curve_takes_the_largest_reduction_within_the_test_budget():
    bench = _benchmark_module()
    P = bench.Measured
    base = P(val=0.95, test=0.960, weights=100, energy=(100.0, 1000.0))
    curve = (P(0.95, 0.958, 50, (50.0, 400.0)),   # -0.2: 2x / 2.5x
             P(0.94, 0.951, 20, (40.0, 100.0)),   # -0.9: 2.5x / 10x
             P(0.93, 0.940, 10, (20.0, 50.0)))    # -2.0: outside the 1-point budget
    assert bench.best_on_curve(base, curve, 0.01, 0) is curve[1]
    assert bench.best_on_curve(base, curve, 0.01, 1) is curve[1]
    assert bench.best_on_curve(base, curve, 0.005, 0) is curve[0]
    assert bench.best_on_curve(base, curve[2:], 0.01, 0) is None


def test_only_the_pruning_section_is_replaced(quick_run):
    written = quick_run[1]
    assert "keep me\n" in written and "keep me too" in written and "old text" not in written
    assert written.index("## Other") < written.index("## Pruning") < written.index("## Later")
    assert written.count("## Pruning") == 1

"""The quantization benchmark (benchmarks/quantization.py) end to end in its --quick mode, in a subprocess.

Checks the section it writes: for each tiny model, a float row and one row per scheme,
the peer and the pruning + quantization chain; widths as the seeds' table writes them;
energy reductions that follow the widths (8-bit weights: about 4x on horowitz45, whose
DRAM weight traffic dominates; 1-bit everywhere: more than 8-bit); model bytes recomputed
from the widths; and that only the "Quantization (digits)" section of an existing file is replaced.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (tens of CPU-seconds)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "quantization.py"
# tiny networks of --quick, weights and biases counted by hand:
# mlp 64*48 + 48*24 + 24*10 = 4464 weights, 48 + 24 + 10 = 82 biases
# cnn 1*8*9 + 8*16*9 + 64*32 + 32*10 = 3592 weights, 8 + 16 + 32 + 10 = 66 biases
WEIGHTS, BIASES, LAYERS = {"mlp": 4464, "cnn": 3592}, {"mlp": 82, "cnn": 66}, {"mlp": 3, "cnn": 4}


def _rows(text: str) -> dict[str, dict[str, list[str]]]:
    out = {}
    for name, block in re.findall(r"^### (\w+) on \w+\n\n((?:\|.*\n?)+)", text, flags=re.M):
        lines = [line for line in block.strip().splitlines()[2:]]
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        out[name] = {c[0]: c for c in cells}
    return out


def test_quick_benchmark_writes_the_quantization_section(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## Pruning\n\nkept\n\n## Quantization (digits)\n\nold\n", encoding="utf-8")
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], check=True, cwd=ROOT,
                   capture_output=True, text=True, timeout=600)
    text = out.read_text(encoding="utf-8")
    assert "## Pruning\n\nkept\n" in text and "old" not in text and "## Quantization (digits)\n" in text
    tables = _rows(text)
    assert set(tables) == {"mlp", "cnn"}
    for name, rows in tables.items():
        float_row = rows["float 32-bit"]
        assert float(float_row[9]) == pytest.approx((WEIGHTS[name] + BIASES[name]) * 4 / 1000, abs=0.05)
        uniform = rows["uniform affine, PTQ"]
        assert uniform[3:5] == ["8", "8"]
        assert 3.8 < float(uniform[8].rstrip("x")) < 4.3  # horowitz45: 32-bit -> 8-bit weights dominate
        # 8-bit weights: one byte each; float32 biases and two float32 input scales per layer
        assert float(uniform[9]) == pytest.approx((WEIGHTS[name] + 4 * BIASES[name] + 8 * LAYERS[name]) / 1000, abs=0.05)
        assert any(k.startswith("TWN") for k in rows) and rows[next(k for k in rows if k.startswith("TWN"))][3] == "2*"
        bnn = rows[next(k for k in rows if k.startswith("BNN"))]
        assert bnn[3] == "1" and bnn[4].startswith("1 (first layer 8)")
        assert float(bnn[8].rstrip("x")) > float(uniform[8].rstrip("x"))
        assert any("peer" in k for k in rows)
        assert any(k.startswith("magnitude,quantize") for k in rows) and any(k.startswith("magnitude alone") for k in rows)
        for cells in rows.values():
            assert 0.0 <= float(cells[5].rstrip("%")) <= 100.0

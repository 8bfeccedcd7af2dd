"""The sparse-hardware benchmark (benchmarks/sparse_hardware.py) in its --quick mode, in a subprocess.

Checks the section it writes: reductions recomputed from the printed totals, every weight
level shrinking on eyeriss_v2 while eyeriss's on-chip weight levels do not move, and that
other sections of an existing results file are kept.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (seconds of CPU after imports)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "sparse_hardware.py"


def test_quick_run_writes_its_section(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Sparse-weight hardware\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--models", "lenet5", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "keep me" in text and "old text" not in text
    rows = {cells[1]: cells for cells in (
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("| lenet5"))}
    assert set(rows) == {"eyeriss", "eyeriss_v2", "horowitz45"}
    for cells in rows.values():
        assert float(cells[5].lstrip("x")) == pytest.approx(float(cells[3]) / float(cells[4]), rel=2e-3)
    levels = {hw: dict(re.findall(r"(\w+) [\d.e+-]+ -> [\d.e+-]+ \(x([\d.]+)\)", rows[hw][6])) for hw in rows}
    assert set(levels["eyeriss_v2"]) == {"DRAM", "global_buffer", "array", "RF"}
    assert all(float(x) > 3 for x in levels["eyeriss_v2"].values())
    assert float(levels["eyeriss"]["DRAM"]) > 3
    assert all(levels["eyeriss"][lvl] == "1.00" for lvl in ("global_buffer", "array", "RF"))

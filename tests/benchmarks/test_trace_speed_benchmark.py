"""The trace-speed benchmark (benchmarks/trace_speed.py) in its --quick mode (LeNet-5), in a subprocess.

Checks the section it writes: one row per counter; the "x dnnergy" column equal to each
row's seconds over the default trace's (recomputed from the printed seconds, to their
rounding); both dnnergy rows and the real forward reporting LeNet-5's MACs, 2,293,000 by
hand (conv1 20x1x5x5 on 24x24: 288,000; conv2 50x20x5x5 on 8x8: 1,600,000; fc 800x500:
400,000; fc 500x10: 5,000); other sections of the results file kept. (The ``--results``
alias is run by ``tests/workload/test_peer_agreement.py``.) Wall-time ratios themselves are
not asserted (a shared machine makes them noisy).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # imports torch, fvcore and ptflops in a subprocess

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "trace_speed.py"
LENET5_MACS = 20 * 1 * 5 * 5 * 24 * 24 + 50 * 20 * 5 * 5 * 8 * 8 + 800 * 500 + 500 * 10


def test_quick_run_writes_its_section(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Trace speed\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "keep me" in text and "old text" not in text
    rows = {m[1]: (float(m[2]), float(m[3]), int(m[5].replace(",", "")))
            for m in re.finditer(r"^\| (.+?) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d,]+) \|$", text, re.M)}
    assert len(rows) == 6 and LENET5_MACS == 2_293_000
    base = rows["dnnergy.trace (default: shapes only)"][0]
    half = 0.00005  # the seconds are printed to 4 decimals, the ratios to 2
    assert base > half
    for seconds, ratio, _ in rows.values():
        assert (seconds - half) / (base + half) - 0.005 <= ratio <= (seconds + half) / (base - half) + 0.005
    for name in ("dnnergy.trace (default: shapes only)", "dnnergy.trace (default), a new copy of the model each run",
                 "dnnergy.trace(compute=True) (real forward)"):
        assert rows[name][2] == LENET5_MACS
    assert re.search(r"default trace is \*\*[\d.]+x\*\* faster than fvcore \((meets|does NOT meet) the 10x target\)", text)


"""The NetAdapt benchmark (benchmarks/netadapt.py) end to end in its --quick mode, in a subprocess.

Checks the table it writes: one row per (metric, budget), each budget met (the resource
column at or below the budget), accuracies in [0, 1], a measured and a predicted speed-up
for the latency row, and that only the "NetAdapt" section of an existing file is replaced.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (about a minute of CPU)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "netadapt.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## NetAdapt\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--executors", "local", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out.read_text()


def _rows(text: str) -> list[list[str]]:
    block = re.search(r"^### tiny_cnn on digits.*\n\n((?:\|.*\n?)+)", text, flags=re.M).group(1)
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()][2:]


def test_every_budget_is_met_with_sane_numbers(quick_run):
    rows = _rows(quick_run[1])
    assert [r[0] for r in rows] == ["energy 50%", "latency 50%"]
    for cells in rows:
        resource, verdict = re.match(r"([\d.]+)% \((met|NOT met)\)", cells[1]).groups()
        assert verdict == "met" and float(resource) <= 50.0
        assert int(cells[2]) >= 1 and 0.0 <= float(cells[3]) <= 1.0
    predicted, measured = re.match(r"([\d.]+)x / ([\d.]+)x", rows[1][8]).groups()
    # the budget column is checked above; the speed-up columns are re-timed on a shared CPU, so only their sign
    assert float(predicted) > 1.0 and float(measured) > 0


def test_only_the_netadapt_section_is_replaced(quick_run):
    stdout, written = quick_run
    assert "keep me" in written and "old text" not in written and written.count("## NetAdapt") == 1
    assert "### Executors" in written and "- local (serial):" in written
    assert _rows(stdout) == _rows(written)

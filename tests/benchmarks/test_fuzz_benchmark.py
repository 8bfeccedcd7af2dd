"""The fuzz benchmark (benchmarks/fuzz.py) in its --quick mode, in a subprocess.

Checks the section it writes: 16 networks, no failures, the total row equal to the sum of
the family rows, and 10 estimates per workload (3 presets x 3 dataflows + one with
non-MAC layers excluded) for every traced network and every ONNX round trip; other
sections of an existing results file are kept.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (16 networks, seconds of CPU after imports)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "fuzz.py"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Fuzz\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


def test_counts_add_up(written):
    rows = re.findall(r"^\| (\*\*all\*\*|[a-z0-9]+) \| ((?:\**\d+\**(?: \| )?)+) \|$", written, flags=re.M)
    table = {name.strip("*"): [int(c.strip().strip("*")) for c in cells.split("|")] for name, cells in rows}
    total = table.pop("all")
    networks, traced, estimates, onnx, skipped, failures = total
    assert networks == 16 and failures == 0
    assert [sum(col) for col in zip(*table.values())] == total
    assert traced == networks and estimates == 10 * (traced + onnx)
    assert onnx + skipped == traced  # every traced network was either round-tripped or skipped with a reason
    assert "Failures by kind:\n\nnone." in written


def test_other_sections_are_kept(written):
    assert "## Other\n\nkeep me" in written and "old text" not in written

"""The Deep Compression benchmark (benchmarks/deep_compression.py) in its --quick mode, in a subprocess.

Checks the table it writes against numbers recomputed here: the dense size of the two tiny
networks by hand, the file size as the sum of its parts, the on-disk ratio as dense / file,
and that only its own section of an existing results file is replaced.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script; CI runs it, the fast tier does not

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "deep_compression.py"
# parameters at 4 bytes: mlp (64*48 + 48) + (48*10 + 10) = 3,600 -> 14,400 bytes;
# cnn (8*9 + 8) + (128*10 + 10) = 1,370 -> 5,480 bytes
DENSE_KB = {"mlp": 14.4, "cnn": 5.5}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Deep Compression (quick)\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


def test_rows_agree_with_their_own_sizes(written):
    assert "## Other\n\nkeep me" in written and "old text" not in written
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in written.splitlines()
            if line.startswith(("| mlp", "| cnn"))]
    assert [r[0] for r in rows] == ["mlp", "cnn"]
    for cells in rows:
        assert cells[2] == "5.0%, 5"  # the quick budget and FC index bits
        assert float(cells[6]) == DENSE_KB[cells[0]]
        total, parts = cells[7].split(":")
        assert sum(float(p) for p in parts.split("+")) == pytest.approx(float(total), abs=0.3)
        assert float(cells[8].rstrip("x")) == pytest.approx(DENSE_KB[cells[0]] / float(total), rel=0.05)
        before, after = re.findall(r"([\d.]+)%", cells[3])
        assert 0 <= float(after) <= 100 and 0 <= float(before) <= 100
        assert float(cells[10].rstrip("x")) > 1.0  # pruned and coded: less energy

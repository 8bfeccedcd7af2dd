"""The soak benchmark (benchmarks/soak.py) in its --quick mode, in a subprocess.

Checks the section it writes: both phases ran the asked number of times, four memory
samples per phase consistent with the "growth" (40 % to the end) and "flat" columns,
and other sections of an existing results file are kept.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (seconds after imports)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "soak.py"


def test_quick_soak_writes_a_consistent_table(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Soak\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "keep me" in text and "old text" not in text
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in re.findall(r"^\|.*\|$", text, flags=re.M)][2:]
    assert [r[0] for r in rows] == ["trace + estimate random networks", "magnitude + quantize cycles"]
    refused = int(re.search(r"(\d+) of 60 random networks were refused", text).group(1))
    assert int(rows[0][1].replace(",", "")) == 60 - refused and int(rows[1][1]) == 4
    for row in rows:
        rss = [float(x) for x in row[3].split("/")]
        assert len(rss) == 4 and all(r > 0 for r in rss)
        growth = float(row[4])
        assert growth == pytest.approx(rss[-1] - rss[1], abs=1.0)
        files_warm, files_end = map(int, row[5].split("/"))
        assert row[6] == ("yes" if growth <= 32 and files_end <= files_warm else "**no**")

"""The start-up benchmark (benchmarks/startup.py) in its --quick mode, in a subprocess.

Checks the section it writes: one row per timed command, each ratio equal to its seconds
over the torch import's (recomputed from the printed seconds), the verdict line against
the 1.5x target agreeing with the printed ratio, ``--help`` importing none of the heavy
modules, and other sections of an existing results file kept. Wall-time ratios themselves
are not asserted (a shared machine makes them noisy).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts torch in about ten subprocesses

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "startup.py"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Start-up\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


def _rows(text):
    return {m[1]: (float(m[2]), float(m[3])) for m in re.finditer(r"^\| `(.+?)` \| ([\d.]+) \| ([\d.]+)x \|$", text, re.M)}


def test_rows_and_ratios(written):
    rows = _rows(written)
    assert list(rows) == ['python -c "import torch"', "dnnergy --help", "dnnergy zoo", "dnnergy methods", "dnnergy estimate lenet5 --json"]
    base = rows['python -c "import torch"'][0]
    assert base > 0 and rows['python -c "import torch"'][1] == 1.0
    for seconds, ratio in rows.values():
        assert ratio == pytest.approx(seconds / base, abs=0.01 + 0.006 * seconds / base)  # both printed rounded


def test_verdict_and_help_imports(written):
    ratio = float(re.search(r"lenet5 --json` takes ([\d.]+)x the torch import, (within|over)", written)[1])
    verdict = re.search(r"x the torch import, (within|over) the 1.5x target", written)[1]
    assert verdict == ("within" if ratio <= 1.5 else "over")
    assert ratio == pytest.approx(_rows(written)["dnnergy estimate lenet5 --json"][1], abs=0.011)
    assert "Heavy modules imported by `dnnergy --help` (torch, scipy, pandas, matplotlib, onnx): none." in written


def test_other_sections_are_kept(written):
    assert "## Other\n\nkeep me" in written and "old text" not in written

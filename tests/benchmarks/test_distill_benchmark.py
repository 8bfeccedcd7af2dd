"""The distillation benchmark (benchmarks/distill.py) end to end in its --quick mode, in a subprocess.

Checks the table against hand numbers: the tiny teacher's and student's weights, the binomial
standard error recomputed from the mean accuracy and the 360 digits test images, and the
energy ratios; and that only its section of an existing results file changes.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (tens of seconds); CI runs it, the fast tier does not

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "distill.py"
TEACHER_WEIGHTS = 64 * 48 + 48 * 24 + 24 * 10  # 4,464
STUDENT_WEIGHTS = 64 * 16 + 16 * 10  # 1,184
TEST_IMAGES = 360  # digits: 1,257 / 180 / 360


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Distillation\n\nold text\n\n## Later\n\nkeep me\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out.read_text()


def test_rows_and_numbers(quick_run):
    block = re.search(r"^### digits\n\n.*\n\n((?:\|.*\n?)+)", quick_run[1], flags=re.MULTILINE).group(1)
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()][2:]
    assert [(r[1], r[2]) for r in rows] == [("quick_teacher (teacher)", "labels"),
                                            ("quick_student", "labels (cross-entropy)"),
                                            ("quick_student", "soft targets of quick_teacher")]
    assert int(rows[0][6].replace(",", "")) == TEACHER_WEIGHTS and rows[0][8] == "1.000"
    teacher_energy = float(rows[0][7])
    for r in rows[1:]:
        p = float(r[3]) / 100
        assert 0 < p <= 1 and float(r[4]) >= 0
        assert float(r[5]) == pytest.approx(100 * math.sqrt(p * (1 - p) / TEST_IMAGES), abs=0.006)
        assert int(r[6].replace(",", "")) == STUDENT_WEIGHTS
        assert float(r[8]) == pytest.approx(float(r[7]) / teacher_energy, abs=2e-3) and float(r[8]) < 1


def test_only_its_section_is_replaced(quick_run):
    written = quick_run[1]
    assert "keep me" in written and "old text" not in written
    assert written.index("## Distillation") < written.index("## Later")

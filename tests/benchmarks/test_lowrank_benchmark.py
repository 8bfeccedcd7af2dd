"""The low-rank benchmark (benchmarks/lowrank.py) end to end in its --quick mode, in a subprocess.

Checks its tables against hand numbers: the tiny CNN's dense weights, energy ratios recomputed
from the energy column, and the activation words of each decomposed conv in closed form from
the ranks the table reports; and that only its section of an existing results file changes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (tens of seconds); CI runs it, the fast tier does not

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "lowrank.py"
# conv 1->8 3x3 (72) + conv 8->16 3x3 (1,152) + fc 64x32 (2,048) + fc 32x10 (320)
DENSE_WEIGHTS = 3_592
# (input channels, output channels, pixels) of the tiny CNN's convs: 8x8 maps, then 4x4 after the pool
CONVS = {"0": (1, 8, 64), "3": (8, 16, 16)}


def _rows(block: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()][2:]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Low-rank decomposition\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, out.read_text()


def test_main_table(quick_run):
    written = quick_run[1]
    block = re.search(r"^### cnn on digits\n\n((?:\|.*\n)+)", written, flags=re.MULTILINE).group(1)
    rows = _rows(block)
    assert [r[0] for r in rows[:5]] == ["baseline", "lowrank", "lowrank", "lowrank", "lowrank"]
    assert rows[5:] and all(r[0] == "structured (L1)" for r in rows[5:])
    assert int(rows[0][5].replace(",", "")) == DENSE_WEIGHTS
    base_energy = float(rows[0][7])
    for r in rows:
        assert 0 <= float(r[3]) <= 1 and 0 <= float(r[4]) <= 1 and 0 <= float(r[9]) <= 1 and float(r[10]) > 0
        assert float(r[8]) == pytest.approx(float(r[7]) / base_energy, abs=2e-3)
    for r in rows[1:]:
        assert int(r[5].replace(",", "")) < DENSE_WEIGHTS


def test_per_layer_activation_words_follow_the_ranks(quick_run):
    block = re.search(r"^Per layer, lowrank tucker2 at keep 0.9.*\n\n((?:\|.*\n)+)", quick_run[1], flags=re.MULTILINE).group(1)
    checked = 0
    for cells in _rows(block):
        if cells[0] in CONVS and cells[1] == "tucker2_conv2d":
            c, m, px = CONVS[cells[0]]
            r_in, r_out = map(int, cells[2].split("x"))
            # 1x1 C->R_in, core R_in->R_out, 1x1 R_out->M, all at `px` pixels (stride 1, same padding)
            before, after = (int(v.replace(",", "")) for v in cells[6].split("->"))
            assert (before, after) == (px * (c + m), px * (c + 2 * r_in + 2 * r_out + m))
            checked += 1
    assert checked >= 1
    assert "feature-map (ifmap + ofmap) energy" in quick_run[1]


def test_only_its_section_is_replaced(quick_run):
    written = quick_run[1]
    assert "keep me" in written and "old text" not in written and written.count("## Low-rank decomposition") == 1
    assert quick_run[0].strip() in written  # the printed text is the written one

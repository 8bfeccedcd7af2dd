"""The feature-map coding benchmark (benchmarks/fmap_coding.py) in its --quick mode, in a subprocess.

Checks the section it writes: a table per tiny network, sizes against closed forms
recomputed from each row (raw = numel x 2 bytes; zero-flag = (numel + 16 x non-zeros) / 8
bytes, from the printed density), the whole-network row as the sum of the layers, and that
other sections of an existing results file are kept.
"""

from __future__ import annotations

import re
import subprocess
import sys
from math import prod
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark script (seconds of CPU after imports)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "fmap_coding.py"


def _tables(text):
    """'<model>' -> table rows (cells) of every '### <model> on ...' section."""
    out = {}
    for name, block in re.findall(r"^### (\w+) on [\w-]+, 16-bit activations\n\n((?:\|.*\n?)+)", text, flags=re.M):
        rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()]
        out[name] = rows[2:]
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Feature-map coding\n\nold text\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


def number(cell):
    return float(cell.replace(",", ""))


def test_tables_agree_with_closed_forms(written):
    tables = _tables(written)
    assert set(tables) == {"mlp", "cnn"}
    # mlp: Linear(64, 32) and Linear(32, 10) read 16 x 64 and 16 x 32 values; cnn: 2 convs + 1 fc
    assert [r[1] for r in tables["mlp"][:-1]] == ["16x64", "16x32"]
    assert [r[1] for r in tables["cnn"][:-1]] == ["16x1x8x8", "16x4x6x6", "16x128"]
    for rows in tables.values():
        for row in rows[:-1]:
            numel = prod(int(n) for n in row[1].split("x"))
            nonzeros = round(number(row[2]) * numel)
            assert number(row[3]) == numel * 2  # 16-bit raw
            assert abs(number(row[5]) - (numel + 16 * nonzeros) / 8) <= 1 + 16 * 0.0005 * numel / 8
            assert number(row[4]) % 8 == 0  # whole 64-bit words
            assert number(row[9]) >= 1 and row[11] == "yes"
        for col in (3, 4, 5, 6):
            assert number(rows[-1][col]) == sum(number(r[col]) for r in rows[:-1])


def test_other_sections_are_kept(written):
    assert "## Other\n\nkeep me" in written and "old text" not in written

"""benchmarks/run_all.py: section merging (pure) and a real two-script --quick run."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "run_all.py"


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_merge_joins_a_section_written_by_several_runs_in_order(run_all):
    first = "# Benchmark results\n\n## A\n\none\n\n## B\n\nb\n"
    second = "# Benchmark results\n\n## A\n\ntwo\n"
    assert run_all.merge([first, second]) == [("A", "one\n\ntwo"), ("B", "b")]


def test_every_listed_script_exists_and_takes_out(run_all):
    for script, _ in run_all.RUNS:
        text = (ROOT / "benchmarks" / script).read_text()
        assert '"--out"' in text, f"{script} has no --out option"


def test_unknown_only_name_is_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--only", "nosuch", "--dry-run"], capture_output=True, text=True)
    assert proc.returncode == 2 and "nosuch" in proc.stderr


@pytest.mark.slow
def test_quick_run_of_two_scripts_keeps_other_sections(tmp_path):
    out = tmp_path / "results.md"
    out.write_text("# Benchmark results\n\n## Other\n\nkeep me\n\n## Soak\n\nold\n")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--only", "soak,estimate_speed", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "keep me" in text and "\nold\n" not in text
    assert text.index("## Soak") > text.index("## Other") and "## Estimate speed" in text
    assert "benchmarks/soak.py --quick" in text and "benchmarks/estimate_speed.py --quick" in text

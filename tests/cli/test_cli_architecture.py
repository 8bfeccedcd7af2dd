"""``dnnergy --architecture module:factory``: the command line names the factory a saved model file was built by.

A file alone never makes dnnergy import code (tests/fuzz/test_file_fuzz.py); these run the
real command in a subprocess, in the folder that holds the user's module, and check that
the module is imported only when the command line names it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # subprocesses

MODULE = textwrap.dedent("""
    from pathlib import Path
    from torch import nn
    Path("imported.marker").write_text("yes")

    def build():
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        model.input_shape = (1, 1, 8, 8)
        return model
""")


@pytest.fixture()
def saved(tmp_path):
    (tmp_path / "mymodels.py").write_text(MODULE)
    script = ("import sys, torch; sys.path.insert(0, '.'); from dnnergy.compress.artifact import build_architecture, save; "
              "save('m.dnnergy', build_architecture('mymodels:build'), example=torch.zeros(1, 1, 8, 8))")
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "imported.marker").unlink()
    return tmp_path


def dnnergy(folder, *argv):
    return subprocess.run([sys.executable, "-m", "dnnergy", *argv], cwd=folder, capture_output=True, text=True, timeout=300)


def test_a_file_naming_a_factory_is_refused_without_importing_it(saved):
    proc = dnnergy(saved, "summary", "m.dnnergy")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "mymodels:build" in proc.stderr and "--architecture mymodels:build" in proc.stderr
    assert not (saved / "imported.marker").exists()


def test_naming_the_factory_on_the_command_line_rebuilds_the_model(saved):
    proc = dnnergy(saved, "--architecture", "mymodels:build", "summary", "m.dnnergy", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["macs"] == 64 * 10  # one Linear(64, 10) at batch 1
    assert (saved / "imported.marker").exists()


def test_a_malformed_factory_name_is_one_line(saved):
    proc = dnnergy(saved, "--architecture", "not a factory", "summary", "m.dnnergy")
    assert proc.returncode == 2 and "pkg.models:build" in proc.stderr and "Traceback" not in proc.stderr

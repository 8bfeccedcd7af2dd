"""Issue 13, the user's first hour: bad outputs and options fail in one line before any work; --version; cwd imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dnnergy.cli.estimate import parse_bits
from dnnergy.errors import UserInputError

DIGITS = """
import torch.nn as nn

def digits_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

digits_mlp.input_shape = (1, 1, 8, 8)
"""


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the error was found")


@pytest.fixture()
def no_work(monkeypatch):
    """Make loading a model or preparing a job fail loudly: errors must come before both."""
    import dnnergy.cli._resolve as resolve
    import dnnergy.cli.compress as job

    for module, name in ((resolve, "load_workload"), (resolve, "load_model"), (job, "prepare")):
        monkeypatch.setattr(module, name, _no_work)


def _one_line_error(result: tuple[int, str, str], expected: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


#: (argv, what the one-line error says) of issue 13's items 1-3 and 7; ``{tmp}`` is a fresh folder.
BAD_INPUT = [
        (["estimate", "lenet5", "--plot", "{tmp}/out.txt"], "cannot write .txt plots"),
        (["estimate", "lenet5", "--plot", "{tmp}"], "is a directory"),
        (["estimate", "lenet5", "--plot", "{tmp}/no/such/dir/x.png"], "does not exist"),
        (["tradeoff", "lenet300", "--plot", "{tmp}/out.txt"], "cannot write .txt plots"),
        (["compress", "lenet300", "--method", "magnitude", "--out", "{tmp}"], "is a directory"),
        (["compress", "lenet300", "--method", "magnitude", "--out", "{tmp}/no/such/dir/x.pt"], "does not exist"),
        (["adapt", "lenet300", "--budget", "macs=0.5", "--out", "{tmp}"], "is a directory"),
        (["adapt", "lenet300", "--budget", "macs=0.5", "--out", "{tmp}/no/such/dir/x"], "does not exist"),
        (["estimate", "lenet5", "--bits", "99,8"], "from 1 to 32 bits"),
        (["estimate", "lenet5", "--bits", "1000000,8"], "from 1 to 32 bits"),
        (["estimate", "lenet5", "--bits", "8,0"], "from 1 to 32 bits"),
        (["estimate", "lenet5", "--json", "--csv"], "--json and --csv exclude each other"),
        (["summary", "lenet5", "--json", "--csv"], "--json and --csv exclude each other"),
        (["report", "lenet5", "-o", "{tmp}"], "is a directory"),
        (["estimate", "lenet5", "--hardware", "{tmp}/missing.yaml"], "missing.yaml"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUT)
def test_bad_outputs_and_options_fail_in_one_line_before_any_work(cli, tmp_path, no_work, argv, expected):
    _one_line_error(cli(*(a.replace("{tmp}", str(tmp_path)) for a in argv)), expected)


@pytest.mark.parametrize(("argv", "expected"), BAD_INPUT)
@pytest.mark.slow  # a subprocess per case (about 2 s of start-up each)
def test_the_real_command_gives_the_same_one_line_errors(tmp_path, argv, expected):
    """The same cases through ``python -m dnnergy`` in a subprocess: exit status 2, one line, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "dnnergy", *(a.replace("{tmp}", str(tmp_path)) for a in argv)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "DNNERGY_CACHE_DIR": str(tmp_path / "cache")})
    _one_line_error((proc.returncode, proc.stdout, proc.stderr), expected)


def test_adapt_refuses_a_directory_where_its_side_files_go(cli, tmp_path, no_work):
    (tmp_path / "m.history.json").mkdir()
    _one_line_error(cli("adapt", "lenet300", "--budget", "macs=0.5", "--out", str(tmp_path / "m")), "m.history.json: is a directory")


def test_bits_accepts_the_whole_range():
    assert parse_bits("1,32") == (1, 32)
    assert parse_bits("32") == (32, 32)
    with pytest.raises(UserInputError, match="got '33'"):
        parse_bits("33")


def test_version_prints_the_installed_version(cli):
    from importlib.metadata import version

    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"dnnergy {version('dnnergy')}"
    assert out.strip().split()[1][0].isdigit()


def test_compress_with_zero_epochs_never_fine_tunes(cli, tmp_path, monkeypatch):
    import dnnergy.cli.compress as job

    (tmp_path / "first_hour_digits.py").write_text(textwrap.dedent(DIGITS))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DNNERGY_CACHE_DIR", str(tmp_path / "cache"))
    contexts = []
    prepare = job.prepare

    def spy(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        contexts.append(prepared.context)
        return prepared

    monkeypatch.setattr(job, "prepare", spy)
    try:
        code, out, err = cli("compress", "first_hour_digits:digits_mlp", "--data", "digits", "--method", "magnitude",
                             "--sparsity", "0.5", "--epochs", "0", "--json")
    finally:
        sys.modules.pop("first_hour_digits", None)
    assert code == 0, err
    assert json.loads(out)["method"] == "magnitude"
    assert [c.fine_tuning for c in contexts] == [None]


def test_a_factory_in_the_current_folder_imports(tmp_path):
    package = tmp_path / "mypkg_first_hour"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(DIGITS))
    env = {**os.environ, "PYTHONPATH": ""}  # nothing but the current folder can supply mypkg_first_hour
    script = Path(sys.executable).with_name("dnnergy")  # the console script: unlike `python -m`, it adds no cwd
    proc = subprocess.run([str(script), "summary", "mypkg_first_hour.models:digits_mlp", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    # 64*16 + 16*10 = 1,024 + 160 MACs
    assert json.loads(proc.stdout)["totals"]["macs"] == 1_184


def test_an_unforeseen_os_error_on_a_path_is_one_line(cli, tmp_path, monkeypatch):
    import dnnergy.report

    def refused(report, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(dnnergy.report, "plot_breakdown", refused)
    _one_line_error(cli("estimate", "lenet5", "--plot", str(tmp_path / "x.png")), f"{tmp_path / 'x.png'}: Permission denied")

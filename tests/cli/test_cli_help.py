"""Every command's --help ends with examples, flags show no value type, and each example uses only
options the command (or, for compress and tradeoff, its methods) takes."""

from __future__ import annotations

import shlex

import pytest
import typer.main
from typer.testing import CliRunner

from dnnergy.cli import _EXAMPLES, app
from dnnergy.compress import get_method

COMMANDS = typer.main.get_command(app).commands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_has_examples_and_plain_flags(name):
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"dnnergy {name}" in result.output.split("Examples:")[1]
    assert "<bool>" not in result.output  # flags take no value


@pytest.mark.parametrize("name", sorted(_EXAMPLES))
def test_examples_use_known_options(name):
    command = COMMANDS[name]
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    for line in _EXAMPLES[name]:
        argv = shlex.split(line.split("   (")[0].split(" > ")[0])
        assert argv[:2] == ["dnnergy", name]
        methods = argv[argv.index("--method") + 1].split(",") if "--method" in argv else []
        taken = {f"--{p.name.replace('_', '-')}" for m in methods for p in get_method(m).params}
        unknown = {arg for arg in argv if arg.startswith("-") and arg not in known | taken}
        assert not unknown, f"{line}: {unknown}"

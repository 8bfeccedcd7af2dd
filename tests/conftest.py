"""Suite-wide settings and fixtures: one torch thread per test process; ``cli`` runs the
dnnergy command in-process and captures what it prints.

The suite runs under pytest-xdist with one worker per core; letting every worker also
spawn a thread per core oversubscribes the machine and makes small models slower.
"""

import pytest
import torch

from dnnergy.cli import main

torch.set_num_threads(1)


@pytest.fixture()
def cli(capsys, monkeypatch):
    """``cli("summary", "lenet5")`` -> ``(exit status, stdout, stderr)``, printed as into a pipe
    (no ``$COLUMNS``: pytest-xdist's workers set it to 80)."""
    monkeypatch.delenv("COLUMNS", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run

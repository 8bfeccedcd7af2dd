"""The ``cli`` fixture: run the dnnergy command in-process and capture what it prints."""

from __future__ import annotations

import pytest

from dnnergy.cli import main


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

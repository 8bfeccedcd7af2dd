"""docs/cli.md is what ``python docs/cli_reference.py`` generates from the commands today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import dnnergy.cli

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.generate()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == text, "docs/cli.md is stale: run python docs/cli_reference.py"
    for name in ("summary", "estimate", "compress", "tradeoff", "adapt", "report", "methods", "zoo", "demo"):
        assert f"## `dnnergy {name}`" in text and f"$ dnnergy {name}" in text
    assert dnnergy.cli.MODEL_HELP in text

"""Shared fixtures of the energy tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def nn_dataflow_compare():
    """``benchmarks/nn_dataflow_compare.py`` as a module (the comparison with nn_dataflow 2.1's
    cached results, ``benchmarks/nn_dataflow_reference.json``)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "nn_dataflow_compare.py"
    spec = importlib.util.spec_from_file_location("nn_dataflow_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

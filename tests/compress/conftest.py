"""Fixtures shared by the compression tests."""

import pytest

from dnnergy.data import Dataset, load_dataset


@pytest.fixture(scope="session")
def digits() -> Dataset:
    """scikit-learn's digits, split 1,257 / 180 / 360 (read once per test process)."""
    return load_dataset("digits")

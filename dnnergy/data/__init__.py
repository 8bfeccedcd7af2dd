"""Data that ships inside installed packages: ``load_dataset("fashion-mnist" | "mnist" | "digits" | "synthetic")``,
and any MNIST-style IDX directory (``load_dataset("idx:DIR")``).

Every loader returns a :class:`Dataset` of stratified train / val / test splits, plus a
``select`` split for search decisions where the data set is large enough (no
downloads); see :mod:`~dnnergy.data.datasets`. Training and pretrained models live in
:mod:`dnnergy.train`.
"""

from __future__ import annotations

from .datasets import (
    Dataset,
    digits,
    fashion_mnist,
    idx_dataset,
    list_datasets,
    load_dataset,
    mnist,
    register_dataset,
    stratified_split,
    synthetic,
)
from .idx import read_idx, read_idx_directory

__all__ = [
    "Dataset",
    "load_dataset",
    "list_datasets",
    "register_dataset",
    "stratified_split",
    "fashion_mnist",
    "idx_dataset",
    "read_idx",
    "read_idx_directory",
    "mnist",
    "digits",
    "synthetic",
]

"""Data that ships inside installed packages: ``load_dataset("mnist" | "digits" | "synthetic")``.

Every loader returns a :class:`Dataset` of stratified train / val / test splits (no
downloads); see :mod:`~dnnergy.data.datasets`. Training and pretrained models live in
:mod:`dnnergy.train`.
"""

from __future__ import annotations

from .datasets import Dataset, digits, list_datasets, load_dataset, mnist, register_dataset, stratified_split, synthetic

__all__ = [
    "Dataset",
    "load_dataset",
    "list_datasets",
    "register_dataset",
    "stratified_split",
    "mnist",
    "digits",
    "synthetic",
]

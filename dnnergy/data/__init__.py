"""Data that ships inside installed packages, a seeded training loop, and pretrained zoo weights.

* :mod:`~dnnergy.data.datasets`: ``load_dataset("mnist" | "digits" | "synthetic")`` returns
  a :class:`Dataset` of stratified train / val / test splits (no downloads).
* :mod:`~dnnergy.data.training`: :func:`train`, :func:`evaluate` and :func:`fine_tune`, the
  masked fine-tuning loop shared by the compression methods.
* :mod:`~dnnergy.data.checkpoints`: :func:`pretrained` trains a zoo LeNet once and caches it.
"""

from __future__ import annotations

from .datasets import Dataset, digits, list_datasets, load_dataset, mnist, register_dataset, stratified_split, synthetic
from .checkpoints import CACHE_ENV, RECIPES, cache_dir, checkpoint_path, list_pretrained, pretrained, train_cached
from .training import FINE_TUNE, OptimizerKind, TrainConfig, TrainHistory, evaluate, fine_tune, train

__all__ = [
    "Dataset",
    "load_dataset",
    "list_datasets",
    "register_dataset",
    "stratified_split",
    "mnist",
    "digits",
    "synthetic",
    "TrainConfig",
    "TrainHistory",
    "OptimizerKind",
    "FINE_TUNE",
    "train",
    "fine_tune",
    "evaluate",
    "pretrained",
    "list_pretrained",
    "train_cached",
    "checkpoint_path",
    "cache_dir",
    "CACHE_ENV",
    "RECIPES",
]

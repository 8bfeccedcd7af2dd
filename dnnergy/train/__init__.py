"""Training: the one seeded loop (pretraining and fine-tuning), its per-step hooks, and cached pretrained zoo models.

* :mod:`~dnnergy.train.loop`: :func:`train`, :func:`fine_tune` and :func:`evaluate`, with
  :class:`TrainConfig` and :class:`TrainHistory`.
* :mod:`~dnnergy.train.hooks`: :class:`TrainHook`, the per-step extension point (weight
  transforms re-applied after each step, straight-through rounding, centroid gradients),
  and the ``loss_fn(outputs, targets, inputs)`` convention (a distillation teacher).
* :mod:`~dnnergy.train.pretrained`: :func:`pretrained` trains a zoo LeNet once on bundled
  data and caches it.
"""

from __future__ import annotations

from .distill import DistillationLoss, distillation_loss
from .hooks import Loss, TrainHook, cross_entropy
from .loop import FINE_TUNE, OptimizerKind, TrainConfig, TrainHistory, evaluate, fine_tune, train
from .pretrained import CACHE_ENV, RECIPES, cache_dir, checkpoint_path, list_pretrained, pretrained, train_cached

__all__ = [
    "TrainConfig",
    "TrainHistory",
    "OptimizerKind",
    "FINE_TUNE",
    "train",
    "fine_tune",
    "evaluate",
    "TrainHook",
    "Loss",
    "cross_entropy",
    "DistillationLoss",
    "distillation_loss",
    "pretrained",
    "list_pretrained",
    "train_cached",
    "checkpoint_path",
    "cache_dir",
    "CACHE_ENV",
    "RECIPES",
]

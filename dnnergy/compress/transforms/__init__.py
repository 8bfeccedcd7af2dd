"""Reversible weight transforms (mask today; quantizers, shared codebooks, low-rank factors next).

See :mod:`~dnnergy.compress.transforms.base` for the contract and
:mod:`~dnnergy.compress.transforms.mask` for keep masks.
"""

from .base import TRANSFORMS, TRANSFORMS_ATTRIBUTE, Snapshot, Transforms, WeightTransform, register_transform, rollback, snapshot
from .mask import Mask, Masks

__all__ = ["WeightTransform", "Transforms", "TRANSFORMS", "TRANSFORMS_ATTRIBUTE", "register_transform", "Mask", "Masks",
           "Snapshot", "snapshot", "rollback"]

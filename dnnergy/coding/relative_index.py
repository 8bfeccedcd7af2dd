"""Relative indices: the positions of a sparse vector's non-zeros as fixed-width gaps, with filler zeros.

Deep Compression (Han, Mao and Dally, ICLR 2016, Sec. 2 and Fig. 2) stores, for every
non-zero weight of a flattened layer, the number of zeros since the previous stored
entry in ``width`` bits (so at most ``2**width - 1``). A longer gap is bridged by
*filler* entries: a stored explicit zero after ``2**width - 1`` zeros, each covering
``2**width`` positions. Example, ``width=3`` (runs up to 7): non-zeros at positions
``[1, 4, 15]`` give runs ``[1, 2, 7, 2]`` with the third entry a filler (positions 5..11
are 7 zeros, 12 is the filler's explicit zero, 13..14 two more zeros, then 15).

Pure numpy, vectorised; positions are 0-based flat indices. Trailing zeros after the
last non-zero are not coded (the tensor's shape gives its length).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError

__all__ = ["from_relative", "to_relative"]


def _width(width: object) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 1 <= width <= 32:
        raise UserInputError(f"relative index: width must be an int number of bits in 1..32 (got {width!r})")
    return int(width)


def to_relative(positions: object, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(runs, filler)`` for the strictly increasing non-negative ``positions`` with ``width``-bit runs.

    ``runs`` (int64, each in ``[0, 2**width)``) has one entry per stored entry, fillers
    included; ``filler`` (bool, same length) marks the fillers. The non-fillers are the
    positions, in order. Example: ``to_relative([1, 4, 15], 3)`` gives runs
    ``[1, 2, 7, 2]`` and filler ``[False, False, True, False]``.
    """
    bits = _width(width)
    pos = np.asarray(positions).reshape(-1)
    if pos.size and (not np.issubdtype(pos.dtype, np.integer) or pos[0] < 0 or (np.diff(pos) <= 0).any()):
        raise UserInputError("relative index: positions must be strictly increasing non-negative ints")
    pos = pos.astype(np.int64)
    span = 1 << bits
    gaps = np.diff(pos, prepend=-1) - 1  # zeros before each non-zero
    fillers = gaps // span
    rest = gaps - fillers * span
    per_entry = fillers + 1  # the fillers, then the non-zero itself
    owner_start = np.cumsum(per_entry) - per_entry
    total = int(per_entry.sum())
    runs = np.full(total, span - 1, dtype=np.int64)
    filler = np.ones(total, dtype=bool)
    last = owner_start + fillers  # where each non-zero lands
    runs[last] = rest
    filler[last] = False
    return runs, filler


def from_relative(runs: object, filler: object) -> np.ndarray:
    """The positions (int64) coded by :func:`to_relative`: every entry advances ``run + 1``; fillers are dropped.

    Example: ``from_relative([1, 2, 7, 2], [False, False, True, False]).tolist() == [1, 4, 15]``.
    """
    runs, filler = np.asarray(runs).reshape(-1), np.asarray(filler, dtype=bool).reshape(-1)
    if runs.shape != filler.shape:
        raise UserInputError(f"relative index: runs and filler must have one entry each (got {runs.size} and {filler.size})")
    if runs.size and (not np.issubdtype(runs.dtype, np.integer) or runs.min() < 0):
        raise UserInputError("relative index: runs must be non-negative ints")
    where = np.cumsum(runs.astype(np.int64) + 1) - 1
    return where[~filler]

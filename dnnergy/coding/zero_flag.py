"""Zero-flag code (seed 001, "variable length coding" on Eyeriss): a zero is ``1'b0``, a non-zero ``{1'b1, value}``.

``numel`` values with ``nonzeros`` non-zeros of ``level_bits`` bits take
``numel + nonzeros * level_bits`` bits (:func:`coded_bits`); the encoder allocates its
output with that function and :mod:`dnnergy.energy.coding` prices measured statistics
with it, so both agree to the bit.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from .bits import Bitstream, from_bits, int_levels, to_bits, to_signed

__all__ = ["coded_bits", "encode_zero_flag", "decode_zero_flag"]


def coded_bits(numel: int, nonzeros: int, level_bits: int = 16) -> int:
    """Bits of the zero-flag code: one flag per element plus ``level_bits`` per non-zero (100, 50, 16: 900)."""
    return int(numel) + int(nonzeros) * int(level_bits)


def encode_zero_flag(values: np.ndarray, level_bits: int = 16) -> Bitstream:
    """Zero-flag code an integer array (C order) of ``level_bits``-bit values.

    Example: ``[0, -1]`` with 2-bit levels is the bits ``0 1 11``: ``Bitstream(b"\\x70", 4)``.
    Raises :class:`UserInputError` for non-integers or values that do not fit.
    """
    flat = int_levels(values, level_bits)
    nonzero = flat != 0
    out = np.zeros(coded_bits(flat.size, int(nonzero.sum()), level_bits), np.uint8)
    starts = np.arange(flat.size) + level_bits * (np.cumsum(nonzero) - nonzero)  # each element's flag bit
    flags = starts[nonzero]
    out[flags] = 1
    out[flags[:, None] + 1 + np.arange(level_bits)] = to_bits(flat[nonzero], level_bits)
    return Bitstream.of(out)


def decode_zero_flag(stream: Bitstream, numel: int, level_bits: int = 16) -> np.ndarray:
    """Inverse of :func:`encode_zero_flag`: ``numel`` values as int64.

    NB: each flag's position depends on all earlier flags, so this walks the stream
    element by element in Python (about a microsecond per element). Raises
    :class:`UserInputError` when the stream does not hold exactly ``numel`` values. Example:
    ``decode_zero_flag(encode_zero_flag(np.array([0, 0, 3, 0, 5, 0, 0, 0])), 8)`` gives the 8 values back
    from 40 bits (8 flags + 2 x 16-bit levels).
    """
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise UserInputError(f"decode_zero_flag: numel must be a non-negative int (got {numel!r})")
    bits = stream.bits()
    flags = bits.tolist()
    starts: list[int] = []
    i = count = 0
    while i < len(flags) and count < numel:
        if flags[i]:
            starts.append(i)
        i += 1 + level_bits * flags[i]
        count += 1
    if i != len(flags) or count != numel:
        raise UserInputError(f"decode_zero_flag: {len(flags)} bits are not {numel} coded values with {level_bits}-bit levels")
    out = np.zeros(numel, np.int64)
    if starts:
        first = np.asarray(starts)
        levels = to_signed(from_bits(bits[first[:, None] + 1 + np.arange(level_bits)]), level_bits)
        out[first - level_bits * np.arange(first.size)] = levels
    return out

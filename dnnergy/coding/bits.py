"""Bits of fixed-width fields and the packed byte string they travel in.

Fields are written most significant bit first; a field of ``width`` bits holds the low
``width`` bits of a value's two's complement. Everything is vectorised numpy: a field
matrix becomes a bit matrix (one uint8 0/1 per bit), whose rows are laid end to end and
packed eight to a byte by :func:`numpy.packbits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError

__all__ = ["Bitstream", "int_levels", "to_bits", "from_bits", "to_signed"]


@dataclass(frozen=True, slots=True)
class Bitstream:
    """A coded tensor: ``nbits`` payload bits packed MSB first into ``data`` (the last byte padded with zeros).

    ``len(data) == ceil(nbits / 8)``. Example: ``Bitstream.of(np.array([1, 0, 1]))`` is
    ``Bitstream(b"\\xa0", 3)``: 3 bits in 1 byte (``.nbytes == 1``), and ``.bits()`` gives
    ``array([1, 0, 1], dtype=uint8)`` back.
    """

    data: bytes
    nbits: int

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise TypeError(f"Bitstream: data must be bytes (got {type(self.data).__name__})")
        if isinstance(self.nbits, bool) or not isinstance(self.nbits, int) or not 0 <= self.nbits <= 8 * len(self.data) < self.nbits + 8:
            raise ValueError(f"Bitstream: nbits must be in (8 * (len(data) - 1), 8 * len(data)] (got {self.nbits} for {len(self.data)} bytes)")

    @classmethod
    def of(cls, bits: np.ndarray) -> "Bitstream":
        """Pack a flat array of 0/1 bits."""
        flat = np.asarray(bits, dtype=np.uint8).reshape(-1)
        return cls(np.packbits(flat).tobytes(), int(flat.size))

    @property
    def nbytes(self) -> int:
        """Bytes of ``data``: ``ceil(nbits / 8)``."""
        return len(self.data)

    def __bytes__(self) -> bytes:
        return self.data

    def bits(self) -> np.ndarray:
        """The ``nbits`` payload bits as a flat uint8 array of 0/1."""
        return np.unpackbits(np.frombuffer(self.data, dtype=np.uint8), count=self.nbits)


def int_levels(values: np.ndarray, bits: int, name: str = "values") -> np.ndarray:
    """``values`` flattened (C order) to int64, checking they are integers that fit ``bits``-bit two's complement.

    Raises :class:`UserInputError` naming ``name`` otherwise. Example:
    ``int_levels(np.array([[1, -2]]), 2)`` is ``array([1, -2])``; ``[2]`` does not fit 2 bits.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 62:
        raise UserInputError(f"coding: bits must be an int in [1, 62] (got {bits!r})")
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "iub":
        raise UserInputError(f"coding: {name} must be an integer array (got dtype {flat.dtype}); quantize first")
    flat = flat.astype(np.int64)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if flat.size and (flat.min() < low or flat.max() > high):
        raise UserInputError(f"coding: {name} must fit in {bits}-bit two's complement [{low}, {high}] (got [{flat.min()}, {flat.max()}])")
    return flat


def to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Bit matrix of shape ``values.shape + (width,)``: the low ``width`` bits of each value, MSB first."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[..., None] >> shifts) & 1).astype(np.uint8)


def from_bits(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_bits` for unsigned fields: int64 values of the rows of ``bits`` (last axis, MSB first)."""
    width = bits.shape[-1]
    weights = np.left_shift(np.int64(1), np.arange(width - 1, -1, -1, dtype=np.int64))
    return (bits.astype(np.int64) * weights).sum(axis=-1) if width else np.zeros(bits.shape[:-1], np.int64)


def to_signed(values: np.ndarray, width: int) -> np.ndarray:
    """Read unsigned ``width``-bit fields as two's complement: ``to_signed(np.array([3]), 2)`` is ``[-1]``."""
    sign = np.int64(1) << (width - 1)
    return np.where(values & sign, values - 2 * sign, values)

"""Delta coding of neighbouring activations (seed 001, "exploit spatial correlation of inputs").

Along the last axis (a feature-map row: W in NCHW), every value but the first of a row is
replaced by its difference from its left neighbour, in ``bits``-bit wrap-around
arithmetic: the differences keep the values' width, so the Eyeriss word stays 64 bits,
and the transform is exactly invertible. Equal neighbours (zero runs, flat regions)
become zeros, which the run-length code (:mod:`.runlength`) then compresses.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from .bits import Bitstream, int_levels, to_signed
from .runlength import EYERISS_RLC, RunLengthCode, decode_rlc, encode_rlc

__all__ = ["delta", "undelta", "encode_delta", "decode_delta"]


def _shaped(values: np.ndarray, bits: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim < 1:
        raise UserInputError(f"delta: values must have at least one axis (got a {array.ndim}-d array)")
    return int_levels(array, bits).reshape(array.shape)


def delta(values: np.ndarray, bits: int) -> np.ndarray:
    """Row-wise differences of ``bits``-bit values, wrapped to ``bits`` bits: ``delta([[5, 7, 7, 0]], 16)`` is ``[[5, 2, 0, -7]]``."""
    x = _shaped(values, bits)
    diff = np.concatenate([x[..., :1], np.diff(x, axis=-1)], axis=-1)
    return to_signed(diff & ((1 << bits) - 1), bits)


def undelta(deltas: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of :func:`delta`: row-wise running sums, wrapped to ``bits`` bits."""
    d = _shaped(deltas, bits)
    return to_signed(np.cumsum(d, axis=-1) & ((1 << bits) - 1), bits)


def encode_delta(values: np.ndarray, bits: int = 16, code: RunLengthCode = EYERISS_RLC) -> Bitstream:
    """Run-length code (``code`` with ``bits``-bit levels) of :func:`delta` of ``values``.

    Example: ``encode_delta(np.array([10, 11, 13, 13]))`` codes the differences ``[10, 1, 2, 0]``: three
    non-zeros and a trailing zero are 4 pairs, two 64-bit words (``nbits == 128`` bits).
    """
    return encode_rlc(delta(values, bits), code.with_level_bits(bits))


def decode_delta(stream: Bitstream, shape: tuple[int, ...], bits: int = 16, code: RunLengthCode = EYERISS_RLC) -> np.ndarray:
    """Inverse of :func:`encode_delta`: the int64 array of ``shape``.

    Example: ``decode_delta(encode_delta(np.array([10, 11, 13, 13])), (4,))`` is ``array([10, 11, 13, 13])``.
    """
    shape = tuple(int(n) for n in shape)
    return undelta(decode_rlc(stream, int(np.prod(shape)), code.with_level_bits(bits)).reshape(shape), bits)

"""Compression codes for DRAM traffic of sparse tensors: Eyeriss run-length code and the zero-flag code.

Pure functions. Sizes come three ways, all in bits: exactly from measured statistics
(:class:`~dnnergy.workload.TensorStats`), as an expected value for i.i.d. zeros of a
given density, and from actually encoding an integer array (:func:`encode_rlc`,
:func:`encode_zero_flag`, used by the tests to check the other two).

Run-length code (Chen et al., ISSCC 2016): each non-zero value becomes a pair
``(run, level)``: ``run`` (``run_bits`` = 5, so at most 31) zeros, then the value in
``level_bits`` bits. A zero run longer than 31 emits ``(31, 0)`` pairs, each covering
32 zeros (the level 0 is a literal zero); trailing zeros are coded the same way with
``level`` 0. Three pairs share a 64-bit word with one termination bit
(3 x (5 + 16) + 1 = 64). A run ``r`` before a non-zero therefore costs
``r // 32 + 1`` pairs and ``t`` trailing zeros ``ceil(t / 32)`` pairs; the tensor
costs ``ceil(pairs / 3)`` words.

Zero-flag code (seed 001, "variable length coding" on Eyeriss): a zero is ``1'b0``, a
non-zero ``{1'b1, value}``, so ``numel + nonzeros * level_bits`` bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..workload import TensorStats

__all__ = [
    "RunLengthCode",
    "EYERISS_RLC",
    "rlc_pairs",
    "rlc_bits",
    "rlc_bits_expected",
    "zero_flag_bits",
    "zero_flag_bits_expected",
    "encode_rlc",
    "decode_rlc",
    "encode_zero_flag",
    "decode_zero_flag",
]


@dataclass(frozen=True, slots=True)
class RunLengthCode:
    """Field widths of a run-length code: ``pairs_per_word`` (run, level) pairs plus ``term_bits`` per word."""

    run_bits: int = 5
    level_bits: int = 16
    pairs_per_word: int = 3
    term_bits: int = 1

    def __post_init__(self) -> None:
        for field in ("run_bits", "level_bits", "pairs_per_word"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RunLengthCode: {field} must be a positive int (got {value!r})")
        if isinstance(self.term_bits, bool) or not isinstance(self.term_bits, int) or self.term_bits < 0:
            raise ValueError(f"RunLengthCode: term_bits must be a non-negative int (got {self.term_bits!r})")

    @property
    def word_bits(self) -> int:
        """Bits of one coded word (64 for Eyeriss)."""
        return self.pairs_per_word * (self.run_bits + self.level_bits) + self.term_bits

    @property
    def span(self) -> int:
        """Elements one pair covers at most: the longest run plus its level (32 for 5-bit runs)."""
        return 1 << self.run_bits

    def with_level_bits(self, bits: int) -> "RunLengthCode":
        """The same code with levels of ``bits`` bits (the datum's width)."""
        return RunLengthCode(self.run_bits, bits, self.pairs_per_word, self.term_bits)


#: The code of the Eyeriss chip: three (5-bit run, 16-bit level) pairs and a termination bit per 64-bit word.
EYERISS_RLC = RunLengthCode()


def rlc_pairs(stats: TensorStats, code: RunLengthCode = EYERISS_RLC) -> int:
    """Exact number of (run, level) pairs the run-length code emits for a measured tensor."""
    span = code.span
    pairs = sum(count * (run // span + 1) for run, count in stats.zero_runs)
    return pairs + -(-stats.trailing_zeros // span)


def rlc_bits(stats: TensorStats, code: RunLengthCode = EYERISS_RLC) -> int:
    """Exact coded size in bits of a measured tensor: ``ceil(pairs / pairs_per_word) * word_bits``."""
    return -(-rlc_pairs(stats, code) // code.pairs_per_word) * code.word_bits


def rlc_bits_expected(numel: float, density: float, code: RunLengthCode = EYERISS_RLC) -> float:
    """Expected coded size in bits of ``numel`` values whose zeros are i.i.d. with non-zero fraction ``density``.

    With ``z = 1 - density`` and span ``L = 2**run_bits``, the run before a non-zero is
    geometric, ``P(r >= jL) = z**(jL)``, so a non-zero costs ``1 + sum_j z**(jL) =
    1 / (1 - z**L)`` pairs on average: ``pairs = numel * density / (1 - z**L)``, which
    tends to ``numel / L`` as density -> 0 (all zeros). NB: the boundary (a shorter
    trailing run, the last partly filled word) is ignored, an error below one word.
    Bits are ``pairs / pairs_per_word * word_bits``.
    """
    if numel <= 0:
        return 0.0
    span = code.span
    if density <= 0.0:
        pairs = numel / span
    else:
        pairs = numel * density / -math.expm1(span * math.log1p(-density)) if density < 1.0 else float(numel)
    return pairs / code.pairs_per_word * code.word_bits


def zero_flag_bits(stats: TensorStats, level_bits: int = 16) -> int:
    """Exact zero-flag coded size in bits: one flag per element plus ``level_bits`` per non-zero."""
    return stats.numel + stats.nonzeros * level_bits


def zero_flag_bits_expected(numel: float, density: float, level_bits: int = 16) -> float:
    """Expected zero-flag coded size in bits: ``numel * (1 + density * level_bits)``."""
    return numel * (1.0 + density * level_bits)


def _levels(values: np.ndarray, bits: int) -> np.ndarray:
    """Flatten to int64 (C order), checking every value fits in ``bits`` two's-complement bits."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind not in "iub":
        raise TypeError(f"coding: expected an integer array (got dtype {flat.dtype})")
    flat = flat.astype(np.int64)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if flat.size and (flat.min() < low or flat.max() > high):
        raise ValueError(f"coding: values must fit in {bits}-bit two's complement [{low}, {high}]")
    return flat


def encode_rlc(values: np.ndarray, code: RunLengthCode = EYERISS_RLC) -> list[int]:
    """Run-length code an integer array (C order) into ``word_bits``-bit words (Python ints).

    Word layout, most significant first: pair 0 (run, level), pair 1, ..., then the
    termination bit, set on the last word. Unused pairs of the last word are (0, 0).
    """
    flat = _levels(values, code.level_bits)
    pairs: list[tuple[int, int]] = []
    run = 0
    for value in flat.tolist():
        if value == 0 and run < code.span - 1:
            run += 1
        else:
            pairs.append((run, value))
            run = 0
    if run:
        pairs.append((run - 1, 0))
    mask = (1 << code.level_bits) - 1
    words = []
    for start in range(0, len(pairs), code.pairs_per_word):
        word = 0
        chunk = pairs[start : start + code.pairs_per_word]
        chunk += [(0, 0)] * (code.pairs_per_word - len(chunk))
        for run, level in chunk:
            word = (word << (code.run_bits + code.level_bits)) | (run << code.level_bits) | (level & mask)
        last = start + code.pairs_per_word >= len(pairs)
        words.append((word << code.term_bits) | (1 if last and code.term_bits else 0))
    return words


def decode_rlc(words: list[int], numel: int, code: RunLengthCode = EYERISS_RLC) -> np.ndarray:
    """Inverse of :func:`encode_rlc`: the first ``numel`` values, as int64."""
    out: list[int] = []
    pair_bits = code.run_bits + code.level_bits
    sign = 1 << (code.level_bits - 1)
    for word in words:
        word >>= code.term_bits
        for k in reversed(range(code.pairs_per_word)):
            pair = (word >> (k * pair_bits)) & ((1 << pair_bits) - 1)
            level = pair & ((1 << code.level_bits) - 1)
            out.extend([0] * (pair >> code.level_bits))
            out.append(level - 2 * sign if level & sign else level)
    return np.asarray(out[:numel], dtype=np.int64)


def encode_zero_flag(values: np.ndarray, level_bits: int = 16) -> np.ndarray:
    """Zero-flag code an integer array (C order) into a bit array (uint8 of 0/1)."""
    flat = _levels(values, level_bits)
    shifts = np.arange(level_bits - 1, -1, -1)
    bits: list[np.ndarray] = []
    for value in flat.tolist():
        if value == 0:
            bits.append(np.zeros(1, np.uint8))
        else:
            bits.append(np.concatenate(([1], (value >> shifts) & 1)).astype(np.uint8))
    return np.concatenate(bits) if bits else np.zeros(0, np.uint8)


def decode_zero_flag(bits: np.ndarray, level_bits: int = 16) -> np.ndarray:
    """Inverse of :func:`encode_zero_flag`: the values, as int64."""
    out: list[int] = []
    i, sign = 0, 1 << (level_bits - 1)
    stream = np.asarray(bits, dtype=np.int64).tolist()
    while i < len(stream):
        if stream[i] == 0:
            out.append(0)
            i += 1
            continue
        level = 0
        for bit in stream[i + 1 : i + 1 + level_bits]:
            level = (level << 1) | bit
        out.append(level - 2 * sign if level & sign else level)
        i += 1 + level_bits
    return np.asarray(out, dtype=np.int64)

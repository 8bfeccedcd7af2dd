"""Eyeriss run-length code (Chen et al., ISSCC 2016): encoder, decoder and the size formula the energy model uses.

Each non-zero value becomes a pair ``(run, level)``: ``run`` zeros (``run_bits`` = 5, so
at most 31), then the value in ``level_bits`` bits. A zero run longer than 31 emits
``(31, 0)`` pairs, each covering 32 zeros (the level 0 is a literal zero); the zeros
after the last non-zero are coded the same way, the last pair covering what is left.
Three pairs share a 64-bit word with one termination bit (3 x (5 + 16) + 1 = 64), set
on the last word. Seed 001's example ``0,0,12,0,0,0,0,53,0,0,22`` is the pairs
``(2,12) (4,53) (2,22)``: one word.

Sizes: a run ``r`` before a non-zero costs ``r // 32 + 1`` pairs, ``t`` trailing zeros
``ceil(t / 32)`` pairs, and the tensor ``ceil(pairs / 3)`` words (:func:`pair_count`,
:func:`coded_bits`). The encoder allocates its output with these two functions, and
:mod:`dnnergy.energy.coding` prices a measured :class:`~dnnergy.workload.TensorStats`
with the same two, so the estimate and ``encode_rlc(x).nbits`` agree to the bit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError
from .bits import Bitstream, from_bits, int_levels, to_bits, to_signed

__all__ = ["RunLengthCode", "EYERISS_RLC", "zero_runs", "pair_count", "coded_bits", "encode_rlc", "decode_rlc"]


@dataclass(frozen=True, slots=True)
class RunLengthCode:
    """Field widths of a run-length code: ``pairs_per_word`` (run, level) pairs plus ``term_bits`` per word.

    Widths are in bits. Example: :data:`EYERISS_RLC` is ``RunLengthCode(run_bits=5, level_bits=16,
    pairs_per_word=3, term_bits=1)``: ``EYERISS_RLC.word_bits == 64`` (3 x (5 + 16) + 1),
    ``EYERISS_RLC.span == 32`` and ``EYERISS_RLC.with_level_bits(8).word_bits == 40``.
    """

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


def zero_runs(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Positions of the non-zeros of a flat array, the zeros before each, and the trailing zeros.

    Example: ``[0, 0, 12, 0, 53, 0]`` gives positions ``[2, 4]``, runs ``[2, 1]``, 1 trailing zero.
    """
    positions = np.flatnonzero(flat)
    runs = np.diff(positions, prepend=-1) - 1
    trailing = int(flat.size - 1 - positions[-1]) if positions.size else int(flat.size)
    return positions, runs, trailing


def pair_count(runs: Iterable[int] | np.ndarray, counts: Iterable[int] | np.ndarray, trailing_zeros: int,
               code: RunLengthCode = EYERISS_RLC) -> int:
    """Pairs the code emits for ``counts[i]`` non-zeros preceded by ``runs[i]`` zeros each, plus ``trailing_zeros``.

    ``sum(count * (run // span + 1)) + ceil(trailing / span)`` with ``span = 2**run_bits``.
    Example: runs ``[70]`` (one non-zero after 70 zeros) and 40 trailing zeros give
    ``(70 // 32 + 1) + ceil(40 / 32) = 3 + 2 = 5`` pairs.
    """
    runs = np.asarray(list(runs) if not isinstance(runs, np.ndarray) else runs, dtype=np.int64)
    counts = np.asarray(list(counts) if not isinstance(counts, np.ndarray) else counts, dtype=np.int64)
    return int(np.sum(counts * (runs // code.span + 1))) + -(-int(trailing_zeros) // code.span)


def coded_bits(pairs: int, code: RunLengthCode = EYERISS_RLC) -> int:
    """Bits of ``pairs`` pairs in whole words: ``ceil(pairs / pairs_per_word) * word_bits`` (5 pairs: 128 bits)."""
    return -(-int(pairs) // code.pairs_per_word) * code.word_bits


def encode_rlc(values: np.ndarray, code: RunLengthCode = EYERISS_RLC) -> Bitstream:
    """Run-length code an integer array (C order) of ``code.level_bits``-bit values into whole words.

    Word layout, most significant bit first: pair 0 (run, level), pair 1, ..., then the
    termination bit, set on the last word; unused pairs of the last word are (0, 0).
    ``nbits`` is :func:`coded_bits` of :func:`pair_count`. Raises :class:`UserInputError`
    for non-integers or values that do not fit. Example: ``encode_rlc([0, 0, 12])`` is one
    64-bit word whose first pair is (2, 12); ``encode_rlc([0, 0, 3, 0, 5, 0, 0, 0]).nbits == 64`` bits
    (three pairs fill one word).
    """
    flat = int_levels(values, code.level_bits)
    positions, runs, trailing = zero_runs(flat)
    span, per_word = code.span, code.pairs_per_word
    pairs = pair_count(runs, np.ones_like(runs), trailing, code)
    words = -(-pairs // per_word)
    run_field = np.zeros(words * per_word, np.int64)
    level = np.zeros(words * per_word, np.int64)
    run_field[:pairs] = span - 1  # filler pairs (span - 1, 0), each covering span zeros
    ends = np.cumsum(runs // span + 1) - 1  # each non-zero's own pair follows its filler pairs
    run_field[ends] = runs % span
    level[ends] = flat[positions]
    if trailing % span:
        run_field[pairs - 1] = trailing % span - 1
    pair_bits = np.concatenate([to_bits(run_field, code.run_bits), to_bits(level, code.level_bits)], axis=1)
    term = np.zeros(words, np.int64)
    term[-1:] = 1
    rows = np.concatenate([pair_bits.reshape(words, per_word * (code.run_bits + code.level_bits)), to_bits(term, code.term_bits)], axis=1)
    return Bitstream.of(rows)


def decode_rlc(stream: Bitstream, numel: int, code: RunLengthCode = EYERISS_RLC) -> np.ndarray:
    """Inverse of :func:`encode_rlc`: the first ``numel`` values, as int64.

    Raises :class:`UserInputError` when the stream is not whole words, a termination bit
    is misplaced or the words hold fewer than ``numel`` values. Example:
    ``decode_rlc(encode_rlc([0, 0, 12]), 3)`` is ``array([0, 0, 12])``.
    """
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise UserInputError(f"decode_rlc: numel must be a non-negative int (got {numel!r})")
    bits = stream.bits()
    if bits.size % code.word_bits:
        raise UserInputError(f"decode_rlc: {bits.size} bits are not whole {code.word_bits}-bit words")
    rows = bits.reshape(-1, code.word_bits)
    if code.term_bits and rows.shape[0]:
        term = from_bits(rows[:, rows.shape[1] - code.term_bits :])
        if term[-1] != 1 or term[:-1].any():
            raise UserInputError("decode_rlc: the termination bit must be set on the last word only")
    pairs = rows[:, : rows.shape[1] - code.term_bits].reshape(-1, code.run_bits + code.level_bits)
    run_field = from_bits(pairs[:, : code.run_bits])
    level = to_signed(from_bits(pairs[:, code.run_bits :]), code.level_bits)
    ends = np.cumsum(run_field + 1) - 1
    total = int(ends[-1]) + 1 if ends.size else 0
    if total < numel:
        raise UserInputError(f"decode_rlc: the stream holds {total} values, fewer than numel={numel}")
    out = np.zeros(total, np.int64)
    out[ends] = level
    return out[:numel]

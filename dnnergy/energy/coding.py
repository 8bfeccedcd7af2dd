"""DRAM sizes of sparse tensors under the Eyeriss run-length code and the zero-flag code, in bits.

Pure functions, two ways: exactly from measured statistics
(:class:`~dnnergy.workload.TensorStats`), and as an expected value for i.i.d. zeros of a
given density. The exact sizes are the formulas the encoders of :mod:`dnnergy.coding`
allocate their output with (:func:`dnnergy.coding.runlength.pair_count` and
``coded_bits``, :func:`dnnergy.coding.zero_flag.coded_bits`), so
``rlc_bits(TensorStats.of(x)) == encode_rlc(x).nbits`` for every integer tensor ``x``.
The code formats are described in :mod:`dnnergy.coding.runlength` (Chen et al., ISSCC
2016: three (5-bit run, 16-bit level) pairs and a termination bit per 64-bit word) and
:mod:`dnnergy.coding.zero_flag` (seed 001: a zero is ``1'b0``, a non-zero
``{1'b1, value}``).
"""

from __future__ import annotations

import math

from ..coding import runlength as _runlength
from ..coding import zero_flag as _zero_flag
from ..coding.runlength import EYERISS_RLC, RunLengthCode
from ..workload import TensorStats

__all__ = [
    "RunLengthCode",
    "EYERISS_RLC",
    "rlc_pairs",
    "rlc_bits",
    "rlc_bits_expected",
    "zero_flag_bits",
    "zero_flag_bits_expected",
]


def rlc_pairs(stats: TensorStats, code: RunLengthCode = EYERISS_RLC) -> int:
    """Exact number of (run, level) pairs the run-length code emits for a measured tensor."""
    runs = [run for run, _ in stats.zero_runs]
    counts = [count for _, count in stats.zero_runs]
    return _runlength.pair_count(runs, counts, stats.trailing_zeros, code)


def rlc_bits(stats: TensorStats, code: RunLengthCode = EYERISS_RLC) -> int:
    """Exact coded size in bits of a measured tensor: ``ceil(pairs / pairs_per_word) * word_bits``."""
    return _runlength.coded_bits(rlc_pairs(stats, code), code)


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
    return _zero_flag.coded_bits(stats.numel, stats.nonzeros, level_bits)


def zero_flag_bits_expected(numel: float, density: float, level_bits: int = 16) -> float:
    """Expected zero-flag coded size in bits: ``numel * (1 + density * level_bits)``."""
    return numel * (1.0 + density * level_bits)

"""Empirical entropy bound of a symbol stream, in bits.

A memoryless code that knows the stream's own symbol frequencies ``c_s`` (out of ``n``)
needs at least ``n * H = sum_s c_s * log2(n / c_s)`` bits (Shannon); no such code,
Huffman or arithmetic, does better on this stream. NB: this is the order-0 bound. It
ignores the cost of sending the frequencies, so on short streams with many distinct
values (16-bit levels) it is optimistic; it also ignores correlation between symbols,
which a run-length or delta code can exploit to beat it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["entropy_bits"]


def entropy_bits(symbols: np.ndarray) -> float:
    """``n * H(p)`` in bits for the empirical distribution ``p`` of ``symbols`` (any array, flattened).

    Example: ``entropy_bits([0, 0, 1, 2])`` is ``4 * 1.5 = 6.0`` bits; a constant stream is 0.
    """
    from scipy.stats import entropy  # scipy.stats takes most of a second to import

    flat = np.asarray(symbols).reshape(-1)
    if flat.size == 0:
        return 0.0
    _, counts = np.unique(flat, return_counts=True)
    return float(flat.size * entropy(counts, base=2))

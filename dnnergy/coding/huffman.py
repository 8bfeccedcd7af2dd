"""Huffman coding of integer symbols from a small alphabet, with ``constriction``'s Huffman trees.

Deep Compression (Han, Mao and Dally, ICLR 2016, Sec. 4) Huffman-codes the cluster
index of every stored weight and every relative index: frequent symbols get short codes.
:func:`huffman_encode` builds the optimal prefix code from the symbol counts
(``constriction.symbol.huffman.EncoderHuffmanTree``) and writes the codes of all symbols,
in order, into one bit stream; the counts travel with the stream (a decoder rebuilds the
same tree from them), so :func:`huffman_decode` needs nothing else.

Units: :attr:`HuffmanStream.bits` is the exact payload length in bits;
:attr:`HuffmanStream.data` holds it in ``ceil(bits / 8)`` bytes (the first code in the
lowest bits of the first byte). Example: counts ``[5, 3, 1, 1]`` give code lengths
``[1, 2, 3, 3]`` and the symbols ``0 1 2 3 0 0`` take 1 + 2 + 3 + 3 + 1 + 1 = 11 bits.

NB: an alphabet with a single used symbol costs 0 bits per symbol (the count says everything).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError

__all__ = ["HuffmanStream", "code_lengths", "huffman_decode", "huffman_encode"]



def _symbol():
    """``constriction.symbol`` (imported on first use: ``pip install constriction``, the ``coding`` extra).

    Its submodules are attributes of the extension module, not importable packages."""
    try:
        import constriction
    except ImportError:
        raise UserInputError("Huffman coding needs the constriction package: pip install 'dnnergy[coding]'") from None
    return constriction.symbol


@dataclass(frozen=True, eq=False)
class HuffmanStream:
    """One Huffman-coded sequence: the per-symbol ``counts`` (int64, the alphabet size long; their sum
    is the sequence length), the payload ``data`` (uint8, ``ceil(bits / 8)`` bytes) and its length in ``bits``.

    Example: ``stream = huffman_encode([0, 1, 2, 3, 0, 0], 4)`` has ``stream.length == 6`` symbols,
    ``stream.alphabet == 4``, ``stream.counts == [3, 1, 1, 1]`` and ``stream.bits == 11``.
    """

    counts: np.ndarray
    data: np.ndarray
    bits: int

    def __post_init__(self) -> None:
        counts, data = np.asarray(self.counts), np.asarray(self.data)
        if counts.ndim != 1 or counts.size < 1 or not np.issubdtype(counts.dtype, np.integer) or (counts < 0).any():
            raise UserInputError(f"HuffmanStream: counts must be a non-empty 1-D array of non-negative ints (got {counts!r:.80})")
        if data.dtype != np.uint8 or data.ndim != 1:
            raise UserInputError(f"HuffmanStream: data must be a 1-D uint8 array (got {data.dtype}, {data.ndim}-D)")
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or not 0 <= self.bits <= 8 * data.size:
            raise UserInputError(f"HuffmanStream: bits must be an int in [0, {8 * data.size}] (got {self.bits!r})")
        object.__setattr__(self, "counts", counts.astype(np.int64))
        object.__setattr__(self, "bits", int(self.bits))

    @property
    def length(self) -> int:
        """Number of symbols coded."""
        return int(self.counts.sum())

    @property
    def alphabet(self) -> int:
        """Size of the alphabet (symbols ``0 .. alphabet - 1``)."""
        return int(self.counts.size)


def _tree_weights(counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.float64)


def _symbols(symbols: object, alphabet: int) -> np.ndarray:
    if isinstance(alphabet, bool) or not isinstance(alphabet, (int, np.integer)) or alphabet < 1:
        raise UserInputError(f"huffman: alphabet must be a positive int (got {alphabet!r})")
    array = np.asarray(symbols)
    if array.size and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0 or array.max() >= alphabet):
        raise UserInputError(f"huffman: symbols must be ints in [0, {alphabet}) (got values in "
                             f"[{array.min()}, {array.max()}] of dtype {array.dtype})")
    return array.reshape(-1).astype(np.int64)


def huffman_encode(symbols: object, alphabet: int) -> HuffmanStream:
    """Huffman-code the integer ``symbols`` (each in ``[0, alphabet)``) with the optimal code for their own counts.

    Example: ``huffman_encode([0, 1, 2, 3, 0, 0], 4).bits == 11`` (counts 3, 1, 1, 1 give
    code lengths 1, 2, 3, 3: 3 x 1 + 2 + 3 + 3 = 11 bits, in 2 bytes).
    """
    array = _symbols(symbols, alphabet)
    counts = np.bincount(array, minlength=alphabet).astype(np.int64)
    if np.count_nonzero(counts) <= 1:
        return HuffmanStream(counts, np.zeros(0, np.uint8), 0)
    symbol_codes = _symbol()
    tree = symbol_codes.huffman.EncoderHuffmanTree(_tree_weights(counts))
    encoder = symbol_codes.QueueEncoder()
    for symbol in array.tolist():
        encoder.encode_symbol(symbol, tree)
    words, bits = encoder.get_compressed_and_bitrate()
    data = np.ascontiguousarray(words, dtype="<u4").view(np.uint8)[: (bits + 7) // 8].copy()
    return HuffmanStream(counts, data, int(bits))


def huffman_decode(stream: HuffmanStream) -> np.ndarray:
    """The symbols coded in ``stream`` (int64), exactly as given to :func:`huffman_encode`.

    Example: ``huffman_decode(huffman_encode([0, 1, 2, 3, 0, 0], 4))`` is ``array([0, 1, 2, 3, 0, 0])``.
    """
    if not isinstance(stream, HuffmanStream):
        raise UserInputError(f"huffman_decode expects a HuffmanStream (got {type(stream).__name__})")
    counts, n = stream.counts, stream.length
    used = np.flatnonzero(counts)
    if used.size <= 1:
        return np.full(n, used[0] if used.size else 0, dtype=np.int64)
    padded = np.zeros(-(-stream.data.size // 4) * 4, np.uint8)
    padded[: stream.data.size] = stream.data
    symbol_codes = _symbol()
    decoder = symbol_codes.QueueDecoder(padded.view("<u4").astype(np.uint32))
    tree = symbol_codes.huffman.DecoderHuffmanTree(_tree_weights(counts))
    try:
        out = np.fromiter((decoder.decode_symbol(tree) for _ in range(n)), dtype=np.int64, count=n)
    except ValueError as exc:  # constriction's error for a stream that ends early
        raise UserInputError(f"huffman_decode: the stream does not hold {n} symbols ({exc})") from None
    if np.bincount(out, minlength=counts.size).tolist() != counts.tolist():
        raise UserInputError("huffman_decode: the decoded symbols do not match the stream's counts (damaged stream)")
    return out


def code_lengths(counts: object) -> np.ndarray:
    """Bits of the Huffman code of each symbol for symbol ``counts`` (int64; 0 for every symbol when at most one is used).

    Example: ``code_lengths([5, 3, 1, 1]).tolist() == [1, 2, 3, 3]``; the expected length
    ``sum(counts * lengths) / sum(counts)`` is optimal among prefix codes.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size < 1 or (counts < 0).any():
        raise UserInputError(f"code_lengths: counts must be a non-empty 1-D array of non-negative ints (got {counts!r:.80})")
    if np.count_nonzero(counts) <= 1:
        return np.zeros(counts.size, np.int64)
    symbol_codes = _symbol()
    tree = symbol_codes.huffman.EncoderHuffmanTree(_tree_weights(counts))
    lengths = []
    for symbol in range(counts.size):
        encoder = symbol_codes.QueueEncoder()
        encoder.encode_symbol(symbol, tree)
        lengths.append(encoder.get_compressed_and_bitrate()[1])
    return np.asarray(lengths, np.int64)

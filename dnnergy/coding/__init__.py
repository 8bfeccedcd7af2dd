"""Lossless codes for tensors as they are stored or moved: pure numpy in, bits out, exact round trips.

* :mod:`~dnnergy.coding.huffman`: Huffman coding of small-alphabet symbols (cluster
  indices, relative indices), through ``constriction``.
* :mod:`~dnnergy.coding.relative_index`: positions of non-zeros as fixed-width gaps with
  filler zeros when a gap overflows (Deep Compression).
* :mod:`~dnnergy.coding.runlength`, :mod:`~dnnergy.coding.zero_flag`,
  :mod:`~dnnergy.coding.delta`: feature-map codes of Eyeriss and seed 001, returning a
  :class:`~dnnergy.coding.bits.Bitstream`; the energy model prices DRAM traffic with
  their size formulas. :mod:`~dnnergy.coding.entropy`: the empirical entropy bound.
  :mod:`~dnnergy.coding.fmap` (import it explicitly: it needs the energy model)
  measures every layer's input feature map of a model on real images.
"""

from .bits import Bitstream
from .delta import decode_delta, encode_delta
from .entropy import entropy_bits
from .huffman import HuffmanStream, code_lengths, huffman_decode, huffman_encode
from .relative_index import from_relative, to_relative
from .runlength import EYERISS_RLC, RunLengthCode, decode_rlc, encode_rlc
from .zero_flag import decode_zero_flag, encode_zero_flag

__all__ = [
    "Bitstream",
    "EYERISS_RLC",
    "RunLengthCode",
    "encode_rlc",
    "decode_rlc",
    "encode_zero_flag",
    "decode_zero_flag",
    "encode_delta",
    "decode_delta",
    "entropy_bits",
    "HuffmanStream",
    "huffman_encode",
    "huffman_decode",
    "code_lengths",
    "to_relative",
    "from_relative",
]

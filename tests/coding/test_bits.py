"""Bit fields and the packed Bitstream: MSB-first packing by hand and validation at birth."""

import numpy as np
import pytest

from dnnergy.coding.bits import Bitstream, from_bits, int_levels, to_bits, to_signed
from dnnergy.errors import UserInputError


def test_fields_by_hand():
    # 5 in 4 bits is 0101; -1 in 3 bits is 111 (two's complement), read back as 7 unsigned, -1 signed
    assert to_bits(np.array([5, -1]), 4).tolist() == [[0, 1, 0, 1], [1, 1, 1, 1]]
    assert from_bits(to_bits(np.array([-1]), 3)).tolist() == [7]
    assert to_signed(np.array([7, 3]), 3).tolist() == [-1, 3]


def test_packing_by_hand():
    stream = Bitstream.of(np.array([1, 0, 1, 1, 0, 0, 0, 0, 1]))
    assert stream == Bitstream(bytes([0b10110000, 0b10000000]), 9) and stream.nbytes == 2
    assert stream.bits().tolist() == [1, 0, 1, 1, 0, 0, 0, 0, 1]


def test_invalid():
    with pytest.raises(ValueError, match="Bitstream: nbits"):
        Bitstream(b"\x00\x00", 8)  # a whole spare byte
    with pytest.raises(TypeError, match="Bitstream: data must be bytes"):
        Bitstream(bytearray(1), 8)
    with pytest.raises(UserInputError, match=r"bits must be an int in \[1, 62\]"):
        int_levels(np.zeros(2, np.int64), 0)

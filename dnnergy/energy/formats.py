"""Storage formats of sparse tensors inside an accelerator, registered as codes (:mod:`dnnergy.energy.codes`).

A hardware level declares how it keeps each datum (``storage: {weight: csc}`` in the
YAML, :attr:`~dnnergy.hardware.MemoryLevel.storage`); every access there then moves
the coded size, ``coded_bits / (numel * bits)`` of the raw one. Any registered code
serves (``rlc``, ``zero_flag``, ``none``); this module adds, in Sparseloop's vocabulary
(Wu et al., MICRO 2022):

* ``bitmask``: one presence bit per element, then the non-zero values:
  ``numel + nnz * bits`` bits (the same size as the zero-flag code, whose flags are
  interleaved with the values instead of gathered in a mask).
* ``csc`` (:class:`Csc`): compressed sparse columns. The tensor, in C order, is cut
  into columns of ``column`` elements; each non-zero carries a ``coord_bits``
  coordinate (its row in the column) and each column a ``pointer_bits`` pointer to its
  first entry, plus one end pointer: ``nnz * (bits + coord_bits) + (ceil(numel /
  column) + 1) * pointer_bits`` bits.
* ``coordinates`` (:class:`Coordinates`): a coordinate list, ``nnz * (bits + coord_bits)``.

Parameters are replaced per level in the YAML, e.g. ``{format: csc, coord_bits: 4,
pointer_bits: 4, column: 16}``, or in Python with ``dataclasses.replace(get_code("csc"),
column=8)``. Sizes are exact from measured :class:`~dnnergy.workload.TensorStats` (the
non-zero count) and expected for i.i.d. zeros otherwise (``nnz = numel * density``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..workload import TensorStats
from .codes import ZeroFlagCode, register_code

__all__ = ["Csc", "Coordinates", "BITMASK"]


def _check_int(owner: str, field: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}: {field} must be an int >= {low} (got {value!r})")


def _nonzeros(numel: int, density: float, stats: TensorStats | None) -> tuple[float, float]:
    """``(numel, nnz)``: exact from ``stats``, else ``numel * density`` expected non-zeros."""
    return (stats.numel, stats.nonzeros) if stats is not None else (numel, numel * density)


@dataclass(frozen=True, slots=True)
class Csc:
    """Compressed sparse columns of ``column`` elements: value + ``coord_bits`` per non-zero, ``pointer_bits`` per column.

    Defaults are Eyeriss v2's weight scratchpad (Chen et al., JETCAS 2019, Table II):
    4-bit counts beside each value and 7-bit addresses (its 96-entry data array), with
    columns of 16 so that 4 bits address every row. NB: Eyeriss v2's count is the
    number of zeros since the previous non-zero; with columns of at most
    ``2**coord_bits`` that equals an absolute row index (no overflow entries).
    Example: ``Csc().coded_bits(32, 8, 0.25) == 8 * (8 + 4) + 3 * 7 == 117`` bits.
    """

    name: str = "csc"
    coord_bits: int = 4
    pointer_bits: int = 7
    column: int = 16

    def __post_init__(self) -> None:
        owner = f"Csc {self.name!r}"
        _check_int(owner, "coord_bits", self.coord_bits, 1)
        _check_int(owner, "pointer_bits", self.pointer_bits, 1)
        _check_int(owner, "column", self.column, 1)
        if self.column > 1 << self.coord_bits:
            raise ValueError(f"{owner}: {self.coord_bits}-bit coordinates cannot address columns of {self.column} (at most {1 << self.coord_bits})")

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """Bits of the tensor in CSC: ``nnz * (bits + coord_bits) + (ceil(numel / column) + 1) * pointer_bits``."""
        numel, nnz = _nonzeros(numel, density, stats)
        if numel <= 0:
            return 0.0
        return nnz * (bits + self.coord_bits) + (math.ceil(numel / self.column) + 1) * self.pointer_bits


@dataclass(frozen=True, slots=True)
class Coordinates:
    """Coordinate list: each non-zero with a ``coord_bits`` index. Example: ``Coordinates().coded_bits(100, 8, 0.1) == 240``."""

    name: str = "coordinates"
    coord_bits: int = 16

    def __post_init__(self) -> None:
        _check_int(f"Coordinates {self.name!r}", "coord_bits", self.coord_bits, 1)

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """Bits of the coordinate list: ``nnz * (bits + coord_bits)``."""
        return _nonzeros(numel, density, stats)[1] * (bits + self.coord_bits)


#: A presence bitmask plus the packed non-zeros: the zero-flag code's size under Sparseloop's name.
BITMASK = ZeroFlagCode(name="bitmask")

register_code(BITMASK)
register_code(Csc())
register_code(Coordinates())

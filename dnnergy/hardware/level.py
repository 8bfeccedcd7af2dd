"""Memory levels of an accelerator: where data lives and what one access costs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import HardwareConfigError
from ..workload import Datum
from ._check import MAX_BITS, check_name, check_number, check_positive_int
from .sparse import check_storage

__all__ = ["LevelKind", "MemoryLevel", "LEVEL_ORDER"]


class LevelKind(str, Enum):
    """The four storage levels of the Eyeriss hierarchy (Chen et al., ISCA 2016), outermost first.

    Example: ``[k.value for k in LevelKind] == ["dram", "buffer", "array", "rf"]``; ``LevelKind("rf") is LevelKind.RF``.
    """

    DRAM = "dram"  #: off-chip memory
    BUFFER = "buffer"  #: on-chip global buffer (SRAM)
    ARRAY = "array"  #: inter-PE network (a neighbour PE's register file)
    RF = "rf"  #: register file / scratchpad inside each PE


#: Position of each kind in the hierarchy, outermost (0) first.
LEVEL_ORDER = {kind: i for i, kind in enumerate(LevelKind)}


@dataclass(frozen=True, slots=True)
class MemoryLevel:
    """One storage level and the energy of one access to it.

    ``energy`` is the cost of reading or writing one word of ``ref_bits`` bits, in the
    owning :class:`~dnnergy.hardware.Hardware`'s unit; an access of ``b`` bits costs
    ``energy * b / ref_bits`` (memory energy is linear in bits). ``capacity_bytes`` is
    the size of one instance (``None``: unbounded, e.g. DRAM); ``per_pe`` marks a level
    replicated in every PE (register files). Example: ``MemoryLevel("SRAM", "buffer",
    energy=5.0, ref_bits=32).access_energy(16) == 2.5`` (pJ for a 16-bit read).

    ``storage`` says how the level keeps each datum: ``(datum, format)`` pairs (a dict
    is accepted), a format being a registered code object such as
    ``get_code("csc")`` (:mod:`dnnergy.energy.formats`); a datum not listed is stored
    uncompressed (at DRAM: as ``estimate``'s ``coding`` says).

    Example: on ``load_hardware("eyeriss")``, the global buffer's ``.capacity_words(16)`` is 55,296 words
    (108 kB) and DRAM's ``None``; on ``load_hardware("eyeriss_v2")``, ``levels[1].format_of("weight")`` is
    ``Csc(name='csc', coord_bits=4, pointer_bits=7, column=16)`` and ``.format_of("ofmap")`` is ``None``.
    """

    name: str
    kind: LevelKind
    energy: float
    ref_bits: int
    capacity_bytes: int | None = None
    per_pe: bool = False
    storage: tuple[tuple[Datum, Any], ...] = ()

    def __post_init__(self) -> None:
        check_name("MemoryLevel", "name", self.name)
        try:
            object.__setattr__(self, "kind", LevelKind(self.kind))
        except ValueError:
            allowed = "|".join(k.value for k in LevelKind)
            raise HardwareConfigError(f"MemoryLevel {self.name!r}: kind must be one of {allowed} (got {self.kind!r:.80})") from None
        owner = f"MemoryLevel {self.name!r}"
        object.__setattr__(self, "energy", check_number(owner, "energy", self.energy))
        check_positive_int(owner, "ref_bits", self.ref_bits, maximum=MAX_BITS)
        if self.capacity_bytes is not None:
            check_positive_int(owner, "capacity_bytes", self.capacity_bytes)
        if not isinstance(self.per_pe, bool):
            raise HardwareConfigError(f"{owner}: per_pe must be true or false (got {self.per_pe!r:.80})")
        object.__setattr__(self, "storage", check_storage(owner, self.storage))

    def format_of(self, datum: Datum | str) -> Any | None:
        """The storage format declared for ``datum`` at this level, or ``None`` (uncompressed / not declared)."""
        return dict(self.storage).get(Datum(datum))

    def access_energy(self, bits: float) -> float:
        """Energy of one access of ``bits`` bits, in the hardware's unit (linear in bits)."""
        return self.energy * bits / self.ref_bits

    def capacity_words(self, bits: int) -> int | None:
        """Whole words of ``bits`` bits that fit in one instance (``None`` when unbounded)."""
        return None if self.capacity_bytes is None else self.capacity_bytes * 8 // bits

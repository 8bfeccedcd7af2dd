"""``Hardware``: memory hierarchy + MAC cost + PE array of one accelerator."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import HardwareConfigError
from ._check import MAX_BITS, check_name, check_positive_int
from .level import LEVEL_ORDER, LevelKind, MemoryLevel
from .mac import MacCost
from .sparse import ZeroActions

__all__ = ["PEArray", "Hardware"]


@dataclass(frozen=True, slots=True)
class PEArray:
    """A ``rows`` x ``cols`` array of processing elements and each PE's scratchpads, in words.

    Eyeriss (Chen et al., ISSCC 2016): 12 x 14 PEs with 224 filter, 12 ifmap and 24
    psum words per PE. ``shared_rf_words`` (optional) describes a register file shared
    by the three data: a PE's filter, ifmap and psum words must then fit it *together*
    (each still at most its own field; set those to ``shared_rf_words`` for a fully shared
    RF, as nn_dataflow models one: ``PEArray(12, 14, 261, 261, 261, shared_rf_words=261)``).
    Example: ``PEArray(12, 14, 224, 12, 24).pes == 168`` (the ``eyeriss`` preset's array).
    """

    rows: int
    cols: int
    filter_words: int
    ifmap_words: int
    psum_words: int
    shared_rf_words: int | None = None

    def __post_init__(self) -> None:
        for field in ("rows", "cols", "filter_words", "ifmap_words", "psum_words"):
            check_positive_int("PEArray", field, getattr(self, field))
        if self.shared_rf_words is not None:
            check_positive_int("PEArray", "shared_rf_words", self.shared_rf_words)

    @property
    def pes(self) -> int:
        """Number of processing elements (``rows * cols``)."""
        return self.rows * self.cols


@dataclass(frozen=True, slots=True)
class Hardware:
    """An accelerator as the energy model sees it.

    ``levels`` run outermost (DRAM) first, at most one level per :class:`LevelKind`;
    every energy (levels and ``mac``) is in ``unit`` (``"pJ"`` or ``"MAC-normalized"``).
    ``word_bits`` is the default bitwidth of every datum. ``mac_formats`` are the
    alternative MAC costs a preset tabulates (e.g. int8, fp16); :meth:`with_mac_format`
    switches to one of them. ``zero_actions`` says what the MACs do with a zero weight
    or ifmap (default: gate both, as Eyeriss); each level's ``storage`` how it keeps
    each datum (see :mod:`dnnergy.hardware.sparse`). Build from YAML with :func:`~dnnergy.hardware.load_hardware`
    or directly in Python; derive variants with :meth:`replace`.

    Example:

    >>> from dnnergy.hardware import load_hardware
    >>> eyeriss = load_hardware("eyeriss")
    >>> eyeriss.unit, [(level.name, level.energy) for level in eyeriss.levels]  # per 16-bit access
    ('MAC-normalized', [('DRAM', 200.0), ('global_buffer', 6.0), ('array', 2.0), ('RF', 1.0)])
    >>> eyeriss.level("dram").name, eyeriss.level("buffer").name, eyeriss.pe_array.pes
    ('DRAM', 'global_buffer', 168)
    >>> eyeriss.replace(name="mine").name
    'mine'
    >>> load_hardware("horowitz45").unit  # 640 pJ per 32-bit DRAM access
    'pJ'
    """

    name: str
    unit: str
    word_bits: int
    levels: tuple[MemoryLevel, ...]
    mac: MacCost
    pe_array: PEArray | None = None
    mac_formats: tuple[MacCost, ...] = ()
    description: str = ""
    zero_actions: ZeroActions = ZeroActions()

    def __post_init__(self) -> None:
        check_name("Hardware", "name", self.name)
        owner = f"Hardware {self.name!r}"
        check_name(owner, "unit", self.unit)
        check_positive_int(owner, "word_bits", self.word_bits, maximum=MAX_BITS)
        if not isinstance(self.description, str):
            raise HardwareConfigError(f"{owner}: description must be a string (got {type(self.description).__name__})")
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "mac_formats", tuple(self.mac_formats))
        if not self.levels:
            raise HardwareConfigError(f"{owner}: levels must list at least one MemoryLevel")
        for i, level in enumerate(self.levels):
            if not isinstance(level, MemoryLevel):
                raise HardwareConfigError(f"{owner}: levels[{i}] must be a MemoryLevel (got {type(level).__name__})")
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise HardwareConfigError(f"{owner}: level names must be unique (got {names})")
        order = [LEVEL_ORDER[level.kind] for level in self.levels]
        if order != sorted(set(order)):
            kinds = [level.kind.value for level in self.levels]
            raise HardwareConfigError(
                f"{owner}: levels must run outermost first (dram, buffer, array, rf), one per kind (got {kinds})"
            )
        if not isinstance(self.mac, MacCost):
            raise HardwareConfigError(f"{owner}: mac must be a MacCost (got {type(self.mac).__name__})")
        if self.pe_array is not None and not isinstance(self.pe_array, PEArray):
            raise HardwareConfigError(f"{owner}: pe_array must be a PEArray or None (got {type(self.pe_array).__name__})")
        if not isinstance(self.zero_actions, ZeroActions):
            raise HardwareConfigError(f"{owner}: zero_actions must be a ZeroActions (got {type(self.zero_actions).__name__})")
        formats = [fmt.name for fmt in self.mac_formats]
        if len(set(formats)) != len(formats):
            raise HardwareConfigError(f"{owner}: mac_formats names must be unique (got {formats})")

    def level(self, kind: LevelKind | str) -> MemoryLevel | None:
        """The level of this kind, or ``None`` when the hardware has none."""
        kind = LevelKind(kind)
        for level in self.levels:
            if level.kind is kind:
                return level
        return None

    def replace(self, **changes) -> "Hardware":
        """A copy with some fields changed (validated like a new record)."""
        return dataclasses.replace(self, **changes)

    def with_mac_format(self, name: str) -> "Hardware":
        """A copy whose MAC cost is the tabulated format ``name`` and whose word is that format's width.

        Example: ``load_hardware("horowitz45").with_mac_format("int8")`` prices MACs at
        0.2 + 0.03 pJ and every datum at 8 bits (memory energy a quarter of 32-bit).
        """
        for fmt in self.mac_formats:
            if fmt.name == name:
                return self.replace(mac=fmt, word_bits=fmt.ref_bits)
        known = ", ".join(fmt.name for fmt in self.mac_formats) or "none"
        raise HardwareConfigError(f"Hardware {self.name!r}: no MAC format {name!r} (known: {known})")

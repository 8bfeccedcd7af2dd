"""How an accelerator handles zeros: what its MACs do with a zero operand, and how a level stores each datum.

Two independent choices, in the spirit of Sparseloop's format / action split (Wu et
al., MICRO 2022):

* **zero actions** (:class:`ZeroActions`), per MAC operand (weight, ifmap): ``none``
  (a zero is multiplied like any value), ``gate`` (the MAC, and the reads that only
  serve it, are gated: energy saved, time not) or ``skip`` (the zero is never fetched
  nor computed). Eyeriss gates on both (Chen et al., ISSCC 2016); Eyeriss v2 skips
  both (Chen et al., JETCAS 2019).
* **storage formats**, per (level, datum): a registered code object such as ``csc``,
  ``bitmask``, ``rlc`` or ``none`` (:mod:`dnnergy.energy.codes`,
  :mod:`dnnergy.energy.formats`), held in :attr:`MemoryLevel.storage`. An access to
  a level that stores a datum compressed moves its coded bits.

``dnnergy.energy.estimate`` turns both into energy (``docs/sparse-hardware.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import HardwareConfigError
from ..workload import Datum

__all__ = ["ZeroAction", "ZeroActions", "check_storage"]


class ZeroAction(str, Enum):
    """What the compute does with a zero operand. Example: ``ZeroAction("skip") is ZeroAction.SKIP``."""

    GATE = "gate"  #: detect and gate: no MAC, no read of the other operand (Eyeriss)
    SKIP = "skip"  #: zeros never fetched or computed (Eyeriss v2)
    NONE = "none"  #: dense: zeros cost like any value


def _action(owner: str, field: str, value: object) -> ZeroAction:
    try:
        return ZeroAction(value)
    except ValueError:
        allowed = ", ".join(a.value for a in ZeroAction)
        raise HardwareConfigError(f"{owner}: {field} must be one of {allowed} (got {value!r:.80})") from None


@dataclass(frozen=True, slots=True)
class ZeroActions:
    """The zero action of each MAC operand; the default (gate, gate) is Eyeriss's and every preset's without one.

    Example: ``ZeroActions(weight="skip", ifmap="gate")`` never fetches zero weights and
    gates MACs (and weight reads) on zero ifmaps. ``ZeroActions.both("skip")`` is
    ``ZeroActions(weight=ZeroAction.SKIP, ifmap=ZeroAction.SKIP)``; ``ZeroActions().of(Datum.WEIGHT)`` is
    ``ZeroAction.GATE`` and ``ZeroActions().of(Datum.OFMAP)`` is ``ZeroAction.NONE``.
    """

    weight: ZeroAction = ZeroAction.GATE
    ifmap: ZeroAction = ZeroAction.GATE

    def __post_init__(self) -> None:
        for field in ("weight", "ifmap"):
            object.__setattr__(self, field, _action("ZeroActions", field, getattr(self, field)))

    @classmethod
    def both(cls, action: ZeroAction | str) -> "ZeroActions":
        """The same action on both operands (what ``estimate(zero_mode=...)`` means)."""
        return cls(action, action)

    def of(self, datum: Datum) -> ZeroAction:
        """The action on operand ``datum`` (weight or ifmap); output maps are not operands (``none``)."""
        return {Datum.WEIGHT: self.weight, Datum.IFMAP: self.ifmap}.get(Datum(datum), ZeroAction.NONE)


def check_storage(owner: str, storage: Any) -> tuple[tuple[Datum, Any], ...]:
    """Return ``storage`` (a mapping or pairs datum -> code object) as sorted ``(Datum, code)`` pairs.

    A code object is anything with a ``name`` and ``coded_bits(numel, bits, density,
    stats=None)`` (the :class:`~dnnergy.energy.codes.DramCode` protocol); each datum at
    most once. Raises :class:`HardwareConfigError` naming ``owner`` otherwise.
    """
    pairs = storage.items() if hasattr(storage, "items") else storage
    try:
        pairs = list(pairs)
    except TypeError:
        raise HardwareConfigError(f"{owner}: storage must map weight/ifmap/ofmap to formats (got {storage!r:.80})") from None
    checked: dict[Datum, Any] = {}
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise HardwareConfigError(f"{owner}: storage must map weight/ifmap/ofmap to formats (got {storage!r:.80})")
        key, code = item
        try:
            datum = Datum(key)
        except ValueError:
            allowed = ", ".join(d.value for d in Datum)
            raise HardwareConfigError(f"{owner}: storage keys must be {allowed} (got {key!r})") from None
        if datum in checked:
            raise HardwareConfigError(f"{owner}: storage lists {datum.value!r} twice")
        if not isinstance(getattr(code, "name", None), str) or not callable(getattr(code, "coded_bits", None)):
            raise HardwareConfigError(f"{owner}: storage[{datum.value}] must be a format with name and coded_bits() (got {code!r:.80})")
        checked[datum] = code
    return tuple(sorted(checked.items(), key=lambda pair: pair[0].value))

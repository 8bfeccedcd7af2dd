"""The dataflow contract: one MAC layer + hardware -> dense word-access counts per (datum, level).

A dataflow knows nothing about bitwidths or sparsity; :func:`dnnergy.energy.estimate`
applies those. A minimal dataflow (every operand fetched from the buffer, once per MAC)::

    @register_dataflow("naive")
    class Naive:
        name = "naive"
        def accesses(self, layer, hardware):
            return AccessCounts(layer.macs, {(Datum.WEIGHT, LevelKind.BUFFER): layer.macs,
                                             (Datum.IFMAP, LevelKind.BUFFER): layer.macs,
                                             (Datum.OFMAP, LevelKind.BUFFER): 2 * layer.macs})

Optional hook: a dataflow may also define ``output_accesses(layer, hardware) ->
AccessCounts``, the extra accesses for the network's output; ``estimate`` adds them to
the last MAC layer (``weights_once`` writes and reads the final output once in SRAM).

Dataflows are registered (as zero-argument factories) in a
:class:`~dnnergy.registry.Registry` of kind ``"dataflow"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import UserInputError
from ..hardware import Hardware, LevelKind
from ..registry import Registry
from ..workload import Datum, Layer

__all__ = ["AccessCounts", "Dataflow", "register_dataflow", "get_dataflow", "list_dataflows"]


@dataclass(frozen=True, slots=True)
class AccessCounts:
    """Dense accesses of one layer under one dataflow.

    ``macs`` is the MAC count the dataflow performs (normally ``layer.macs``);
    ``accesses[(datum, level_kind)]`` counts word accesses (reads + writes) of that
    data type at that level, words being one datum each, whatever the bitwidth.
    ``mapping`` optionally describes the mapping chosen (plain data: ints, strs, lists).
    Example: ``AccessCounts(8, {(Datum.WEIGHT, LevelKind.DRAM): 8, (Datum.IFMAP, LevelKind.BUFFER): 8})``:
    8 MACs that read each of 8 weights once from DRAM and an input word from the buffer per MAC
    (:class:`~dnnergy.energy.weights_once.WeightsOnce` on ``nn.Linear(4, 2)`` gives these and 8
    buffer reads of weights).
    """

    macs: int | float
    accesses: Mapping[tuple[Datum, LevelKind], float]
    mapping: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.macs, bool) or not isinstance(self.macs, (int, float)) or self.macs < 0:
            raise ValueError(f"AccessCounts: macs must be a non-negative number (got {self.macs!r})")
        checked = {}
        for key, count in self.accesses.items():
            if not (isinstance(key, tuple) and len(key) == 2):
                raise ValueError(f"AccessCounts: keys must be (Datum, LevelKind) pairs (got {key!r})")
            datum, kind = Datum(key[0]), LevelKind(key[1])
            if isinstance(count, bool) or not isinstance(count, (int, float)) or not count >= 0:
                raise ValueError(f"AccessCounts: accesses[{datum.value}, {kind.value}] must be >= 0 (got {count!r})")
            checked[(datum, kind)] = count
        object.__setattr__(self, "accesses", MappingProxyType(checked))
        if self.mapping is not None:
            object.__setattr__(self, "mapping", MappingProxyType(dict(self.mapping)))


@runtime_checkable
class Dataflow(Protocol):
    """Anything with a ``name`` and an ``accesses(layer, hardware) -> AccessCounts`` method.

    Example: the ``Naive`` dataflow of this module's docstring; ``isinstance(WeightsOnce(), Dataflow)`` is
    True and ``get_dataflow("weights_once").accesses(layer, load_hardware("horowitz45"))`` gives the
    :class:`AccessCounts` of one layer.
    """

    name: str

    def accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Dense access counts of one MAC layer (CONV, FC or MATMUL) on ``hardware``."""
        ...


_REGISTRY: Registry[Callable[[], Dataflow]] = Registry("dataflow")
_T = TypeVar("_T", bound=Callable[[], Dataflow])


def register_dataflow(name: str, *, override: bool = False) -> Callable[[_T], _T]:
    """Class decorator: register a zero-argument-constructible dataflow under ``name``.

    Raises ``TypeError`` for an empty name or an entry that is not callable, and
    ``RuntimeError`` for a taken name (unless ``override=True``); returns the class
    unchanged. :func:`get_dataflow` instantiates it. Example: the ``Naive`` class of the module
    docstring; ``get_dataflow("naive")`` then returns a new ``Naive()``.
    """

    def decorator(factory: _T) -> _T:
        if not callable(factory):
            raise TypeError(f"register_dataflow({name!r}): expected a class or factory (got {factory!r})")
        return _REGISTRY.add(name, factory, override=override)

    return decorator


def list_dataflows(pattern: str = "*") -> list[str]:
    """Registered dataflow names matching the fnmatch ``pattern``, sorted.

    Example: ``list_dataflows() == ["row_stationary", "row_stationary_search", "weights_once"]``;
    ``list_dataflows("weights*") == ["weights_once"]``.
    """
    return _REGISTRY.list(pattern)


def get_dataflow(name: str | Dataflow) -> Dataflow:
    """A new instance of the dataflow registered as ``name``; an instance passes through unchanged.

    An unknown name raises :class:`UserInputError` naming close and known dataflows, as
    does an object without ``name`` and ``accesses()``. Example:
    ``get_dataflow("weights_once").name == "weights_once"``.
    """
    if isinstance(name, str):
        return _REGISTRY.get(name)()
    if isinstance(name, Dataflow):
        return name
    raise UserInputError(f"dataflow must be a registered name or have name and accesses() (got {name!r})")

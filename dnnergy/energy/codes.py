"""DRAM codes as registered objects: how many bits a (sparse) tensor takes on its way to DRAM.

A code is anything with a ``name`` and a ``coded_bits(numel, bits, density, stats)``
method (the :class:`DramCode` protocol); :func:`estimate` accepts a registered name
(``coding="rlc"``) or a code object, and prices each datum's DRAM traffic by
:func:`code_ratio`. Built-ins, wrapping the reference functions of
:mod:`dnnergy.energy.coding`: ``"rlc"`` (:class:`RlcCode`, the Eyeriss run-length code,
or any :class:`~dnnergy.energy.coding.RunLengthCode`), ``"zero_flag"``
(:class:`ZeroFlagCode`) and ``"none"`` (:class:`RawCode`). A new code, e.g. one index of
``index_bits`` per non-zero value::

    @dataclass(frozen=True)
    class Coordinates:
        name: str = "coo"
        index_bits: int = 16
        def coded_bits(self, numel, bits, density, stats=None):
            return (stats.nonzeros if stats else numel * density) * (bits + self.index_bits)

    register_code(Coordinates())   # then estimate(..., coding="coo")
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import UserInputError
from ..registry import Registry
from ..workload import TensorStats
from . import coding as _coding

__all__ = ["DramCode", "RlcCode", "ZeroFlagCode", "RawCode", "register_code", "get_code", "list_codes", "code_ratio"]


@runtime_checkable
class DramCode(Protocol):
    """Anything with a ``name`` and a ``coded_bits(numel, bits, density, stats=None)`` method.

    Example: ``ZeroFlagCode().coded_bits(100, 16, 0.1) == 260.0`` bits (100 flags + 10 x 16 level bits) and
    ``RawCode().coded_bits(100, 16, 0.1) == 1600`` bits; the ``Coordinates`` code of this module's docstring
    is one too.
    """

    name: str

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """Coded size, in bits, of ``numel`` values of ``bits`` bits each with non-zero fraction ``density``.

        ``stats``, when given, were measured on this very tensor (``stats.numel ==
        numel`` and ``stats.density == density``, which :func:`code_ratio` checks): the
        size is then exact; without them it is the expected size for i.i.d. zeros.
        """
        ...


@dataclass(frozen=True, slots=True)
class RlcCode:
    """Run-length code with the field widths of ``fields`` (levels take the datum's ``bits``).

    Example: ``RlcCode().coded_bits(96, 16, 0.5)`` is the Eyeriss code's expected size,
    ``48 / (1 - 0.5**32)`` pairs x 64/3 bits, about 1024 bits (raw: 1536).
    """

    fields: _coding.RunLengthCode = _coding.EYERISS_RLC
    name: str = "rlc"

    def __post_init__(self) -> None:
        if not isinstance(self.fields, _coding.RunLengthCode):
            raise TypeError(f"RlcCode: fields must be a RunLengthCode (got {self.fields!r})")

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """Bits of the run-length coded tensor: exact from ``stats``, else expected (see :class:`DramCode`)."""
        fields = self.fields.with_level_bits(bits)
        return _coding.rlc_bits(stats, fields) if stats is not None else _coding.rlc_bits_expected(numel, density, fields)


@dataclass(frozen=True, slots=True)
class ZeroFlagCode:
    """Zero-flag code: 1 bit per zero, 1 + ``bits`` bits per non-zero (seed 001).

    Example: ``ZeroFlagCode().coded_bits(100, 16, 0.5) == 100 * (1 + 0.5 * 16) == 900.0`` bits.
    """

    name: str = "zero_flag"

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """Bits of the zero-flag coded tensor: exact from ``stats``, else expected (see :class:`DramCode`)."""
        return _coding.zero_flag_bits(stats, bits) if stats is not None else _coding.zero_flag_bits_expected(numel, density, bits)


@dataclass(frozen=True, slots=True)
class RawCode:
    """No coding: every value travels as a raw word. Example: ``RawCode().coded_bits(100, 16, 0.1) == 1600`` bits."""

    name: str = "none"

    def coded_bits(self, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
        """``numel * bits``, whatever the zeros."""
        return numel * bits


_CODES: Registry[DramCode] = Registry("DRAM code")


def register_code(code: DramCode, *, aliases: Iterable[str] = (), override: bool = False) -> DramCode:
    """Register the code object ``code`` under ``code.name`` (and ``aliases``) and return it.

    Raises ``TypeError`` for an object without ``name`` and ``coded_bits`` and
    ``RuntimeError`` for a taken name, unless ``override=True``. Example:
    ``register_code(RlcCode(RunLengthCode(run_bits=4), name="rlc4"))``, then
    ``estimate(..., coding="rlc4")``.
    """
    if not isinstance(code, DramCode):
        raise TypeError(f"register_code: expected an object with name and coded_bits() (got {code!r})")
    return _CODES.add(code.name, code, aliases=aliases, override=override)


def list_codes(pattern: str = "*") -> list[str]:
    """Registered DRAM code names matching the fnmatch ``pattern``, sorted.

    Example: ``list_codes() == ["bitmask", "coordinates", "csc", "none", "rlc", "zero_flag"]``
    (the last three are DRAM codes; the first three the on-chip formats of :mod:`dnnergy.energy.formats`).
    """
    return _CODES.list(pattern)


def get_code(code: str | DramCode) -> DramCode:
    """The code registered as ``code``; a code object passes through unchanged.

    An unknown name raises :class:`UserInputError` naming close and known codes, as does
    an object without ``name`` and ``coded_bits()``. Example: ``get_code("rlc") ==
    RlcCode()``.
    """
    if isinstance(code, str):
        return _CODES.get(code)
    if isinstance(code, DramCode):
        return code
    raise UserInputError(f"coding must be a registered code name ({', '.join(list_codes())}) or have name and coded_bits() (got {code!r})")


def code_ratio(code: DramCode, numel: int, bits: int, density: float, stats: TensorStats | None = None) -> float:
    """Coded / raw size of one tensor sent to DRAM, in [0, 1] (a tensor is never sent larger than raw).

    ``numel`` values of ``bits`` bits with non-zero fraction ``density``. Measured
    ``stats`` that match ``density`` give the exact size (with their own ``numel``);
    without stats it is the code's expected size for i.i.d. zeros. Stale stats (the
    density changed after profiling, e.g. pruning) bound the expected size: turning a
    value into a zero never lengthens a run-length or zero-flag code (two runs merge),
    so a lower density costs at most the measured ratio and a higher one at least it,
    which keeps the estimate monotone in density. Density 1 (and an empty tensor) gives
    exactly 1: dense data is sent raw. Example: ``code_ratio(ZeroFlagCode(), 100, 16,
    0.5) == 900 / 1600``.
    """
    if density >= 1.0:
        return 1.0
    measured = stats is not None and stats.numel > 0
    if measured and abs(stats.density - density) < 1e-9:
        return min(1.0, code.coded_bits(stats.numel, bits, density, stats) / (stats.numel * bits))
    if numel <= 0:
        return 1.0
    expected = min(1.0, code.coded_bits(numel, bits, density) / (numel * bits))
    if not measured:
        return expected
    exact = code_ratio(code, stats.numel, bits, stats.density, stats)
    return min(exact, expected) if density < stats.density else max(exact, expected)


register_code(RlcCode())
register_code(ZeroFlagCode())
register_code(RawCode())

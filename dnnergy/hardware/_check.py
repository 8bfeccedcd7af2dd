"""Validation helpers shared by the hardware value objects (private)."""

from __future__ import annotations

import math

from ..errors import HardwareConfigError

__all__ = ["check_number", "check_positive_int", "check_name", "MAX_ENERGY", "MAX_EXPONENT", "MAX_BITS", "MAX_INT"]

#: Largest energy per access or per MAC accepted (any unit). No hardware costs 1e100 of
#: anything per access, and every product ``energy * count * bits ratio`` an estimate forms
#: stays finite below it (counts and ratios below ~1e200), so a report total cannot become inf.
MAX_ENERGY = 1e100
#: Largest MAC bitwidth exponent: published power laws use 1..2; ``(64*64)**8`` is still finite.
MAX_EXPONENT = 8.0
#: Largest bitwidth of a word or reference access (bits).
MAX_BITS = 2**16
#: Largest other integer (capacities in bytes): 2**53, beyond which floats lose whole units.
MAX_INT = 2**53


def check_number(owner: str, field: str, value: object, *, positive: bool = False, maximum: float = MAX_ENERGY) -> float:
    """Return ``value`` as a float after checking it is a finite number in [0, ``maximum``] (> 0 if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HardwareConfigError(f"{owner}: {field} must be a finite number (got {value!r:.80})")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number > maximum:
        shown = value if number != math.inf or isinstance(value, float) else f"an integer of {len(str(value))} digits"
        raise HardwareConfigError(f"{owner}: {field} must be a finite number <= {maximum:g} (got {shown})")
    if number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise HardwareConfigError(f"{owner}: {field} must be {bound} (got {value!r:.80})")
    return number


def check_positive_int(owner: str, field: str, value: object, *, maximum: int = MAX_INT) -> int:
    """Return ``value`` after checking it is an int in [1, ``maximum``]."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HardwareConfigError(f"{owner}: {field} must be a positive int (got {value!r:.80})")
    if value > maximum:
        shown = value if value < 10**30 else f"an integer of {len(str(value))} digits"
        raise HardwareConfigError(f"{owner}: {field} must be a positive int <= {maximum} (got {shown})")
    return value


def check_name(owner: str, field: str, value: object) -> str:
    """Return ``value`` after checking it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise HardwareConfigError(f"{owner}: {field} must be a non-empty string (got {value!r:.80})")
    return value

"""Validation helpers shared by the hardware value objects (private)."""

from __future__ import annotations

import math

from ..errors import HardwareConfigError

__all__ = ["check_number", "check_positive_int", "check_name"]


def check_number(owner: str, field: str, value: object, *, positive: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0 (> 0 if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HardwareConfigError(f"{owner}: {field} must be a finite number (got {value!r})")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise HardwareConfigError(f"{owner}: {field} must be {bound} (got {value!r})")
    return float(value)


def check_positive_int(owner: str, field: str, value: object) -> int:
    """Return ``value`` after checking it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HardwareConfigError(f"{owner}: {field} must be a positive int (got {value!r})")
    return value


def check_name(owner: str, field: str, value: object) -> str:
    """Return ``value`` after checking it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise HardwareConfigError(f"{owner}: {field} must be a non-empty string (got {value!r})")
    return value

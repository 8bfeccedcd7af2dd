"""Exception hierarchy: catch :class:`DnnergyError` to handle every error dnnergy raises on purpose."""

from __future__ import annotations

__all__ = [
    "DnnergyError",
    "UserInputError",
    "TraceError",
    "UnsupportedOpError",
    "OnnxImportError",
    "HardwareConfigError",
]


class DnnergyError(Exception):
    """Base class of every error dnnergy raises deliberately."""


class UserInputError(DnnergyError, ValueError):
    """Bad input from the user: a wrong shape, an unknown name, a missing file."""


class TraceError(DnnergyError, RuntimeError):
    """The model's forward pass failed on the example input."""


class UnsupportedOpError(DnnergyError, RuntimeError):
    """Raised by ``strict=True`` when a model uses ops dnnergy cannot account for."""

    def __init__(self, ops: list[str]):
        self.ops = list(ops)
        super().__init__("unsupported ops: " + ", ".join(self.ops))


class OnnxImportError(UserInputError):
    """An ONNX file that cannot be read, or has shapes that cannot be resolved."""


class HardwareConfigError(UserInputError):
    """A hardware description (YAML or Python) with a missing, unknown or invalid field."""

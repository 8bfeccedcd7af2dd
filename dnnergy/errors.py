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
    """Base class of every error dnnergy raises deliberately.

    Example: ``except dnnergy.DnnergyError`` catches each error below, e.g. the
    :class:`HardwareConfigError` of ``dnnergy.load_hardware("nope")``.
    """


class UserInputError(DnnergyError, ValueError):
    """Bad input from the user: a wrong shape, an unknown name, a missing file.

    Also a ``ValueError``. Example: ``dnnergy.get_method("magnitud")`` raises it with "unknown compression
    method 'magnitud'; did you mean magnitude? ...".
    """


class TraceError(DnnergyError, RuntimeError):
    """The model's forward pass failed on the example input.

    Example: ``dnnergy.trace(nn.Linear(4, 2), (1, 5))`` raises it: "Linear: forward pass failed on input
    of shape (1, 5): mat1 and mat2 shapes cannot be multiplied (1x5 and 4x2); ...".
    """


class UnsupportedOpError(DnnergyError, RuntimeError):
    """Raised by ``strict=True`` when a model uses ops dnnergy cannot account for.

    Example: ``dnnergy.trace(nn.Conv3d(1, 1, 1), (1, 1, 2, 2, 2), strict=True)`` raises it with
    ``ops == ['aten.convolution (3-D convolution)']``.
    """

    def __init__(self, ops: list[str]):
        self.ops = list(ops)
        super().__init__("unsupported ops: " + ", ".join(self.ops))


class OnnxImportError(UserInputError):
    """An ONNX file that cannot be read, or has shapes that cannot be resolved.

    Example: ``dnnergy.from_onnx("missing.onnx")`` raises it: "missing.onnx: no such ONNX file".
    """


class HardwareConfigError(UserInputError):
    """A hardware description (YAML or Python) with a missing, unknown or invalid field.

    Example: ``dnnergy.load_hardware("nope")`` raises it: "hardware 'nope' is neither a preset nor a file;
    presets: eyeriss, eyeriss_v2, horowitz45".
    """

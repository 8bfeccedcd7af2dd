"""dnnergy: where a neural network spends its energy, and how to make it spend less.

The names below are imported on first use (PEP 562), so ``import dnnergy`` and the
``dnnergy --help`` command stay cheap: torch, scipy and the rest load only when a name
that needs them is touched (``dnnergy.trace``, ``dnnergy.estimate``, ``dnnergy.run``...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Exported name -> the submodule that defines it (relative to this package).
_EXPORTS = {
    "trace": ".workload",
    "from_onnx": ".workload",
    "estimate": ".energy",
    "profile": ".energy",
    "EnergyReport": ".energy",
    "Hardware": ".hardware",
    "load_hardware": ".hardware",
    "list_presets": ".hardware",
    "list_dataflows": ".energy",
    "Workload": ".workload",
    "Layer": ".workload",
    "OpKind": ".workload",
    "Datum": ".workload",
    "TensorStats": ".workload",
    "UnsupportedOp": ".workload",
    "register_op": ".workload",
    "list_ops": ".workload",
    "CompressionContext": ".compress",
    "Record": ".compress",
    "Result": ".compress",
    "run": ".compress",
    "register_method": ".compress",
    "list_methods": ".compress",
    "get_method": ".compress",
    "save": ".compress.artifact",
    "load": ".compress.artifact",
    "Loaded": ".compress.artifact",
    "DnnergyError": ".errors",
    "UserInputError": ".errors",
    "TraceError": ".errors",
    "UnsupportedOpError": ".errors",
    "OnnxImportError": ".errors",
    "HardwareConfigError": ".errors",
}

# Subpackages reachable as attributes (``dnnergy.compress.run``) without an explicit import.
_SUBMODULES = frozenset({"catalog", "cli", "coding", "compress", "data", "energy", "errors", "explore", "hardware", "io",
                         "metrics", "registry", "report", "train", "workload", "zoo"})

__all__ = [
    "trace",
    "from_onnx",
    "estimate",
    "profile",
    "EnergyReport",
    "Hardware",
    "load_hardware",
    "list_presets",
    "list_dataflows",
    "Workload",
    "Layer",
    "OpKind",
    "Datum",
    "TensorStats",
    "UnsupportedOp",
    "register_op",
    "list_ops",
    "CompressionContext",
    "Record",
    "Result",
    "run",
    "register_method",
    "list_methods",
    "get_method",
    "save",
    "load",
    "Loaded",
    "DnnergyError",
    "UserInputError",
    "TraceError",
    "UnsupportedOpError",
    "OnnxImportError",
    "HardwareConfigError",
]


def __getattr__(name: str) -> Any:
    """Import the submodule behind ``name`` on first use and cache the value here."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


if TYPE_CHECKING:  # static tools see the eager imports
    from .compress import CompressionContext, Record, Result, get_method, list_methods, register_method, run
    from .compress.artifact import Loaded, load, save
    from .energy import EnergyReport, estimate, list_dataflows, profile
    from .errors import DnnergyError, HardwareConfigError, OnnxImportError, TraceError, UnsupportedOpError, UserInputError
    from .hardware import Hardware, list_presets, load_hardware
    from .workload import Datum, Layer, OpKind, TensorStats, UnsupportedOp, Workload, from_onnx, list_ops, register_op, trace

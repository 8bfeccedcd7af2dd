"""dnnergy: where a neural network spends its energy, and how to make it spend less."""

__version__ = "0.1.0"

from .errors import DnnergyError, HardwareConfigError, OnnxImportError, TraceError, UnsupportedOpError, UserInputError
from .energy import EnergyReport, estimate, list_dataflows, profile
from .hardware import Hardware, list_presets, load_hardware
from .workload import Datum, Layer, OpKind, TensorStats, UnsupportedOp, Workload, from_onnx, list_ops, register_op, trace
from .compress import CompressionContext, Record, Result, get_method, list_methods, register_method, run
from .compress.artifact import Loaded, load, save
from . import explore  # noqa: F401  registers the search-driven methods (eliminate)

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

"""Workload records (one per compute op) and the front ends that build them."""

from .layer import MAC_KINDS, Datum, Layer, OpKind, TensorStats
from .onnx_import import from_onnx
from .ops import list_ops, register_op
from .tracer import trace
from .workload import UnsupportedOp, Workload

__all__ = ["Layer", "OpKind", "Datum", "TensorStats", "MAC_KINDS", "Workload", "UnsupportedOp", "trace", "from_onnx", "register_op", "list_ops"]

"""Turn the MODEL argument of the CLI into a workload or a model: zoo name, ONNX file, or factory path."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..errors import UserInputError

__all__ = ["load_model", "load_workload", "parse_shape", "parse_fractions"]

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` or ``"1x3x224x224"`` -> ``(1, 3, 224, 224)``."""
    if text is None:
        return None
    parts = re.split(r"[,x ]+", text.strip())
    try:
        shape = tuple(int(p) for p in parts if p)
    except ValueError:
        raise UserInputError(f"input shape must be integers such as 1,3,224,224 (got {text!r})") from None
    if not shape or any(d < 1 for d in shape):
        raise UserInputError(f"input shape must be positive integers such as 1,3,224,224 (got {text!r})")
    return shape


def parse_fractions(text: str, option: str) -> list[float]:
    """``"0.5,0.75,0.9"`` -> ``[0.5, 0.75, 0.9]``; each value must lie in [0, 1]."""
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        values = []
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise UserInputError(f"{option} takes fractions in [0, 1] such as 0.5,0.75,0.9 (got {text!r})")
    return values


def load_model(spec: str, input_shape: Sequence[int] | None = None, batch: int | None = None) -> tuple[nn.Module, tuple[int, ...], str]:
    """A PyTorch model, its example input shape and a display name from a zoo name or ``module.path:factory``.

    The model is built under ``torch.manual_seed(0)`` (the global RNG is restored), so its
    initial weights, and anything trained from them, are the same in every run.
    """
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _build(spec, input_shape, batch)


def _build(spec: str, input_shape: Sequence[int] | None, batch: int | None) -> tuple[nn.Module, tuple[int, ...], str]:
    from .. import zoo

    if spec in zoo.list_models():
        info = zoo.model_info(spec)
        shape = tuple(input_shape or info.input_shape)
        model = zoo.create_model(spec)
    elif _FACTORY.match(spec):
        module_name, attr = spec.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UserInputError(f"cannot import module {module_name!r} from {spec!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if factory is None:
            raise UserInputError(f"module {module_name!r} has no attribute {attr!r} (from {spec!r})")
        model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
        if not isinstance(model, nn.Module):
            raise UserInputError(f"{spec!r} must give a torch.nn.Module (got {type(model).__name__})")
        shape = tuple(input_shape or getattr(model, "input_shape", None) or getattr(factory, "input_shape", None) or ())
        if not shape:
            raise UserInputError(f"{spec!r}: give the example input shape with --input-shape, e.g. 1,3,224,224")
    else:
        raise _unknown(spec)
    if batch is not None:
        shape = (batch, *shape[1:])
    return model, shape, spec


def load_workload(spec: str, input_shape: Sequence[int] | None = None, batch: int | None = None, measure_input: Any = None):
    """A :class:`~dnnergy.workload.Workload` from any MODEL spec (ONNX files are read directly)."""
    from ..workload import trace

    if spec.lower().endswith(".onnx"):
        from ..workload.onnx_import import from_onnx

        path = Path(spec)
        if not path.is_file():
            raise UserInputError(f"file not found: {spec}")
        return from_onnx(path, input_shapes=[tuple(input_shape)] if input_shape else None, batch=batch)
    model, shape, name = load_model(spec, input_shape, batch)
    if measure_input is not None:
        return trace(model, measure_input, name=name, measure=True)
    return trace(model, shape, name=name)


def _unknown(spec: str) -> UserInputError:
    import difflib

    from .. import zoo

    if spec.endswith((".pt", ".pth", ".ckpt")):
        return UserInputError(f"{spec!r}: checkpoints need their architecture; pass module.path:factory or export to ONNX")
    close = difflib.get_close_matches(spec, zoo.list_models(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UserInputError(
        f"unknown model {spec!r}{hint}: expected a zoo name (see `dnnergy zoo`), a .onnx file, or module.path:factory"
    )

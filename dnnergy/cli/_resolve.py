"""Turn the MODEL argument of the CLI into a workload or a model: zoo name, factory path, ONNX file or saved dnnergy model."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..errors import UserInputError

__all__ = ["Resolved", "load_model", "load_workload", "parse_shape", "parse_fractions", "is_saved_model"]

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


@dataclass(frozen=True, eq=False)
class Resolved:
    """A model from the MODEL argument: the module, its example input shape, a display name, and whether
    its weights are trained already (a saved dnnergy model) or freshly initialised."""

    model: nn.Module
    shape: tuple[int, ...]
    name: str
    trained: bool = False


def is_saved_model(spec: str) -> bool:
    """True when ``spec`` names a file that starts like a dnnergy container."""
    from ..io import MAGIC

    path = Path(spec)
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def load_model(spec: str, input_shape: Sequence[int] | None = None, batch: int | None = None) -> Resolved:
    """A PyTorch model from a zoo name, ``module.path:factory`` or a saved ``.dnnergy`` model, with its input shape.

    Fresh models are built under ``torch.manual_seed(0)`` (the global RNG is restored), so
    their initial weights, and anything trained from them, are the same in every run. A
    saved model is rebuilt by :func:`dnnergy.load`, weights and all.
    """
    import torch

    if is_saved_model(spec):
        from ..compress.artifact import load

        loaded = load(spec)
        shape = tuple(input_shape or loaded.input_shape or ())
        if not shape:
            raise UserInputError(f"{spec}: the file records no input shape; give one with --input-shape, e.g. 1,1,28,28")
        resolved = Resolved(loaded.model, shape, Path(spec).stem, trained=True)
    else:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            resolved = _build(spec, input_shape)
    if batch is not None:
        return Resolved(resolved.model, (batch, *resolved.shape[1:]), resolved.name, resolved.trained)
    return resolved


def _build(spec: str, input_shape: Sequence[int] | None) -> Resolved:
    from .. import zoo

    if spec in zoo.list_models():
        shape = tuple(input_shape or zoo.model_info(spec).input_shape)
        model = zoo.create_model(spec)  # records its architecture; needs no dnnergy.compress (import time)
    elif _FACTORY.match(spec):
        from ..compress.artifact import build_architecture

        module_name, attr = spec.split(":")
        importable_from_cwd()
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UserInputError(f"cannot import module {module_name!r} from {spec!r}: {exc}") from None
        factory = getattr(module, attr, None)
        if factory is None:
            raise UserInputError(f"module {module_name!r} has no attribute {attr!r} (from {spec!r})")
        model = build_architecture(spec)
        shape = tuple(input_shape or getattr(model, "input_shape", None) or getattr(factory, "input_shape", None) or ())
        if not shape:
            raise UserInputError(f"{spec!r}: give the example input shape with --input-shape, e.g. 1,3,224,224")
    else:
        raise _unknown(spec)
    return Resolved(model, shape, spec)


def importable_from_cwd() -> None:
    """Put the current directory on ``sys.path``, as ``python -m`` does, so ``mypkg.models:build`` typed in
    the folder holding ``mypkg`` imports (only for MODEL arguments, never for references read from files)."""
    import os
    import sys

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def check_model_spec(spec: str) -> None:
    """Refuse, before anything is built or traced, a MODEL spec that :func:`load_workload` would refuse for its kind:
    one that is not a zoo name, an existing ``.onnx`` or saved model file, or of the form ``module.path:factory``
    (whose module is imported only when the model is built). Example: ``check_model_spec("alexnt")`` raises
    ``unknown model 'alexnt' (did you mean alexnet, ...)``; ``check_model_spec("gone.onnx")`` raises ``file not found: gone.onnx``."""
    from .. import zoo

    if spec.lower().endswith(".onnx"):
        if not Path(spec).is_file():
            raise UserInputError(f"file not found: {spec}")
    elif not (spec in zoo.list_models() or _FACTORY.match(spec) or is_saved_model(spec)):
        raise _unknown(spec)


def load_workload(spec: str, input_shape: Sequence[int] | None = None, batch: int | None = None, measure_input: Any = None):
    """A :class:`~dnnergy.workload.Workload` from any MODEL spec (ONNX files are read directly)."""
    from ..workload import trace

    if spec.lower().endswith(".onnx"):
        from ..workload.onnx_import import from_onnx

        check_model_spec(spec)
        return from_onnx(Path(spec), input_shapes=[tuple(input_shape)] if input_shape else None, batch=batch)
    resolved = load_model(spec, input_shape, batch)
    if measure_input is not None:
        return trace(resolved.model, measure_input, name=resolved.name, measure=True)
    return trace(resolved.model, resolved.shape, name=resolved.name, compute=_compute_mode(spec, resolved))


#: MACs up to which one command traces with a real forward (10 G: about half a second on one core) rather
#: than shapes first: the first shapes-only trace of a process runs torch's meta kernels, which import
#: torch._dynamo and sympy (about one more bare ``import torch``). The records are the same either way.
REAL_FORWARD_MACS = 10**10


def _compute_mode(spec: str, resolved: Resolved) -> bool | None:
    """``compute=`` for :func:`~dnnergy.workload.trace`: True (a real forward) when the forward is small, else None.

    The MACs are a zoo model's published count scaled by the input's elements, or else
    parameters x input elements, a bound for convolutions and matrix products.
    """
    from math import prod

    from .. import zoo

    numel = prod(resolved.shape)
    macs = sum(p.numel() for p in resolved.model.parameters()) * numel
    if spec in zoo.list_models() and zoo.model_info(spec).published.get("macs"):
        info = zoo.model_info(spec)
        macs = min(macs, info.published["macs"] * numel / prod(info.input_shape[1:]))
    return True if macs <= REAL_FORWARD_MACS else None


def _unknown(spec: str) -> UserInputError:
    import difflib

    from .. import zoo

    if spec.endswith((".pt", ".pth", ".ckpt", ".dnnergy")):
        if Path(spec).is_file():
            return UserInputError(f"{spec!r}: not a dnnergy model file; a PyTorch checkpoint needs its architecture: pass "
                                  "module.path:factory with --weights, or export to ONNX")
        return UserInputError(f"file not found: {spec}")
    close = difflib.get_close_matches(spec, zoo.list_models(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UserInputError(
        f"unknown model {spec!r}{hint}: expected a zoo name (see `dnnergy zoo`), a .onnx file, a saved .dnnergy model, "
        "or module.path:factory"
    )


def check_energy_options(hardware: str, dataflow: str) -> None:
    """Refuse an unknown ``--hardware`` or ``--dataflow`` before anything is loaded or trained."""
    from ..energy import get_dataflow
    from ..hardware import load_hardware

    load_hardware(hardware)
    get_dataflow(dataflow)

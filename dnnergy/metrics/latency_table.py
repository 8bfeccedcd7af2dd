"""Measured latency from a per-layer lookup table: NetAdapt's "empirical measurements" (Yang et al., ECCV 2018, Sec. 3.4).

A model's latency is predicted as the sum of its layers' latencies, each read from a
table keyed by the layer's configuration (module type and hyper-parameters, input
shapes and dtype). A configuration missing from the table is timed once on this
machine (``warmup`` untimed calls, then the median of ``repeats`` timed ones, with
:func:`~dnnergy.metrics.latency.measure_latency`) and stored. The table lives in one
JSON file per machine (CPU, torch version, thread count) under the dnnergy cache
directory (``$DNNERGY_CACHE_DIR/latency/``), written atomically, so a second run reads
every layer it has seen before instead of timing it again.

"Layers" are the leaf modules a forward pass calls (Conv, Linear, BatchNorm, ReLU,
pooling, Flatten, ...). NB: work done by functional calls inside a parent module's
``forward`` (``torch.flatten``, ``x + y``) and Python overhead between calls are not
in the table; :meth:`LatencyTable.check` reports how far the prediction is from the
measured whole-model latency. Example::

    table = LatencyTable((1, 1, 28, 28))
    table(model)                   # predicted seconds (times unseen layers, saves the table)
    table.check(model).error       # (predicted - measured) / measured
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import UserInputError
from ..workload.tracer import example_inputs
from .latency import measure_latency, model_latency

__all__ = ["LatencyTable", "LatencyCheck", "default_table_path", "layer_key"]

_FORMAT = 1


def _machine() -> dict[str, Any]:
    """What a timing depends on besides the layer: this CPU, the torch build and its thread count."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def default_table_path() -> Path:
    """``<dnnergy cache>/latency/<machine digest>.json``: one table per CPU, torch version and thread count."""
    from ..train.pretrained import cache_dir

    digest = hashlib.sha256(json.dumps(_machine(), sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir().parent / "latency" / f"{digest}.json"


def layer_key(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> str:
    """The table key of one layer call: class, hyper-parameters (``extra_repr``), input shapes and dtypes.

    Example: ``Linear(in_features=4, out_features=2, bias=True) <- float32[1, 4]`` for
    ``nn.Linear(4, 2)`` on a ``(1, 4)`` input (the class path is spelled out).
    """
    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    shapes = ", ".join(f"{str(t.dtype).removeprefix('torch.')}{list(t.shape)}" for t in inputs)
    return f"{kind}({module.extra_repr()}) <- {shapes}"


class LatencyCheck(NamedTuple):
    """The table's prediction against the measured whole-model latency (seconds; ``error`` a signed fraction).

    Example: ``LatencyCheck(predicted_s=2.4e-05, measured_s=2.0e-05).error`` is 0.2 (20 % too much).
    """

    predicted_s: float
    measured_s: float

    @property
    def error(self) -> float:
        """``(predicted - measured) / measured``: -0.1 means the table predicts 10 % too little."""
        return (self.predicted_s - self.measured_s) / self.measured_s


def _leaf_calls(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]]:
    """Every leaf-module call of one eval-mode forward pass on ``inputs``: (path, module, tensor inputs), in order."""
    calls: list[tuple[str, nn.Module, tuple[torch.Tensor, ...]]] = []
    handles = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:  # a leaf (the model itself when it has no children)
            def hook(mod, args, _name=name):
                calls.append((_name, mod, tuple(a.detach().clone() for a in args if isinstance(a, torch.Tensor))))
            handles.append(module.register_forward_pre_hook(hook))
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    if not calls:
        raise UserInputError(f"{type(model).__name__}: no module ran in its forward pass; the latency table times modules")
    return calls


class LatencyTable:
    """A ``model -> seconds`` objective predicted from a per-layer latency table (unit ``"s"``).

    ``example_input`` is the batch (or shape) whose latency is predicted (batch 1 for a
    phone-like latency); ``path`` the table file (default :func:`default_table_path`);
    ``repeats``/``warmup`` how each unseen layer is timed. :attr:`timed` counts the
    layers this object had to time (0 when the cache had them all). Pickles with its
    entries, so workers read the table without timing. All latencies are in seconds.

    Example (timings vary by machine; tens of microseconds here)::

        table = LatencyTable((1, 4), "latency.json", repeats=3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        table(model)                       # 2.4e-05: the sum of the three layers' entries
        table.by_module(model)             # {'0': 1.0e-05, '1': 5.6e-06, '2': 8.1e-06}
        table.layers(model)[1][1]          # 'torch.nn.modules.activation.ReLU() <- float32[1, 8]'
        table.layer_latency(model[0], (torch.zeros(1, 4),))   # 1.0e-05, the stored entry
        table.check(model)                 # LatencyCheck(predicted_s=2.4e-05, measured_s=2.4e-05), error 0.015
        table.save()                       # Path('latency.json')
    """

    unit = "s"

    def __init__(self, example_input: Any, path: str | os.PathLike | None = None, *, repeats: int = 20, warmup: int = 5):
        if example_input is None:
            raise UserInputError("LatencyTable: example_input is required (a batch, or a shape such as (1, 1, 28, 28))")
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1 \
                or isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise UserInputError(f"LatencyTable: repeats must be an int >= 1 and warmup an int >= 0 (got {repeats!r}, {warmup!r})")
        self.inputs = example_inputs(example_input)
        self.path = Path(path) if path is not None else default_table_path()
        self.repeats, self.warmup = repeats, warmup
        self.entries: dict[str, float] = self._read()
        self.timed = 0

    def _read(self) -> dict[str, float]:
        if not self.path.exists():
            return {}
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
            if content.get("format") != _FORMAT:
                return {}  # another layout: time again rather than misread
            entries = {str(k): float(v) for k, v in content["entries"].items()}
            bad = next((k for k, v in entries.items() if not 0 <= v < float("inf")), None)  # NaN fails both
            if bad is not None:
                raise ValueError(f"entry {bad!r:.80} is {entries[bad]} seconds")
            return entries
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserInputError(f"{self.path}: not a dnnergy latency table ({exc}); delete it to time the layers again") from None

    def save(self) -> Path:
        """Write the table (entries on disk from other runs kept, this object's added) atomically."""
        from ..io import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**self._read(), **self.entries}
        text = json.dumps({"format": _FORMAT, "machine": _machine(), "entries": dict(sorted(merged.items()))}, indent=1)
        return atomic_write(self.path, text)

    def layer_latency(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
        """Seconds of one call of ``module`` on ``inputs``: the table's entry, or timed now (and stored)."""
        key = layer_key(module, inputs)
        if key not in self.entries:
            training = module.training
            module.eval()
            try:
                self.entries[key] = measure_latency(module, *inputs, repeats=self.repeats, warmup=self.warmup)
            finally:
                module.train(training)
            self.timed += 1
        return self.entries[key]

    def layers(self, model: nn.Module) -> list[tuple[str, str, float]]:
        """``(module path, table key, seconds)`` of every leaf-module call of ``model`` on the example, in order.
        Saves the table when a layer had to be timed."""
        before = self.timed
        rows = [(name, layer_key(module, inputs), self.layer_latency(module, inputs))
                for name, module, inputs in _leaf_calls(model, self.inputs)]
        if self.timed > before:
            self.save()
        return rows

    def by_module(self, model: nn.Module) -> dict[str, float]:
        """Predicted seconds per module path (a module called twice counts twice)."""
        out: dict[str, float] = {}
        for name, _key, seconds in self.layers(model):
            out[name] = out.get(name, 0.0) + seconds
        return out

    def __call__(self, model: nn.Module) -> float:
        """Predicted seconds of one forward pass of ``model`` on the example: the sum of its layers' entries."""
        return sum(seconds for _name, _key, seconds in self.layers(model))

    def check(self, model: nn.Module, *, repeats: int | None = None) -> LatencyCheck:
        """The prediction next to the measured median of ``repeats`` whole forward passes (default: the table's)."""
        predicted = self(model)
        measured = model_latency(model, self.inputs, repeats=repeats or self.repeats, warmup=self.warmup)
        return LatencyCheck(predicted, measured)

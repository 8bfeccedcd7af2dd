"""``Workload``: the ordered layer records of one network plus what could not be counted."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Iterator

from .layer import Layer, OpKind

__all__ = ["UnsupportedOp", "Workload"]


@dataclass(frozen=True, slots=True)
class UnsupportedOp:
    """An op dnnergy saw but cannot account for.

    ``macs`` is the multiply-accumulate count when a shape formula knows it (for example
    a 3-D convolution, which has no dataflow model) and ``None`` when unknown.

    Example: tracing ``nn.Sequential(nn.Conv3d(1, 1, 1), nn.Flatten(), nn.Linear(8, 1))`` on
    ``(1, 1, 2, 2, 2)`` lists ``UnsupportedOp(op='aten.convolution (3-D convolution)', count=1,
    modules=('0',), macs=8)``; its ``Workload.unsupported_share()`` is
    ``{'aten.convolution (3-D convolution)': 0.5}`` (8 of the 16 MACs).
    """

    op: str
    count: int
    modules: tuple[str, ...] = ()
    macs: int | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """The compute ops of a network in execution order.

    ``layers`` are :class:`Layer` records; ``unsupported`` lists ops that were seen but
    not counted (never silently dropped); ``ignored`` counts ops known to cost nothing
    (views, reshapes, tensor creation) by op name. ``input_shapes`` are the example
    input shapes the workload was traced with. ``distinct_params`` is the number of
    learned parameters the ops read, each counted once (a shared or tied weight read by
    two layers counts once here and once per layer in ``Layer.params``).
    ``traced_with`` is how :func:`~dnnergy.trace` ran the forward: ``"shapes"`` (meta
    tensors, no arithmetic) or ``"forward"`` (real values); empty for other front ends.
    ``trace_note`` says why a shapes-only pass fell back to a real forward (empty if none did).
    Counts are for the whole traced batch; one MAC is one multiply + one add.

    Example (a 3x3 conv, 2 filters, on a 4x4 image: 2 x 2x2 outputs x 9 = 72 MACs; an 8 -> 3
    linear: 24 MACs):

    >>> import dnnergy, torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))
    >>> workload = dnnergy.trace(net, (1, 1, 4, 4))
    >>> workload.macs, workload.weights, workload.params, workload.batch  # params: 18 + 2 + 24 + 3
    (96, 42, 47, 1)
    >>> [layer.name for layer in workload.mac_layers()], [l.name for l in workload.of_kind(dnnergy.OpKind.CONV)]
    (['0', '3'], ['0'])
    >>> workload.replace_layers({"0": {"w_density": 0.5}})["0"].w_density, workload.with_all(w_bits=8)["3"].w_bits
    (0.5, 8)
    >>> workload.totals()
    {'layers': 3, 'macs': 96, 'params': 47, 'weights': 42, 'ifmap': 32, 'ofmap': 19}
    >>> workload.to_frame().shape[0], len(workload.to_records()), workload.unsupported_macs
    (3, 3, 0)
    >>> import json; json.loads(workload.to_json())["totals"]["macs"]
    96
    """

    layers: tuple[Layer, ...]
    name: str = ""
    input_shapes: tuple[tuple[int, ...], ...] = ()
    unsupported: tuple[UnsupportedOp, ...] = ()
    ignored: tuple[tuple[str, int], ...] = ()
    source: str = "torch"
    distinct_params: int | None = None
    traced_with: str = ""
    trace_note: str = ""

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"Workload {self.name!r}: layer names must be unique (repeated: {dupes})")

    # -- container protocol ---------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, key: int | str) -> Layer:
        if isinstance(key, str):
            for layer in self.layers:
                if layer.name == key:
                    return layer
            raise KeyError(f"Workload {self.name!r} has no layer {key!r}")
        return self.layers[key]

    def __str__(self) -> str:
        """A compact text table (:func:`dnnergy.report.display.text`)."""
        from ..report.display import text

        return text(self)

    def _repr_html_(self) -> str:
        """The full HTML table, for Jupyter (:func:`dnnergy.report.display.html`)."""
        from ..report.display import html

        return html(self)

    # -- totals -----------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Total multiply-accumulates, in MACs (one multiply + one add), of the CONV, FC and MATMUL layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        """Learned parameters (weights + biases) read by the ops, each counted once.

        Falls back to the sum over layers when the front end could not tell shared
        parameters apart (``distinct_params`` unset).
        """
        if self.distinct_params is not None:
            return self.distinct_params
        return sum(layer.params for layer in self.layers)

    @property
    def weights(self) -> int:
        """Total filter/matrix weights that are parameters (no biases)."""
        return sum(layer.weights for layer in self.layers if layer.weight_is_param)

    @property
    def unsupported_macs(self) -> int:
        """MACs carried by unsupported ops, where their formula is known."""
        return sum(op.macs or 0 for op in self.unsupported)

    def unsupported_share(self) -> dict[str, float | None]:
        """Share of all MACs (counted + unsupported) carried by each unsupported op, a fraction in [0, 1]; None if
        unknown. Example: see :class:`UnsupportedOp` (a 3-D convolution with 8 of 16 MACs gives 0.5)."""
        total = self.macs + self.unsupported_macs
        return {op.op: (op.macs / total if total else 0.0) if op.macs is not None else None for op in self.unsupported}

    def mac_layers(self) -> tuple[Layer, ...]:
        """The CONV, FC and MATMUL layers."""
        return tuple(layer for layer in self.layers if layer.is_mac)

    def of_kind(self, *kinds: OpKind) -> tuple[Layer, ...]:
        """Layers whose kind is one of ``kinds``."""
        return tuple(layer for layer in self.layers if layer.kind in kinds)

    # -- variants -----------------------------------------------------------------
    def replace_layers(self, updates: dict[str, dict]) -> "Workload":
        """A copy with fields of named layers changed, e.g. ``{"conv1": {"w_density": 0.3}}``."""
        unknown = set(updates) - {layer.name for layer in self.layers}
        if unknown:
            raise KeyError(f"Workload {self.name!r} has no layers {sorted(unknown)}")
        layers = tuple(layer.replace(**updates[layer.name]) if layer.name in updates else layer for layer in self.layers)
        return dataclasses.replace(self, layers=layers)

    def with_all(self, **changes) -> "Workload":
        """A copy with the same field change applied to every layer (e.g. ``w_bits=8``)."""
        return dataclasses.replace(self, layers=tuple(layer.replace(**changes) for layer in self.layers))

    @property
    def batch(self) -> int:
        """Batch size of the first example input (1 if unknown)."""
        return self.input_shapes[0][0] if self.input_shapes and self.input_shapes[0] else 1

    # -- plain data -----------------------------------------------------------------
    def to_records(self) -> list[dict]:
        """One flat dict per layer."""
        return [layer.to_dict() for layer in self.layers]

    def to_frame(self):
        """A pandas DataFrame with one row per layer."""
        import pandas as pd

        return pd.DataFrame.from_records(self.to_records())

    def totals(self) -> dict:
        """Whole-network counts as plain data."""
        return {
            "layers": len(self.layers),
            "macs": self.macs,
            "params": self.params,
            "weights": self.weights,
            "ifmap": sum(layer.ifmap for layer in self.layers),
            "ofmap": sum(layer.ofmap for layer in self.layers),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """JSON with layers, totals, unsupported and ignored ops."""
        return json.dumps(
            {
                "name": self.name,
                "source": self.source,
                "traced_with": self.traced_with,
                "trace_note": self.trace_note,
                "input_shapes": [list(s) for s in self.input_shapes],
                "totals": self.totals(),
                "layers": self.to_records(),
                "unsupported": [dataclasses.asdict(op) | {"share_of_macs": self.unsupported_share()[op.op]} for op in self.unsupported],
                "ignored": dict(self.ignored),
            },
            indent=indent,
        )

"""The structural edits a compressed model went through, as plain data that rebuilds it.

Structured methods change the architecture: channel and neuron removal
(:class:`~dnnergy.compress.removal.ChannelSurgeon`), input-feature elimination, swapping a
module for another (a ReLU that also prunes small activations; later, a layer replaced
by its low-rank factors). Each change is appended to the model's :class:`EditLog`
(``model.dnnergy_edits``) as an :class:`Edit`, like Torch-Pruning's pruning history.
:func:`replay` applies a log to a fresh model of the original architecture, after which
the compressed ``state_dict`` loads strictly: that is how :func:`dnnergy.load` rebuilds a
model without pickling modules.

Edit kinds:

* ``remove_channels``: ``indices`` (numbered as they are before this edit) of the output
  channels of ``module`` and of every layer coupled to them (Torch-Pruning's dependency
  graph, traced on the log's example inputs).
* ``remove_inputs``: input features ``indices`` of the Linear ``module`` that reads the
  flattened model input (it becomes an ``InputSubsetLinear``).
* ``replace_module``: ``module`` becomes ``kind(**kwargs)``, ``kind`` registered with
  :func:`register_module`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ..errors import UserInputError
from ..registry import Registry
from .record import plain

__all__ = ["Edit", "EditLog", "EDITS_ATTRIBUTE", "MODULES", "register_module", "edit_log", "replace_module", "replay"]

#: Name of the model attribute that holds its :class:`EditLog`.
EDITS_ATTRIBUTE = "dnnergy_edits"

#: Module factories that ``replace_module`` edits may name (``kind(**kwargs) -> nn.Module``).
MODULES: Registry[Callable[..., nn.Module]] = Registry("replaceable module")

_KINDS = ("remove_channels", "remove_inputs", "replace_module")


def register_module(kind: str, *, override: bool = False):
    """Decorator: let ``replace_module`` edits rebuild modules with this factory (a class or function).

    Example: ``@register_module("svd_linear")`` over the low-rank layer class; ``MODULES.list()`` then
    includes ``"svd_linear"`` and :func:`replay` rebuilds it from ``{"kind": "svd_linear", ...}`` edits.
    """
    return MODULES.register(kind, override=override)


@dataclass(frozen=True, slots=True)
class Edit:
    """One structural change: ``kind`` (see the module docstring), the ``module`` path, plain ``data``."""

    kind: str
    module: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"Edit: kind must be one of {', '.join(_KINDS)} (got {self.kind!r})")
        if not isinstance(self.module, str) or not self.module:
            raise ValueError(f"Edit: module must be a non-empty module path (got {self.module!r})")
        data = plain(self.data, f"Edit {self.module!r}")
        if self.kind != "replace_module":
            indices = data.get("indices")
            if not indices or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indices):
                raise ValueError(f"Edit {self.module!r}: indices must be a non-empty list of ints >= 0 (got {indices!r})")
            if len(set(indices)) != len(indices):
                raise ValueError(f"Edit {self.module!r}: indices must be unique (got {indices!r})")
        elif not isinstance(data.get("kind"), str) or not isinstance(data.get("kwargs", {}), dict):
            raise ValueError(f"Edit {self.module!r}: replace_module needs data {{'kind': str, 'kwargs': dict}} (got {data!r})")
        object.__setattr__(self, "data", data)


@dataclass
class EditLog:
    """The edits, in order, and the example inputs (shapes, dtypes) the dependency graph is traced with.

    The inputs are known once a channel removal happened; a log of module swaps alone
    may have none (``input_shapes == ()``).

    Example (remove 3 of the 16 hidden units, then rebuild the pruned architecture from plain data):

    >>> import torch, torch.nn as nn
    >>> from dnnergy.compress.removal import prune_channels
    >>> from dnnergy.compress.edits import edit_log
    >>> def mlp(): return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    >>> pruned = prune_channels(mlp(), torch.zeros(1, 1, 8, 8), {"1": [0, 1, 2]})
    >>> log = edit_log(pruned)
    >>> log.removed, [tuple(t.shape) for t in log.example()]
    ({'1': 3}, [(1, 1, 8, 8)])
    >>> log.to_dict()["edits"]
    [{'kind': 'remove_channels', 'module': '1', 'data': {'indices': [0, 1, 2]}}]
    >>> rebuilt = replay(mlp(), EditLog.from_dict(log.to_dict()))
    >>> rebuilt[1].out_features, rebuilt.load_state_dict(pruned.state_dict()).missing_keys
    (13, [])
    """

    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_dtypes: tuple[str, ...] = ()
    edits: list[Edit] = field(default_factory=list)

    def __post_init__(self) -> None:
        shapes = tuple(tuple(s) for s in self.input_shapes)
        if not all(s and all(isinstance(d, int) and d > 0 for d in s) for s in shapes):
            raise ValueError(f"EditLog: input_shapes must be non-empty tuples of positive ints (got {self.input_shapes!r})")
        dtypes = tuple(self.input_dtypes) or ("float32",) * len(shapes)
        if len(dtypes) != len(shapes) or not all(isinstance(getattr(torch, d, None), torch.dtype) for d in dtypes):
            raise ValueError(f"EditLog: input_dtypes must name one torch dtype per input (got {self.input_dtypes!r})")
        self.input_shapes, self.input_dtypes, self.edits = shapes, dtypes, list(self.edits)

    def example(self) -> tuple[torch.Tensor, ...]:
        """Zero tensors of the recorded input shapes and dtypes (to trace the dependency graph)."""
        return tuple(torch.zeros(s, dtype=getattr(torch, d)) for s, d in zip(self.input_shapes, self.input_dtypes))

    @property
    def removed(self) -> dict[str, int]:
        """Output channels (or input features) removed per module, summed over edits."""
        out: dict[str, int] = {}
        for edit in self.edits:
            if edit.kind != "replace_module":
                out[edit.module] = out.get(edit.module, 0) + len(edit.data["indices"])
        return out

    def to_dict(self) -> dict:
        """Plain data that :meth:`from_dict` reads back."""
        return {"input_shapes": [list(s) for s in self.input_shapes], "input_dtypes": list(self.input_dtypes),
                "edits": [{"kind": e.kind, "module": e.module, "data": dict(e.data)} for e in self.edits]}

    @classmethod
    def from_dict(cls, data: Mapping) -> "EditLog":
        """Inverse of :meth:`to_dict`; a malformed log raises :class:`UserInputError`."""
        try:
            return cls(tuple(tuple(s) for s in data["input_shapes"]), tuple(data.get("input_dtypes", ())),
                       [Edit(e["kind"], e["module"], e.get("data", {})) for e in data["edits"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"EditLog: invalid edit log ({exc})") from exc


def edit_log(model: nn.Module, example: Sequence[torch.Tensor] | None = None, *, create: bool = False) -> EditLog | None:
    """``model``'s edit log, or ``None``; with ``create`` a missing log is attached. ``example`` (input
    tensors) records the example input shapes and dtypes when the log has none yet."""
    log = getattr(model, EDITS_ATTRIBUTE, None)
    if log is None and (create or example is not None):
        log = EditLog()
        object.__setattr__(model, EDITS_ATTRIBUTE, log)
    if log is not None and example is not None and not log.input_shapes:
        log.input_shapes = tuple(tuple(t.shape) for t in example)
        log.input_dtypes = tuple(str(t.dtype).removeprefix("torch.") for t in example)
    return log


def replace_module(model: nn.Module, path: str, kind: str, **kwargs: Any) -> nn.Module:
    """Put ``MODULES.get(kind)(**kwargs)`` at ``path`` in ``model`` (in place), log it and return the new module.

    ``kwargs`` must be plain data (they are saved). Example: ``replace_module(model,
    "relu", "activation_pruning", threshold=0.1)``.
    """
    factory = MODULES.get(kind)
    parent_path, _, attr = path.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
        getattr(parent, attr)
    except AttributeError as exc:
        raise UserInputError(f"{type(model).__name__}: no module named {path!r} to replace") from exc
    module = factory(**kwargs)
    setattr(parent, attr, module)
    edit_log(model, create=True).edits.append(Edit("replace_module", path, {"kind": kind, "kwargs": kwargs}))
    return module


def replay(model: nn.Module, log: EditLog) -> nn.Module:
    """Apply ``log``'s edits **in place** to a model of the original architecture and return it.

    The weights are whatever ``model`` holds; load the compressed ``state_dict`` afterwards
    (:func:`dnnergy.load` does both). The model gets its own copy of the log.

    Example: see :class:`EditLog` (a 64-16-10 MLP replayed with 3 hidden units removed has
    ``Linear(64, 13)``, and the pruned ``state_dict`` loads strictly).
    """
    from .removal import ChannelSurgeon

    if not isinstance(log, EditLog):
        raise UserInputError(f"replay expects an EditLog (got {type(log).__name__})")
    surgeon = None
    for edit in log.edits:
        if edit.kind == "replace_module":
            replace_module(model, edit.module, edit.data["kind"], **edit.data.get("kwargs", {}))
            surgeon = None  # the graph changed
            continue
        if not log.input_shapes:
            raise UserInputError(f"replay: the edit log removes channels of {edit.module!r} but records no example input")
        surgeon = surgeon or ChannelSurgeon(model, log.example())
        (surgeon.remove_inputs if edit.kind == "remove_inputs" else surgeon.remove)(edit.module, edit.data["indices"])
    object.__setattr__(model, EDITS_ATTRIBUTE, copy.deepcopy(log))
    return model

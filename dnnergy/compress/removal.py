"""Physical removal of channels and neurons, and the plain-data record that replays it.

Structured methods (filter/channel/neuron pruning, neuron elimination) end here: a set of
output channels of named layers is removed for real, so the model gets smaller and
cheaper on any hardware. Coupled layers are found by Torch-Pruning's ``DependencyGraph``
(Fang et al., CVPR 2023): removing output channel ``j`` of a convolution also removes
channel ``j`` of the BatchNorm after it, input channel ``j`` of every consumer, the
matching slices behind ``torch.cat``/``flatten`` and, through a residual ``+`` or a
depthwise convolution, the same channel of every layer coupled to it.

The result is described by a :class:`StructuredRecord`: the example input shapes and an
ordered list of :class:`PruneStep` (root module name, removed output indices), like
Torch-Pruning's ``pruning_history``. A pruned model is saved as that record plus its
``state_dict`` (:func:`save_pruned`) and rebuilt from the *original architecture*
(:func:`replay`, :func:`load_pruned`), never by pickling modules, so checkpoints load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.data import TensorDataset

from ..errors import UserInputError
from ..workload.tracer import example_inputs

__all__ = [
    "PruneStep",
    "StructuredRecord",
    "InputSubsetLinear",
    "Coupled",
    "ChannelGroup",
    "ChannelSurgeon",
    "channel_groups",
    "prune_channels",
    "replay",
    "calibration_inputs",
    "save_pruned",
    "load_pruned",
    "RECORD_FORMAT",
]

#: ``format`` tag of the plain-data record and of checkpoints written by :func:`save_pruned`.
RECORD_FORMAT = "dnnergy.structured/1"

_MAC_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, slots=True)
class PruneStep:
    """Remove output channels ``indices`` (numbered as they are *before* this step) of ``module``.

    With ``inputs=True`` the indices are *input features* of ``module``, a Linear layer
    that reads the model input (flattened) directly: it becomes an
    :class:`InputSubsetLinear` that reads only the kept features.
    """

    module: str
    indices: tuple[int, ...]
    inputs: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.module, str) or not self.module:
            raise ValueError(f"PruneStep: module must be a non-empty module path (got {self.module!r})")
        indices = tuple(self.indices)
        if not indices or not all(isinstance(i, int) and i >= 0 for i in indices):
            raise ValueError(f"PruneStep {self.module!r}: indices must be a non-empty sequence of ints >= 0 (got {self.indices!r})")
        if len(set(indices)) != len(indices):
            raise ValueError(f"PruneStep {self.module!r}: indices must be unique (got {self.indices!r})")
        object.__setattr__(self, "indices", indices)


@dataclass(frozen=True, slots=True)
class StructuredRecord:
    """How a model was pruned structurally: enough plain data to rebuild it from the original.

    ``input_shapes``/``input_dtypes`` describe the example inputs the dependency graph is
    traced with (one per forward argument); ``steps`` are applied in order; ``method``
    and ``info`` say how the channels were chosen (plain numbers and strings only).
    """

    input_shapes: tuple[tuple[int, ...], ...]
    steps: tuple[PruneStep, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    method: str = "manual"
    info: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        shapes = tuple(tuple(s) for s in self.input_shapes)
        if not shapes or not all(s and all(isinstance(d, int) and d > 0 for d in s) for s in shapes):
            raise ValueError(f"StructuredRecord: input_shapes must be non-empty tuples of positive ints (got {self.input_shapes!r})")
        dtypes = tuple(self.input_dtypes) or ("float32",) * len(shapes)
        if len(dtypes) != len(shapes) or not all(isinstance(getattr(torch, d, None), torch.dtype) for d in dtypes):
            raise ValueError(f"StructuredRecord: input_dtypes must name one torch dtype per input (got {self.input_dtypes!r})")
        if not all(isinstance(s, PruneStep) for s in self.steps):
            raise ValueError("StructuredRecord: steps must be PruneStep records")
        object.__setattr__(self, "input_shapes", shapes)
        object.__setattr__(self, "input_dtypes", dtypes)
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "info", tuple((str(k), v) for k, v in dict(self.info).items()))

    @property
    def removed(self) -> dict[str, int]:
        """Output channels removed per root module (summed over steps)."""
        out: dict[str, int] = {}
        for step in self.steps:
            out[step.module] = out.get(step.module, 0) + len(step.indices)
        return out

    def example(self) -> tuple[torch.Tensor, ...]:
        """Zero tensors of the recorded input shapes and dtypes (to trace the dependency graph)."""
        return tuple(torch.zeros(s, dtype=getattr(torch, d)) for s, d in zip(self.input_shapes, self.input_dtypes))

    def to_dict(self) -> dict:
        """Plain data (lists, ints, strings) that :meth:`from_dict` reads back."""
        return {
            "format": RECORD_FORMAT,
            "method": self.method,
            "input_shapes": [list(s) for s in self.input_shapes],
            "input_dtypes": list(self.input_dtypes),
            "steps": [{"module": s.module, "indices": list(s.indices), **({"inputs": True} if s.inputs else {})}
                      for s in self.steps],
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "StructuredRecord":
        """Inverse of :meth:`to_dict`; a wrong format tag or missing field raises :class:`UserInputError`."""
        if not isinstance(data, Mapping) or data.get("format") != RECORD_FORMAT:
            raise UserInputError(f"StructuredRecord: expected a dict with format {RECORD_FORMAT!r} (got {str(data)[:80]})")
        try:
            steps = tuple(PruneStep(s["module"], tuple(s["indices"]), bool(s.get("inputs", False))) for s in data["steps"])
            return cls(tuple(tuple(s) for s in data["input_shapes"]), steps, tuple(data.get("input_dtypes", ())),
                       data.get("method", "manual"), tuple(dict(data.get("info", {})).items()))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"StructuredRecord: invalid record ({exc})") from exc


class InputSubsetLinear(nn.Linear):
    """A Linear layer that reads only the input features ``features`` (indices into the last dimension).

    What input-feature elimination leaves behind: ``Linear(784, n)`` that keeps 200
    pixels becomes ``InputSubsetLinear`` with a 200-column weight and a ``features``
    buffer (saved in the ``state_dict``), so the model still takes the full input.
    """

    def __init__(self, features: torch.Tensor, out_features: int, bias: bool = True, device: Any = None, dtype: Any = None):
        super().__init__(len(features), out_features, bias, device=device, dtype=dtype)
        self.register_buffer("features", torch.as_tensor(features, dtype=torch.long).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.index_select(-1, self.features), self.weight, self.bias)


class Coupled(NamedTuple):
    """One layer touched when a group's channels are removed.

    ``out`` is True when the layer loses output channels (a filter, a BN channel) and
    False when it loses input channels (a consumer); ``indices[i]`` in that layer's own
    numbering corresponds to channel ``roots[i]`` of the group's root.
    """

    name: str
    module: nn.Module
    out: bool
    indices: tuple[int, ...]
    roots: tuple[int, ...]


class ChannelGroup(NamedTuple):
    """The output channels of ``root`` (``size`` of them) and every layer coupled to them."""

    root: str
    size: int
    members: tuple[Coupled, ...]

    def producers(self) -> tuple[Coupled, ...]:
        """Conv/Linear layers that lose output channels (the filters of the group)."""
        return tuple(m for m in self.members if m.out and isinstance(m.module, _MAC_MODULES))

    def consumers(self) -> tuple[Coupled, ...]:
        """Conv/Linear layers that lose input channels."""
        return tuple(m for m in self.members if not m.out and isinstance(m.module, _MAC_MODULES))


@contextmanager
def _eval(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.enable_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def _graph(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tp.DependencyGraph:
    """Torch-Pruning dependency graph of ``model``, traced in eval mode (BN statistics untouched)."""
    with _eval(model):
        try:
            return tp.DependencyGraph().build_dependency(model, example_inputs=list(inputs) if len(inputs) > 1 else inputs[0], verbose=False)
        except (RuntimeError, ValueError, TypeError) as exc:
            shapes = ", ".join(str(tuple(t.shape)) for t in inputs)
            raise UserInputError(f"{type(model).__name__}: cannot trace the dependency graph on input {shapes}: {exc}") from exc


class ChannelSurgeon:
    """A model and its dependency graph: list channel groups, remove channels in place, keep the record.

    ``ChannelSurgeon(model, example)`` works on ``model`` itself (copy it first to keep
    the original). Example::

        surgeon = ChannelSurgeon(copy.deepcopy(model), (1, 784))
        for group in surgeon.groups():
            surgeon.remove(group.root, [0])      # drop channel/neuron 0 of every group
        pruned, record = surgeon.model, surgeon.record("manual")
    """

    def __init__(self, model: nn.Module, example: Any):
        if not isinstance(model, nn.Module):
            raise UserInputError(f"ChannelSurgeon expects a torch.nn.Module (got {type(model).__name__})")
        self.model = model
        self.inputs = example_inputs(example)
        self.graph = _graph(model, self.inputs)
        self.steps: list[PruneStep] = []
        self._names = {m: n for n, m in model.named_modules()}

    def _module(self, name: str) -> nn.Module:
        module = dict(self.model.named_modules()).get(name)
        if not isinstance(module, _MAC_MODULES) or module not in self.graph.module2node:
            raise UserInputError(f"{type(self.model).__name__}: no prunable Conv/Linear layer named {name!r}")
        return module

    def group(self, root: str) -> ChannelGroup:
        """The group of all output channels of layer ``root``."""
        module = self._module(root)
        pruner = self.graph.get_pruner_of_module(module)
        tp_group = self.graph.get_pruning_group(module, pruner.prune_out_channels, list(range(pruner.get_out_channels(module))))
        members = []
        for item in tp_group:
            target = item.dep.target.module
            if target not in self._names:
                continue  # Torch-Pruning's placeholder nodes (add, cat, reshape, relu)
            out = self.graph.is_out_channel_pruning_fn(item.dep.handler)
            members.append(Coupled(self._names[target], target, out, tuple(int(i) for i in item.idxs),
                                   tuple(int(i) for i in item.root_idxs)))
        return ChannelGroup(root, pruner.get_out_channels(module), tuple(members))

    def groups(self, ignore: Sequence[str] = ()) -> list[ChannelGroup]:
        """Every prunable group, rooted at its first Conv/Linear producer, in module order.

        Groups with no Conv/Linear consumer feed the network's outputs and are left out,
        as are groups that touch a module named in ``ignore``.
        """
        unknown = set(ignore) - set(self._names.values())
        if unknown:
            raise UserInputError(f"ignore: no modules named {sorted(unknown)} in {type(self.model).__name__}")
        order = {name: i for i, name in enumerate(self._names.values())}
        groups = []
        for tp_group in self.graph.get_all_groups(root_module_types=_MAC_MODULES):
            group = self.group(self._names[tp_group[0].dep.target.module])
            first = min((m.name for m in group.producers()), key=order.__getitem__, default=group.root)
            if first != group.root:  # root each group at its first producer in module order
                group = self.group(first)
            if group.consumers() and not {m.name for m in group.members} & set(ignore):
                groups.append(group)
        return sorted(groups, key=lambda g: order[g.root])

    def remove(self, root: str, indices: Sequence[int]) -> PruneStep:
        """Physically remove output channels ``indices`` of ``root`` and of every coupled layer (in place)."""
        module = self._module(root)
        pruner = self.graph.get_pruner_of_module(module)
        size = pruner.get_out_channels(module)
        indices = sorted(int(i) for i in indices)
        if len(set(indices)) != len(indices) or any(not 0 <= i < size for i in indices):
            raise UserInputError(f"{root}: channel indices must be unique and in [0, {size}) (got {indices[:10]})")
        if len(indices) >= size:
            raise UserInputError(f"{root}: cannot remove all {size} output channels; keep at least one")
        group = self.graph.get_pruning_group(module, pruner.prune_out_channels, indices)
        if not self.graph.check_pruning_group(group):
            raise UserInputError(f"{root}: removing {len(indices)} channels would empty a coupled layer")
        group.prune(record_history=False)
        step = PruneStep(root, tuple(indices))
        self.steps.append(step)
        return step

    def remove_inputs(self, name: str, indices: Sequence[int]) -> PruneStep:
        """Physically remove input features ``indices`` of Linear layer ``name`` (in place).

        Only for a layer that reads the model input directly (the caller checks): the
        layer becomes an :class:`InputSubsetLinear` over the remaining features.
        """
        module = self._module(name)
        if not isinstance(module, nn.Linear):
            raise UserInputError(f"{name}: only a Linear layer can drop input features (got {type(module).__name__})")
        indices = sorted(int(i) for i in indices)
        if len(set(indices)) != len(indices) or any(not 0 <= i < module.in_features for i in indices) \
                or len(indices) >= module.in_features:
            raise UserInputError(f"{name}: input feature indices must be unique, in [0, {module.in_features}) and leave "
                                 f"at least one (got {len(indices)}: {indices[:10]})")
        keep = torch.ones(module.in_features, dtype=torch.bool)
        keep[indices] = False
        features = module.features[keep] if isinstance(module, InputSubsetLinear) else torch.nonzero(keep).flatten()
        subset = InputSubsetLinear(features, module.out_features, module.bias is not None, module.weight.device, module.weight.dtype)
        with torch.no_grad():
            subset.weight.copy_(module.weight[:, keep])
            if module.bias is not None:
                subset.bias.copy_(module.bias)
        parent, _, attr = name.rpartition(".")
        setattr(self.model.get_submodule(parent), attr, subset)
        self.graph = _graph(self.model, self.inputs)
        self._names = {m: n for n, m in self.model.named_modules()}
        step = PruneStep(name, tuple(indices), inputs=True)
        self.steps.append(step)
        return step

    def record(self, method: str = "manual", info: Mapping[str, Any] | None = None) -> StructuredRecord:
        """The :class:`StructuredRecord` of the removals so far."""
        return StructuredRecord(tuple(tuple(t.shape) for t in self.inputs), tuple(self.steps),
                                tuple(str(t.dtype).removeprefix("torch.") for t in self.inputs), method, tuple((info or {}).items()))


def channel_groups(model: nn.Module, example: Any, ignore: Sequence[str] = ()) -> list[ChannelGroup]:
    """Every prunable group of output channels of a model, rooted at a Conv or Linear layer.

    A group lists the layers that must lose the same channels together (see
    :class:`ChannelGroup`); see :meth:`ChannelSurgeon.groups` for which are left out.
    Example: ``nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))`` has one group,
    rooted at ``"0"`` with size 3, whose consumer is ``"2"``.
    """
    return ChannelSurgeon(model, example).groups(ignore)


def prune_channels(model: nn.Module, example: Any, plan: Mapping[str, Sequence[int]], *, method: str = "manual",
                   info: Mapping[str, Any] | None = None) -> tuple[nn.Module, StructuredRecord]:
    """Physically remove output channels: ``plan`` maps root layer names to the indices to drop.

    Returns a pruned **copy** (the input model is untouched) and its
    :class:`StructuredRecord`. Units: indices count channels of Conv layers or neurons
    (output features) of Linear layers, numbered as in the original model. Example:
    ``{"0": [1]}`` on ``nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))``
    leaves ``Linear(4, 2)`` and ``Linear(2, 2)``, whose outputs equal the original's with
    column 1 of the second weight set to zero.
    """
    surgeon = ChannelSurgeon(copy.deepcopy(model), example)
    for root, indices in plan.items():
        if len(indices):
            surgeon.remove(root, indices)
    return surgeon.model, surgeon.record(method, info)


def replay(model: nn.Module, record: StructuredRecord) -> nn.Module:
    """Apply a record's steps **in place** to a model of the original architecture and return it.

    The weights are whatever ``model`` holds; load the pruned ``state_dict`` afterwards
    (:func:`load_pruned` does both). Like Torch-Pruning's ``load_pruning_history``.
    """
    if not isinstance(record, StructuredRecord):
        raise UserInputError(f"replay expects a StructuredRecord (got {type(record).__name__})")
    surgeon = ChannelSurgeon(model, record.example())
    for step in record.steps:
        (surgeon.remove_inputs if step.inputs else surgeon.remove)(step.module, step.indices)
    return model


def calibration_inputs(data: Any, samples: int | None = None) -> torch.Tensor:
    """The first ``samples`` model inputs of ``data``: an input tensor, ``(inputs, labels)``, a TensorDataset or a Dataset (its train split)."""
    if isinstance(data, torch.Tensor):
        x = data
    elif isinstance(data, TensorDataset):
        x = data.tensors[0]
    elif isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
        x = data[0]
    elif isinstance(getattr(data, "train", None), TensorDataset):  # a dnnergy.data Dataset
        x = data.train.tensors[0]
    else:
        raise UserInputError(f"calibration data must be an input tensor, (inputs, labels), a TensorDataset or a Dataset (got {type(data).__name__})")
    if len(x) == 0:
        raise UserInputError("calibration data is empty")
    return x if samples is None else x[:samples]


def save_pruned(path: str | os.PathLike, model: nn.Module, record: StructuredRecord) -> None:
    """Write ``{"format", "record": plain data, "state_dict"}`` to ``path`` atomically (temp file + ``os.replace``)."""
    payload = {"format": RECORD_FORMAT, "record": record.to_dict(), "state_dict": model.state_dict()}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_pruned(path: str | os.PathLike, model: nn.Module) -> tuple[nn.Module, StructuredRecord]:
    """Rebuild a pruned model from a fresh original-architecture ``model`` and a :func:`save_pruned` file.

    ``model`` (e.g. ``create_model("lenet300")``) is pruned in place by the record and
    then loads the saved weights strictly; the file is read with ``weights_only=True``.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise UserInputError(f"{os.fspath(path)}: cannot read a pruned checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != RECORD_FORMAT:
        raise UserInputError(f"{os.fspath(path)}: not a dnnergy structured checkpoint (format {RECORD_FORMAT!r} expected)")
    record = StructuredRecord.from_dict(payload["record"])
    replay(model, record)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"{os.fspath(path)}: weights do not fit the replayed architecture ({str(exc).splitlines()[0]})") from exc
    return model, record

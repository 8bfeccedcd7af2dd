"""Physical removal of channels and neurons through Torch-Pruning's dependency graph.

Structured methods (filter/channel/neuron pruning, neuron elimination) end here: a set of
output channels of named layers is removed for real, so the model gets smaller and
cheaper on any hardware. Coupled layers are found by Torch-Pruning's ``DependencyGraph``
(Fang et al., CVPR 2023): removing output channel ``j`` of a convolution also removes
channel ``j`` of the BatchNorm after it, input channel ``j`` of every consumer, the
matching slices behind ``torch.cat``/``flatten`` and, through a residual ``+`` or a
depthwise convolution, the same channel of every layer coupled to it.

Every removal is appended to the model's edit log (:mod:`~dnnergy.compress.edits`), from
which :func:`dnnergy.load` rebuilds the smaller model out of the original architecture,
and the model's weight transforms (masks) follow the new shapes.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import torch
import torch_pruning as tp
from torch import nn
from torch.utils.data import TensorDataset

from ..errors import UserInputError
from ..workload.tracer import example_inputs
from .edits import Edit, edit_log
from .transforms import Transforms

__all__ = [
    "InputSubsetLinear",
    "Coupled",
    "ChannelGroup",
    "ChannelSurgeon",
    "channel_groups",
    "prune_channels",
    "calibration_inputs",
]

_MAC_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


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
    the original); every removal is appended to the model's edit log. Example::

        surgeon = ChannelSurgeon(copy.deepcopy(model), (1, 784))
        for group in surgeon.groups():
            surgeon.remove(group.root, [0])      # drop channel/neuron 0 of every group
        pruned = surgeon.model
    """

    def __init__(self, model: nn.Module, example: Any):
        if not isinstance(model, nn.Module):
            raise UserInputError(f"ChannelSurgeon expects a torch.nn.Module (got {type(model).__name__})")
        self.model = model
        self.inputs = example_inputs(example)
        self.graph = _graph(model, self.inputs)
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

    def remove(self, root: str, indices: Sequence[int]) -> Edit:
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
        return self._logged(Edit("remove_channels", root, {"indices": indices}))

    def remove_inputs(self, name: str, indices: Sequence[int]) -> Edit:
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
        return self._logged(Edit("remove_inputs", name, {"indices": indices}))

    @property
    def edits(self) -> list[Edit]:
        """The model's edit log so far (every removal, and any earlier edit of the model)."""
        log = edit_log(self.model)
        return list(log.edits) if log else []

    def _logged(self, edit: Edit) -> Edit:
        edit_log(self.model, tuple(t[:1] for t in self.inputs)).edits.append(edit)
        transforms = Transforms.of(self.model, create=False)
        if transforms is not None:
            transforms.refresh(self.model)
        return edit


def channel_groups(model: nn.Module, example: Any, ignore: Sequence[str] = ()) -> list[ChannelGroup]:
    """Every prunable group of output channels of a model, rooted at a Conv or Linear layer.

    A group lists the layers that must lose the same channels together (see
    :class:`ChannelGroup`); see :meth:`ChannelSurgeon.groups` for which are left out.
    Example: ``nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))`` has one group,
    rooted at ``"0"`` with size 3, whose consumer is ``"2"``.
    """
    return ChannelSurgeon(model, example).groups(ignore)


def prune_channels(model: nn.Module, example: Any, plan: Mapping[str, Sequence[int]]) -> nn.Module:
    """Physically remove output channels: ``plan`` maps root layer names to the indices to drop.

    Returns a pruned **copy** (the input model is untouched) whose edit log lists the
    removals. Units: indices count channels of Conv layers or neurons (output features)
    of Linear layers, numbered as in the original model. Example: ``{"0": [1]}`` on
    ``nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))`` leaves ``Linear(4, 2)``
    and ``Linear(2, 2)``, whose outputs equal the original's with column 1 of the second
    weight set to zero.
    """
    surgeon = ChannelSurgeon(copy.deepcopy(model), example)
    for root, indices in plan.items():
        if len(indices):
            surgeon.remove(root, indices)
    return surgeon.model


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

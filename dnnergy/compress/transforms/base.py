"""Reversible weight transforms and the one set of them a model carries.

A :class:`WeightTransform` changes the values of one parameter in a way that can be
applied, fine-tuned through, made permanent, saved and replayed: a keep mask (pruning),
and later a quantizer, a shared codebook or a low-rank factor. The parameter stays an
``nn.Parameter`` under its own name and holds the *transformed* values, so
:func:`dnnergy.trace`, ``state_dict`` and any optimizer see an ordinary model.

A model's transforms live in one :class:`Transforms` set, stored on the model
(``model.dnnergy_transforms``; :meth:`Transforms.of` finds or creates it), so a chain of
methods (prune, then quantize) keeps every earlier transform in force. The set is a
:class:`~dnnergy.train.TrainHook`: ``fine_tune(model, data, hooks=[Transforms.of(model)])``
re-applies the transforms after every optimizer step. Gradients are filtered by a hook
each transform registers on its parameter, in dnnergy's loop and in the user's own
alike, so no optimizer moves a masked weight (the hooks follow ``copy.deepcopy`` and
pickling of the model).

What a transform means for energy it states as :meth:`WeightTransform.hints` (Layer
fields such as ``w_density`` or ``w_bits``), which the set writes into the module's
``dnnergy_hints`` for the tracer (:mod:`dnnergy.workload.hints`).

A minimal transform (clip every weight to +-1)::

    @register_transform("clip")
    class Clip(WeightTransform):
        def apply(self, param):
            param.clamp_(-1.0, 1.0)

Transforms are applied in the order they were added (mask first, then a quantizer).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import torch
from torch import Tensor, nn

from ...errors import UserInputError
from ...registry import Registry
from ...train import TrainHook
from ...workload.hints import HINTS_ATTRIBUTE

__all__ = ["WeightTransform", "Transforms", "TRANSFORMS", "register_transform", "TRANSFORMS_ATTRIBUTE",
           "Snapshot", "snapshot", "rollback"]

#: Name of the model attribute that holds the model's :class:`Transforms`.
TRANSFORMS_ATTRIBUTE = "dnnergy_transforms"

#: Transform classes by their ``kind``, to rebuild saved transforms.
TRANSFORMS: Registry[type["WeightTransform"]] = Registry("weight transform")


def register_transform(kind: str, *, override: bool = False):
    """Class decorator: register a :class:`WeightTransform` subclass under ``kind`` (its saved name).

    Example: the ``Clip`` transform of this module's docstring; ``Clip.kind == "clip"`` afterwards,
    and :meth:`Transforms.load` rebuilds saved ``"clip"`` records with ``Clip.from_state``.
    """

    def decorate(cls: type[WeightTransform]) -> type[WeightTransform]:
        if not (isinstance(cls, type) and issubclass(cls, WeightTransform)):
            raise TypeError(f"register_transform({kind!r}): expected a WeightTransform subclass (got {cls!r})")
        cls.kind = kind
        return TRANSFORMS.add(kind, cls, override=override)

    return decorate


class WeightTransform(ABC):
    """A reversible change of the values of one parameter (by name in ``model.named_parameters()``).

    Subclasses implement :meth:`apply` (write the transformed values in place; idempotent)
    and may override :meth:`grad` (filter the gradient), :meth:`hints` (what the
    transform implies for the energy model while attached), :meth:`permanent_hints`
    (what stays true once made permanent), :meth:`fit` (adapt to a parameter whose shape
    changed after channel removal), and the saved state (:meth:`state`, :meth:`from_state`).

    Example (:class:`~dnnergy.compress.transforms.Mask`, the simplest transform, on a bare tensor):

    >>> import torch
    >>> from dnnergy.compress import Mask
    >>> mask = Mask("weight", torch.tensor([[True, False, True, False]] * 2))
    >>> weight = torch.ones(2, 4)
    >>> mask.apply(weight); weight.sum().item()  # 4 of 8 entries kept
    4.0
    >>> mask.grad(torch.ones(2, 4)).sum().item(), mask.hints(), mask.permanent_hints()
    (4.0, {'w_density': 0.5}, {})
    >>> params, tensors = mask.state(); Mask.from_state("weight", params, tensors)
    Mask('weight')
    >>> mask.restore(weight, torch.full((2, 4), 2.0)); weight[0].tolist()  # masked entries get their old values
    [1.0, 2.0, 1.0, 2.0]
    >>> mask.fit(torch.tensor([[0.0, 3.0]])); mask.keep.tolist()  # after channel removal: keep the non-zeros
    [[False, True]]
    """

    kind: ClassVar[str] = ""

    def __init__(self, parameter: str):
        if not isinstance(parameter, str) or not parameter:
            raise UserInputError(f"{type(self).__name__}: parameter must be a parameter name such as 'fc1.weight' (got {parameter!r})")
        self.parameter = parameter

    @abstractmethod
    def apply(self, param: Tensor) -> None:
        """Write the transformed values into ``param`` in place (called under ``no_grad``)."""

    def grad(self, grad: Tensor) -> Tensor:
        """The gradient the optimizer should see (default: unchanged)."""
        return grad

    def hints(self) -> dict[str, Any]:
        """Layer fields this transform implies while attached, e.g. ``{"w_density": 0.1}``."""
        return {}

    def permanent_hints(self) -> dict[str, Any]:
        """Layer fields that stay true once the values are baked in (e.g. ``{"w_bits": 4}``)."""
        return {}

    def fit(self, param: Tensor) -> None:
        """Adapt to ``param`` after its shape changed (channels removed); default: refuse."""
        raise UserInputError(f"{self.parameter}: a {self.kind} transform cannot follow a change of shape")

    def restore(self, param: Tensor, original: Tensor) -> None:
        """Undo this transform given the values the parameter had before it (default: all of them)."""
        param.copy_(original)

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """``(plain parameters, tensors)`` enough for :meth:`from_state` to rebuild this transform."""
        return {}, {}

    @classmethod
    def from_state(cls, parameter: str, params: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> "WeightTransform":
        """Rebuild a transform saved with :meth:`state`."""
        return cls(parameter, **params, **tensors)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parameter!r})"


class Transforms(TrainHook):
    """The weight transforms of one model, in the order they were added, and their hooks.

    Use :meth:`of` rather than the constructor: it returns the set already on the model.
    With ``reversible=True`` the values each parameter had before its first transform are
    kept, so :meth:`restore` can undo everything (costs one copy of each such parameter).

    Example:

    >>> import torch, torch.nn as nn
    >>> from dnnergy.compress import Mask, Transforms
    >>> model = nn.Linear(4, 2)
    >>> transforms = Transforms.of(model, reversible=True)
    >>> mask = transforms.add(Mask("weight", torch.tensor([[True, False, True, False]] * 2)))
    >>> int((model.weight == 0).sum()), model.dnnergy_hints  # the tracer reads the hint
    (4, {'w_density': 0.5})
    >>> _ = model.weight.data.fill_(1.0)  # as an optimizer step of a loop that is not dnnergy's
    >>> transforms.apply(); model.weight.sum().item()
    4.0
    >>> mask.keep[0, 0] = False; transforms.changed(); model.dnnergy_hints
    {'w_density': 0.375}
    >>> records, tensors = transforms.state(); records[0]["kind"], list(tensors), len(transforms.of_kind(Mask))
    ('mask', ['transform.0.keep'], 1)
    >>> model.weight = nn.Parameter(model.weight.data[1:].clone())  # output channel 0 removed
    >>> transforms.refresh(model); mask.keep.shape
    torch.Size([1, 4])
    >>> transforms.restore(); Transforms.of(model, create=False) is None  # undone and detached
    True
    >>> other = nn.Linear(4, 2)
    >>> len(Transforms.load(other, records, tensors))  # the saved set on a model holding the saved weights
    1
    >>> Transforms.of(other).make_permanent(); Transforms.of(other, create=False) is None  # values baked in
    True
    """

    def __init__(self, model: nn.Module, *, reversible: bool = False):
        if not isinstance(model, nn.Module):
            raise UserInputError(f"Transforms expects a torch.nn.Module (got {type(model).__name__})")
        self.reversible = reversible
        self._params: dict[str, nn.Parameter] = dict(model.named_parameters())
        self._modules: dict[str, nn.Module] = dict(model.named_modules())
        self._transforms: list[WeightTransform] = []
        self._originals: dict[str, Tensor] = {}
        self._written: dict[str, set[str]] = {}  # hint keys this set wrote, per module path
        self._handles: dict[str, Any] = {}

    # -- finding the set of a model ------------------------------------------------------
    @classmethod
    def of(cls, model: nn.Module, *, create: bool = True, reversible: bool = False) -> "Transforms | None":
        """The set attached to ``model``; a new, empty one is attached when there is none and ``create``."""
        found = getattr(model, TRANSFORMS_ATTRIBUTE, None)
        if found is None and create:
            found = cls(model, reversible=reversible)
            object.__setattr__(model, TRANSFORMS_ATTRIBUTE, found)
        return found

    # -- changing the set --------------------------------------------------------------------
    def add(self, transform: WeightTransform, *, original: Tensor | None = None) -> WeightTransform:
        """Attach ``transform``: check its parameter, apply it now, hook its gradient, update hints.

        In a reversible set, ``original`` gives the values :meth:`restore` returns to when the
        parameter's current values are already changed (default: the current values).
        """
        if not isinstance(transform, WeightTransform):
            raise UserInputError(f"Transforms.add expects a WeightTransform (got {type(transform).__name__})")
        param = self._param(transform.parameter)
        if self.reversible and transform.parameter not in self._originals:
            self._originals[transform.parameter] = (param.detach() if original is None else original).clone()
        self._transforms.append(transform)
        with torch.no_grad():
            transform.apply(param)
        self._hook(transform.parameter)
        self._update_hints()
        return transform

    def apply(self) -> None:
        """Re-apply every transform in order (after an optimizer step of a loop that is not dnnergy's)."""
        with torch.no_grad():
            for transform in self._transforms:
                transform.apply(self._params[transform.parameter])

    def changed(self) -> None:
        """Re-apply everything and refresh the energy hints after a transform was changed in place."""
        self.apply()
        self._update_hints()

    def make_permanent(self) -> None:
        """Bake the transformed values in and detach everything; only :meth:`WeightTransform.permanent_hints` stay.

        The model loses its set (``Transforms.of`` creates a new, empty one afterwards).
        Like ``torch.nn.utils.prune.remove``.
        """
        self.apply()
        permanent: dict[str, dict] = {}
        for transform in self._transforms:
            permanent.setdefault(_module_path(transform.parameter), {}).update(transform.permanent_hints())
        self._detach(permanent)

    def restore(self) -> None:
        """Undo every transform (needs ``reversible=True`` from the start); the set is detached afterwards."""
        if not self.reversible:
            raise UserInputError("Transforms: restore() needs the transforms to be reversible (Masks(model, reversible=True))")
        with torch.no_grad():
            for transform in reversed(self._transforms):
                transform.restore(self._params[transform.parameter], self._originals[transform.parameter])
        self._detach({})

    def refresh(self, model: nn.Module) -> None:
        """Follow a structural change of ``model`` (channels removed, a module replaced).

        Parameters are looked up again by name; a transform whose parameter changed shape
        is asked to :meth:`~WeightTransform.fit` the new one; a transform whose parameter
        disappeared raises.
        """
        self._remove_hooks()
        self._params = dict(model.named_parameters())
        self._modules = dict(model.named_modules())
        for transform in self._transforms:
            param = self._param(transform.parameter)
            with torch.no_grad():
                transform.fit(param)
                original = self._originals.get(transform.parameter)
                if original is not None and original.shape != param.shape:
                    self._originals[transform.parameter] = param.detach().clone()  # the removed values are gone for good
        self.apply()
        for name in {t.parameter for t in self._transforms}:
            self._hook(name)
        self._update_hints()

    # -- reading -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[WeightTransform]:
        return iter(list(self._transforms))

    def __len__(self) -> int:
        return len(self._transforms)

    def of_kind(self, kind: type[WeightTransform]) -> list[WeightTransform]:
        """The transforms of one class, in order."""
        return [t for t in self._transforms if isinstance(t, kind)]

    def state(self) -> tuple[list[dict], dict[str, Tensor]]:
        """Plain records ``[{"kind", "parameter", "params", "tensors": [keys]}]`` and the tensors they name."""
        records, tensors = [], {}
        for i, transform in enumerate(self._transforms):
            params, own = transform.state()
            keys = {name: f"transform.{i}.{name}" for name in own}
            tensors.update({keys[name]: tensor for name, tensor in own.items()})
            records.append({"kind": transform.kind, "parameter": transform.parameter, "params": params, "tensors": keys})
        return records, tensors

    @classmethod
    def load(cls, model: nn.Module, records: list[Mapping], tensors: Mapping[str, Tensor]) -> "Transforms":
        """Attach the transforms saved by :meth:`state` to ``model`` (which holds the saved, transformed weights)."""
        transforms = cls.of(model)
        for record in records:
            try:
                kind = TRANSFORMS.get(record["kind"])
                own = {name: tensors[key] for name, key in record["tensors"].items()}
                transforms.add(kind.from_state(record["parameter"], record["params"], own))
            except (KeyError, TypeError) as exc:
                raise UserInputError(f"saved transform {record!r:.120}: cannot be rebuilt ({exc})") from exc
        return transforms

    # -- TrainHook (gradients are filtered by the parameters' own hooks, see _hook) ----------------
    def on_start(self, model: nn.Module) -> None:
        self.apply()

    def after_step(self, model: nn.Module) -> None:
        self.apply()

    # -- copying --------------------------------------------------------------------------------------
    def __deepcopy__(self, memo: dict) -> "Transforms":
        # Deep-copied with its model: the parameters come from ``memo`` (already copied with the
        # model's modules), and the gradient hooks, which deepcopy does not carry, are registered again.
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items() if k != "_handles"})
        new._handles = {}
        for name in {t.parameter for t in new._transforms}:
            new._hook(name)
        return new

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_handles"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._handles = {}
        for name in {t.parameter for t in self._transforms}:
            self._hook(name)

    def __repr__(self) -> str:
        return f"Transforms({', '.join(map(repr, self._transforms)) or 'empty'})"

    # -- internals --------------------------------------------------------------------------------------
    def _param(self, name: str) -> nn.Parameter:
        if name not in self._params:
            raise UserInputError(f"Transforms: model has no parameter {name!r}; parameters: {sorted(self._params)[:20]}")
        return self._params[name]

    def _hook(self, name: str) -> None:
        if name in self._handles:
            self._handles[name].remove()
        own = [t for t in self._transforms if t.parameter == name]

        def filtered(grad: Tensor) -> Tensor:
            for transform in own:
                grad = transform.grad(grad)
            return grad

        # NB: a gradient hook, not a forward hook: forward hooks would run inside dnnergy.trace and be counted.
        self._handles[name] = self._params[name].register_hook(filtered)

    def _remove_hooks(self) -> None:
        for handle in self._handles.values():
            handle.remove()
        self._handles.clear()

    def _update_hints(self, final: Mapping[str, dict] | None = None) -> None:
        """Write the live hints (or ``final`` ones) into the modules, replacing only keys this set wrote."""
        hints: dict[str, dict] = {}
        if final is None:
            for transform in self._transforms:
                hints.setdefault(_module_path(transform.parameter), {}).update(transform.hints())
        else:
            hints = {path: dict(values) for path, values in final.items()}
        for path in set(hints) | set(self._written):
            module = self._modules.get(path)
            if module is None:
                continue
            merged = {k: v for k, v in (getattr(module, HINTS_ATTRIBUTE, None) or {}).items()
                      if k not in self._written.get(path, ())}
            merged.update(hints.get(path, {}))
            self._written[path] = set(hints.get(path, {})) if final is None else set()
            if merged:
                object.__setattr__(module, HINTS_ATTRIBUTE, merged)
            else:
                module.__dict__.pop(HINTS_ATTRIBUTE, None)

    def _detach(self, final_hints: Mapping[str, dict]) -> None:
        self._remove_hooks()
        self._update_hints(final_hints)
        self._transforms.clear()
        self._originals.clear()
        owner = next((m for m in self._modules.values() if getattr(m, TRANSFORMS_ATTRIBUTE, None) is self), None)
        if owner is not None:
            owner.__dict__.pop(TRANSFORMS_ATTRIBUTE, None)


def _module_path(parameter: str) -> str:
    return parameter.rpartition(".")[0]


#: Attributes of a :class:`Transforms` that belong to the model it is attached to, not to its state.
_BOUND = ("_params", "_modules", "_handles")


@dataclass(frozen=True)
class Snapshot:
    """A model's weights and the state of its transform set at one point of a prune / fine-tune loop."""

    weights: dict[str, Tensor]
    transforms: dict[str, Any] | None


def snapshot(model: nn.Module) -> Snapshot:
    """Copy the weights and the transform set, to :func:`rollback` to if the next step costs too much accuracy."""
    current = Transforms.of(model, create=False)
    state = None if current is None else copy.deepcopy({k: v for k, v in current.__dict__.items() if k not in _BOUND})
    return Snapshot(copy.deepcopy(model.state_dict()), state)


def rollback(model: nn.Module, saved: Snapshot) -> None:
    """Put ``model``'s weights and transform set back to ``saved``, in place (no hooks are left behind)."""
    current = Transforms.of(model, create=False)
    if current is not None:
        current._remove_hooks()
        current._update_hints({})  # take back every hint it wrote; the restored set writes its own
        model.__dict__.pop(TRANSFORMS_ATTRIBUTE, None)
    model.load_state_dict(saved.weights)
    if saved.transforms is not None:
        restored = Transforms(model)
        restored.__dict__.update(copy.deepcopy(saved.transforms))
        for name in {t.parameter for t in restored._transforms}:
            restored._hook(name)
        restored._update_hints()
        object.__setattr__(model, TRANSFORMS_ATTRIBUTE, restored)

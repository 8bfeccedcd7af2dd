"""Keep masks: the reversible state of unstructured pruning, as a weight transform.

:class:`Mask` keeps one boolean *keep* tensor for one parameter (``True`` = kept):
applying it zeroes the pruned weights in place, its gradient filter zeroes their
gradients, and it tells the energy model the weight's non-zero fraction
(``w_density``), which :func:`dnnergy.trace` uses when it does not measure the weights.

:class:`Masks` is the convenient view most code uses: a read-only ``Mapping`` from
parameter name to keep tensor over the model's :class:`~dnnergy.compress.transforms.Transforms`
set, with :meth:`Masks.set` (masks only shrink: a new mask is AND-ed in),
:meth:`Masks.remove` (pruning permanent) and :meth:`Masks.restore` (pruning undone).

Why not ``torch.nn.utils.prune``: it re-parametrises ``weight`` as ``weight_orig`` times a
``weight_mask`` buffer, so ``weight`` stops being a parameter, the ``state_dict`` keys
change and :func:`dnnergy.trace` would see a pruned ``Linear`` as an activation matmul.
Models pruned that way convert with :meth:`Masks.from_torch_prune`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from ...errors import UserInputError
from ...train import TrainHook
from ..selection import LayerSparsity
from .base import Transforms, WeightTransform, register_transform

__all__ = ["Mask", "Masks"]


@register_transform("mask")
class Mask(WeightTransform):
    """Zero the weights of ``parameter`` where ``keep`` is False (and their gradients).

    Energy hint: ``w_density`` = kept fraction. Example: ``Mask("fc1.weight", keep)``
    with ``keep`` True on 30 of 300 entries leaves 270 exact zeros and hints ``w_density=0.1``.
    """

    def __init__(self, parameter: str, keep: Tensor):
        super().__init__(parameter)
        self.keep = torch.as_tensor(keep).to(torch.bool).clone()

    def apply(self, param: Tensor) -> None:
        if self.keep.shape != param.shape:
            raise UserInputError(f"Mask: mask for {self.parameter!r} has shape {tuple(self.keep.shape)}, "
                                 f"parameter has {tuple(param.shape)}")
        param.mul_(self.keep.to(param.device))

    def grad(self, grad: Tensor) -> Tensor:
        return grad * self.keep.to(grad.device)

    def hints(self) -> dict[str, Any]:
        return {"w_density": float(self.keep.float().mean()) if self.keep.numel() else 1.0}

    def fit(self, param: Tensor) -> None:
        """After channel removal the pruned weights are the parameter's exact zeros: keep the rest."""
        self.keep = param.detach() != 0

    def restore(self, param: Tensor, original: Tensor) -> None:
        """Masked weights get their values from before masking; kept ones keep their (fine-tuned) values."""
        param.copy_(torch.where(self.keep, param, original))

    def state(self) -> tuple[dict, dict[str, Tensor]]:
        return {}, {"keep": self.keep}


class Masks(Mapping, TrainHook):
    """The keep masks of a model (``True`` = weight kept), a view over its transform set.

    ``Masks(model)`` uses the model's :class:`~dnnergy.compress.transforms.Transforms`
    (creating it, reversible unless ``reversible=False``); :meth:`set` attaches or
    tightens one parameter's mask and zeroes the pruned weights at once. It is a
    :class:`~dnnergy.train.TrainHook`, so ``fine_tune(model, data, hooks=[masks])`` keeps
    pruned weights exactly zero.

    Example::

        model = nn.Linear(4, 2)
        masks = Masks(model)
        masks.set("weight", model.weight.abs() > 0.1)   # pruned entries are now exactly 0
        masks.sparsity()                                  # fraction of masked weights
        masks.remove()                                    # permanent; hooks gone

    and, checked (a fraction is in [0, 1], not percent):

    >>> import torch, torch.nn as nn
    >>> from dnnergy.compress import Masks
    >>> model = nn.Linear(4, 2)
    >>> masks = Masks(model)
    >>> masks.set("weight", torch.tensor([[True, False, True, False]] * 2))
    >>> masks.update({"bias": torch.tensor([True, False])})
    >>> masks.sparsity("weight"), masks.sparsity(), len(masks.transforms)  # (4 + 1) / (8 + 2) masked
    (0.5, 0.5, 2)
    >>> masks.report()[0]
    LayerSparsity(name='weight', numel=8, zeros=4)
    >>> _ = model.weight.data.fill_(1.0); masks.apply(); model.weight.sum().item()  # after your own optimizer step
    4.0
    >>> masks.restore(); float(model.weight[0, 1]) != 0.0  # masked weights get their old values back
    True
    >>> from torch.nn.utils import prune
    >>> pruned = prune.l1_unstructured(nn.Linear(4, 2), "weight", amount=0.5)
    >>> Masks.from_torch_prune(pruned).sparsity("weight")
    0.5
    """

    def __init__(self, model: nn.Module, *, reversible: bool = True):
        if not isinstance(model, nn.Module):
            raise UserInputError(f"Masks expects a torch.nn.Module (got {type(model).__name__})")
        self.model = model
        self._reversible = reversible
        Transforms.of(model, reversible=reversible)
        self._active = True

    @property
    def transforms(self) -> Transforms:
        """The model's transform set (looked up each time: a rollback may have replaced it)."""
        return Transforms.of(self.model, reversible=self._reversible)

    # -- mapping protocol ----------------------------------------------------------
    def _masks(self) -> dict[str, Mask]:
        return {t.parameter: t for t in self.transforms.of_kind(Mask)}

    def __getitem__(self, name: str) -> Tensor:
        return self._masks()[name].keep

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks())

    def __len__(self) -> int:
        return len(self._masks())

    def __repr__(self) -> str:
        return f"Masks({len(self)} parameters, sparsity={self.sparsity():.4f})"

    # -- changing masks -------------------------------------------------------------
    def set(self, name: str, keep: Tensor) -> None:
        """AND ``keep`` (bool, the parameter's shape) into the mask of ``name`` and zero pruned weights."""
        self._check_active()
        params = dict(self.model.named_parameters())
        if name not in params:
            raise UserInputError(f"Masks: model has no parameter {name!r}; parameters: {sorted(params)[:20]}")
        keep = torch.as_tensor(keep).to(device=params[name].device, dtype=torch.bool)
        if keep.shape != params[name].shape:
            raise UserInputError(f"Masks: mask for {name!r} has shape {tuple(keep.shape)}, parameter has {tuple(params[name].shape)}")
        existing = self._masks().get(name)
        if existing is None:
            self.transforms.add(Mask(name, keep))
        else:
            existing.keep.logical_and_(keep)
            self.transforms.changed()

    def update(self, masks: Mapping[str, Tensor]) -> None:
        """:meth:`set` every ``name -> keep`` pair of ``masks``."""
        for name, keep in masks.items():
            self.set(name, keep)

    def apply(self) -> None:
        """Zero every masked weight in place (after an optimizer step of your own loop, before saving)."""
        self._check_active()
        self.transforms.apply()

    def remove(self) -> dict[str, Tensor]:
        """Make pruning permanent (and every other transform of the model), detach the hooks, return the masks.

        Kept weights keep their current values and masked ones stay 0; this view is inert
        afterwards (further calls raise). Like ``torch.nn.utils.prune.remove``.
        """
        self._check_active()
        masks = dict(self.items())
        self.transforms.make_permanent()
        self._active = False
        return masks

    def restore(self) -> None:
        """Undo pruning: masked weights get their values from before they were masked.

        Kept weights keep their current (possibly fine-tuned) values. Needs
        ``reversible=True``; the view is inert afterwards.
        """
        self._check_active()
        if not self.transforms.reversible:
            raise UserInputError("Masks: restore() needs Masks(model, reversible=True)")
        self.transforms.restore()
        self._active = False

    # -- reporting ------------------------------------------------------------------
    def report(self) -> tuple[LayerSparsity, ...]:
        """One record per masked parameter: elements and masked elements."""
        return tuple(LayerSparsity(name, keep.numel(), int((~keep).sum())) for name, keep in self.items())

    def sparsity(self, name: str | None = None) -> float:
        """Fraction of masked elements of one parameter, or of all masked parameters together."""
        rows = self.report() if name is None else tuple(r for r in self.report() if r.name == name)
        if name is not None and not rows:
            raise KeyError(f"Masks: no mask for {name!r}")
        numel = sum(r.numel for r in rows)
        return sum(r.zeros for r in rows) / numel if numel else 0.0

    # -- TrainHook: the model's transform set does the work -------------------------
    def on_start(self, model: nn.Module) -> None:
        self.transforms.on_start(model)

    def after_step(self, model: nn.Module) -> None:
        self.transforms.after_step(model)

    # -- interoperability ---------------------------------------------------------
    @classmethod
    def from_torch_prune(cls, model: nn.Module, *, reversible: bool = True) -> "Masks":
        """Convert ``torch.nn.utils.prune`` state (``<name>_orig`` + ``<name>_mask``) into Masks.

        Each pruned tensor becomes a plain parameter again (``prune.remove``) and its
        mask is attached here; ``restore`` recovers the ``_orig`` values.
        """
        from torch.nn.utils import prune

        found = []
        for path, module in model.named_modules():
            for hook in list(module._forward_pre_hooks.values()):
                if isinstance(hook, prune.BasePruningMethod):
                    found.append((path, module, hook._tensor_name))
        originals = {}
        for path, module, attr in found:
            key = f"{path}.{attr}" if path else attr
            originals[key] = (getattr(module, f"{attr}_orig").detach().clone(), getattr(module, f"{attr}_mask").detach().bool().clone())
            prune.remove(module, attr)
        masks = cls(model, reversible=reversible)
        for key, (original, keep) in originals.items():
            masks.transforms.add(Mask(key, keep), original=original)
        return masks

    # -- internals ------------------------------------------------------------------
    def _check_active(self) -> None:
        if not self._active:
            raise UserInputError("Masks: this mask set was removed or restored; create a new Masks(model)")

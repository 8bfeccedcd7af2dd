"""Binary weight masks: the reversible state of unstructured pruning.

Design: a :class:`Masks` object keeps one boolean *keep* mask per parameter, keyed by the
parameter's name in ``model.named_parameters()`` (``"fc1.weight"``). Masked weights are
zeroed **in place** and the parameter stays an ``nn.Parameter`` under its own name. A
gradient hook multiplies the gradient by the mask, so an optimizer created after the
masks (SGD with momentum, Adam, AdamW) never moves a masked weight; after a step of an
optimizer whose state predates the masks, call :meth:`Masks.apply` (the shared loop
``dnnergy.data.fine_tune`` re-applies masks after every step). :meth:`Masks.remove` detaches the hooks
and leaves the values (pruning becomes permanent); :meth:`Masks.restore` puts the
original values of the masked weights back (pruning undone).

Why not ``torch.nn.utils.prune``: it re-parametrises ``weight`` as ``weight_orig`` times a
``weight_mask`` buffer, so ``weight`` stops being a parameter, the ``state_dict`` keys
change and :func:`dnnergy.trace` no longer sees the weight as a parameter (a pruned
``Linear`` would look like an activation matmul). It also forces optimizers onto
``weight_orig``. Models pruned with ``torch.nn.utils.prune`` convert with
:meth:`Masks.from_torch_prune`. A ``Masks`` is a read-only ``Mapping[str, Tensor]``, so it
can be passed wherever a plain dict of masks is expected (e.g. a masked fine-tuning loop).
"""

from __future__ import annotations

import copy

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

import torch
from torch import Tensor, nn

from ..errors import UserInputError

__all__ = [
    "Masks",
    "LayerSparsity",
    "prunable_parameters",
    "weight_sparsity",
    "lowest_score_masks",
    "PRUNABLE_MODULES",
    "PruneStep",
    "PruningRecord",
    "Snapshot",
    "snapshot",
    "rollback",
]

#: Module types whose ``weight`` is pruned by default (biases and norm layers are not).
PRUNABLE_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, slots=True)
class LayerSparsity:
    """Zero count of one weight tensor: ``numel`` elements of which ``zeros`` are exactly 0."""

    name: str
    numel: int
    zeros: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"LayerSparsity: name must be a non-empty string (got {self.name!r})")
        if not isinstance(self.numel, int) or self.numel < 0:
            raise ValueError(f"LayerSparsity {self.name!r}: numel must be a non-negative int (got {self.numel!r})")
        if not isinstance(self.zeros, int) or not 0 <= self.zeros <= self.numel:
            raise ValueError(f"LayerSparsity {self.name!r}: zeros must be an int in [0, numel={self.numel}] (got {self.zeros!r})")

    @property
    def nonzeros(self) -> int:
        """Elements that are not zero."""
        return self.numel - self.zeros

    @property
    def sparsity(self) -> float:
        """Fraction of zero elements, in [0, 1] (0.0 for an empty tensor)."""
        return self.zeros / self.numel if self.numel else 0.0


@dataclass(frozen=True, slots=True)
class PruneStep:
    """One trial of a pruning schedule: which layer (``""`` = all), the sparsity tried, the outcome.

    ``sparsity`` is the fraction of zero weights of ``layer`` (or of all pruned weights)
    after the step; ``accuracy`` is the validation accuracy (fraction) measured after it,
    ``None`` if no evaluation was given; ``accepted`` is False for a step that was undone.
    """

    iteration: int
    layer: str
    sparsity: float
    accuracy: float | None
    accepted: bool = True
    fine_tuned: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.iteration, int) or self.iteration < 0:
            raise ValueError(f"PruneStep: iteration must be a non-negative int (got {self.iteration!r})")
        if not 0.0 <= self.sparsity <= 1.0:
            raise ValueError(f"PruneStep {self.layer!r}: sparsity must be in [0, 1] (got {self.sparsity})")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"PruneStep {self.layer!r}: accuracy must be a fraction in [0, 1] or None (got {self.accuracy})")


@dataclass(frozen=True, slots=True)
class PruningRecord:
    """What a pruning method did, as plain data keyed by parameter names (reproducible, no pickles).

    ``layers`` are the final per-parameter zero counts; accuracies are fractions in
    [0, 1] (``None`` without an evaluation function); energies are in ``energy_unit``
    (the energy function's unit, ``None`` without one); ``order`` is the layer order
    used in each iteration (energy-aware pruning), ``steps`` every trial in order.
    """

    method: str
    layers: tuple[LayerSparsity, ...]
    steps: tuple[PruneStep, ...] = ()
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    energy_before: float | None = None
    energy_after: float | None = None
    energy_unit: str = ""
    order: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"PruningRecord: method must be a non-empty string (got {self.method!r})")
        for field in ("accuracy_before", "accuracy_after"):
            value = getattr(self, field)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"PruningRecord: {field} must be a fraction in [0, 1] or None (got {value})")
        for field in ("energy_before", "energy_after"):
            value = getattr(self, field)
            if value is not None and not value >= 0.0:
                raise ValueError(f"PruningRecord: {field} must be >= 0 or None (got {value})")

    @property
    def sparsity(self) -> float:
        """Zero fraction over all recorded weights."""
        numel = sum(r.numel for r in self.layers)
        return sum(r.zeros for r in self.layers) / numel if numel else 0.0

    def layer_sparsity(self) -> dict[str, float]:
        """``{parameter name: zero fraction}``."""
        return {r.name: r.sparsity for r in self.layers}

    def to_dict(self) -> dict:
        """JSON-ready plain data."""
        return {
            "method": self.method,
            "sparsity": self.sparsity,
            "layers": [{"name": r.name, "numel": r.numel, "zeros": r.zeros, "sparsity": r.sparsity} for r in self.layers],
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "energy_before": self.energy_before,
            "energy_after": self.energy_after,
            "energy_unit": self.energy_unit,
            "order": [list(o) for o in self.order],
            "steps": [
                {"iteration": s.iteration, "layer": s.layer, "sparsity": s.sparsity, "accuracy": s.accuracy,
                 "accepted": s.accepted, "fine_tuned": s.fine_tuned}
                for s in self.steps
            ],
        }


def prunable_parameters(model: nn.Module, names: Iterable[str] | None = None) -> dict[str, nn.Parameter]:
    """The parameters pruning acts on, by name: the ``weight`` of every Linear/Conv module.

    ``names`` selects a subset, either parameter names (``"fc1.weight"``) or module paths
    (``"fc1"``); an unknown name raises :class:`UserInputError` listing the valid ones.
    Example: for LeNet-300-100 the result has keys ``fc1.weight``, ``fc2.weight``, ``fc3.weight``.
    """
    found = {
        f"{path}.weight" if path else "weight": module.weight
        for path, module in model.named_modules()
        if isinstance(module, PRUNABLE_MODULES) and isinstance(getattr(module, "weight", None), nn.Parameter)
    }
    if names is None:
        return found
    params = dict(model.named_parameters())
    chosen: dict[str, nn.Parameter] = {}
    for name in names:
        key = name if name in params else f"{name}.weight"
        if key not in params:
            raise UserInputError(f"no parameter or prunable module named {name!r}; prunable: {sorted(found)}")
        chosen[key] = params[key]
    return chosen


def weight_sparsity(model: nn.Module, names: Iterable[str] | None = None) -> tuple[LayerSparsity, ...]:
    """Measured zeros of the prunable weights (no masks needed), one record per parameter.

    Example: a ``Linear(4, 2)`` whose weight has 3 zeros gives
    ``(LayerSparsity("weight", 8, 3),)`` with ``sparsity == 0.375``.
    """
    return tuple(
        LayerSparsity(name, p.numel(), int((p.detach() == 0).sum())) for name, p in prunable_parameters(model, names).items()
    )


def lowest_score_masks(
    scores: Mapping[str, Tensor], sparsity: float, scope: Literal["layer", "global"] = "layer"
) -> dict[str, Tensor]:
    """Keep masks that drop the ``round(sparsity * n)`` lowest-scoring entries.

    ``scope="layer"`` drops ``round(sparsity * numel)`` entries of every tensor;
    ``scope="global"`` drops ``round(sparsity * total)`` entries of all tensors together
    (one threshold). Ties are broken by position (earlier entries are dropped first), so
    the count is exact. Scores are any non-negative importance (``|w|`` for magnitude
    pruning, OBD saliency). Example: scores ``[3, 1, 2, 0]`` at sparsity 0.5 keep
    ``[True, False, True, False]``.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise UserInputError(f"sparsity must be in [0, 1] (got {sparsity})")
    if scope not in ("layer", "global"):
        raise UserInputError(f"scope must be 'layer' or 'global' (got {scope!r})")
    if scope == "layer":
        return {name: _drop_lowest(score.detach().reshape(-1), round(sparsity * score.numel())).reshape(score.shape)
                for name, score in scores.items()}
    flat = torch.cat([s.detach().reshape(-1).to(torch.float64) for s in scores.values()]) if scores else torch.zeros(0)
    keep = _drop_lowest(flat, round(sparsity * flat.numel()))
    out, start = {}, 0
    for name, score in scores.items():
        out[name] = keep[start:start + score.numel()].reshape(score.shape)
        start += score.numel()
    return out


def _drop_lowest(flat: Tensor, count: int) -> Tensor:
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if count > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:count]] = False
    return keep


class Masks(Mapping):
    """Per-parameter keep masks (``True`` = weight kept) attached to a model.

    ``Masks(model)`` starts empty; :meth:`set` attaches or tightens a mask (masks only
    shrink: the new mask is AND-ed with the current one) and zeroes the pruned weights at
    once. Read access is a mapping from parameter name to a boolean tensor of the
    parameter's shape. With ``reversible=True`` the original values of pruned weights are
    remembered so :meth:`restore` can undo pruning (costs one copy of each masked tensor).

    Example::

        model = nn.Linear(4, 2)
        masks = Masks(model)
        masks.set("weight", model.weight.abs() > 0.1)   # pruned entries are now exactly 0
        masks.sparsity()                                  # fraction of masked weights
        masks.remove()                                    # permanent; hooks gone
    """

    def __init__(self, model: nn.Module, *, reversible: bool = True):
        if not isinstance(model, nn.Module):
            raise UserInputError(f"Masks expects a torch.nn.Module (got {type(model).__name__})")
        self.model = model
        self.reversible = reversible
        self._params = dict(model.named_parameters())
        self._masks: dict[str, Tensor] = {}
        self._originals: dict[str, Tensor] = {}
        self._handles: dict[str, list] = {}
        self._active = True

    # -- mapping protocol ----------------------------------------------------------
    def __getitem__(self, name: str) -> Tensor:
        return self._masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        return f"Masks({len(self)} parameters, sparsity={self.sparsity():.4f})"

    # -- changing masks -------------------------------------------------------------
    def set(self, name: str, keep: Tensor) -> None:
        """AND ``keep`` (bool, the parameter's shape) into the mask of ``name`` and zero pruned weights."""
        self._check_active()
        if name not in self._params:
            raise UserInputError(f"Masks: model has no parameter {name!r}; parameters: {sorted(self._params)[:20]}")
        param = self._params[name]
        keep = torch.as_tensor(keep).to(device=param.device, dtype=torch.bool)
        if keep.shape != param.shape:
            raise UserInputError(f"Masks: mask for {name!r} has shape {tuple(keep.shape)}, parameter has {tuple(param.shape)}")
        if name in self._masks:
            self._masks[name].logical_and_(keep)
        else:
            if self.reversible:
                self._originals[name] = param.detach().clone()
            self._masks[name] = keep.clone()
            self._attach(name)
        with torch.no_grad():
            param.mul_(self._masks[name])

    def update(self, masks: Mapping[str, Tensor]) -> None:
        """:meth:`set` every ``name -> keep`` pair of ``masks``."""
        for name, keep in masks.items():
            self.set(name, keep)

    def apply(self) -> None:
        """Zero every masked weight in place (after an optimizer step, before saving)."""
        self._check_active()
        with torch.no_grad():
            for name, keep in self._masks.items():
                self._params[name].mul_(keep)

    def remove(self) -> dict[str, Tensor]:
        """Make pruning permanent: zero masked weights, detach the hooks, return the masks.

        Kept weights keep their current values and masked ones stay 0; the object is
        inert afterwards (further calls raise). Like ``torch.nn.utils.prune.remove``.
        """
        self.apply()
        self._detach()
        return dict(self._masks)

    def restore(self) -> None:
        """Undo pruning: masked weights get their values from before they were masked.

        Kept weights keep their current (possibly fine-tuned) values. Needs
        ``reversible=True``; the object is inert afterwards.
        """
        self._check_active()
        if not self.reversible:
            raise UserInputError("Masks: restore() needs Masks(model, reversible=True)")
        with torch.no_grad():
            for name, keep in self._masks.items():
                param = self._params[name]
                param.copy_(torch.where(keep, param, self._originals[name]))
        self._detach()

    # -- reporting ------------------------------------------------------------------
    def report(self) -> tuple[LayerSparsity, ...]:
        """One record per masked parameter: elements and masked elements."""
        return tuple(LayerSparsity(name, keep.numel(), int((~keep).sum())) for name, keep in self._masks.items())

    def sparsity(self, name: str | None = None) -> float:
        """Fraction of masked elements of one parameter, or of all masked parameters together."""
        rows = self.report() if name is None else tuple(r for r in self.report() if r.name == name)
        if name is not None and not rows:
            raise KeyError(f"Masks: no mask for {name!r}")
        numel = sum(r.numel for r in rows)
        return sum(r.zeros for r in rows) / numel if numel else 0.0

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
            masks.set(key, keep)
            if reversible:
                masks._originals[key] = original
        return masks

    # -- internals ------------------------------------------------------------------
    def _check_active(self) -> None:
        if not self._active:
            raise UserInputError("Masks: this mask set was removed or restored; create a new Masks(model)")

    def _attach(self, name: str) -> None:
        keep = self._masks[name]
        # NB: a gradient hook, not a forward hook: forward hooks would run inside dnnergy.trace and be counted.
        self._handles[name] = [self._params[name].register_hook(lambda grad: grad * keep)]

    def _detach(self) -> None:
        for handles in self._handles.values():
            for handle in handles:
                handle.remove()
        self._handles.clear()
        self._originals.clear()
        self._active = False



@dataclass(frozen=True)
class Snapshot:
    """A model's weights and its masks at one point of a prune / fine-tune loop."""

    state: dict[str, Tensor]
    masks: dict[str, Tensor]


def snapshot(model: nn.Module, masks: Masks) -> Snapshot:
    """Copy the weights and masks, to :func:`rollback` to if the next step costs too much accuracy."""
    return Snapshot(copy.deepcopy(model.state_dict()), {name: keep.clone() for name, keep in masks.items()})


def rollback(model: nn.Module, masks: Masks, saved: Snapshot) -> Masks:
    """Restore ``model`` to ``saved`` in place and return fresh (irreversible) masks equal to the saved ones."""
    masks.remove()
    model.load_state_dict(saved.state)
    restored = Masks(model, reversible=False)
    restored.update(saved.masks)
    return restored

"""Energy-aware pruning (Yang, Chen and Sze, "Designing Energy-Efficient Convolutional Neural
Networks using Energy-Aware Pruning", CVPR 2017; seeds 000 and 003).

Algorithm (one iteration; repeated while the target accuracy holds):

1. Order the prunable layers by estimated energy, highest first (``energy_fn.by_module``
   when the energy function offers it, see :class:`~dnnergy.metrics.LayerwiseObjective`).
2. Inside each layer, in steps of ``step`` of the layer's remaining weights, remove the weights with
   the smallest *joint impact on the layer's output feature map* and re-fit the remaining
   weights by closed-form least squares (:mod:`dnnergy.compress.reconstruct`). The
   selection is OBS-style (Hassibi and Stork 1993) on the input Gram matrix ``G``: with
   ``w`` the current least-squares weights of a row over its kept set ``K``, removing one
   weight ``q`` and re-fitting the rest raises the output error by exactly
   ``w_q^2 / [G_KK^-1]_qq``. Each step removes its weights in ``rounds`` batches of the
   lowest such costs over the whole layer, re-fitting after every batch.
   Stop the layer when the validation accuracy falls below the threshold (the step is undone).
3. Fine-tune the whole network with back-propagation, masks fixed.

Registered as the method ``eap``: the layer energies come from the context's energy
objective, the target accuracy from its budget, fine-tuning from its policy.

NB: ``rounds`` < the number of weights removed makes the selection approximate (the
costs of weights removed in the same batch are assumed independent); ``rounds`` equal to
that number is exact greedy OBS. The least-squares target is the layer output before
this iteration's pruning of the layer, on inputs from the current (partly pruned) network.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .checkpoint import Checkpoint, checkpoint_of, model_tensors, restore_model
from .context import CompressionContext
from .contract import Outcome, register_method, require_positive
from .reconstruct import input_gram, least_squares, set_weight_rows, weight_rows
from .record import Step
from .selection import prunable_parameters, weight_sparsity
from .transforms import Masks, rollback, snapshot

__all__ = ["EAPConfig", "eap", "select_by_output_error", "layer_energies"]


@dataclass(frozen=True, slots=True)
class EAPConfig:
    """Knobs of energy-aware pruning (the keyword parameters of the method ``eap``).

    ``layer_drop``: largest drop of validation accuracy while pruning one layer, from the
    accuracy when that layer started (``None`` = the context's whole budget); the target
    itself is the context's budget. ``step``: fraction of a layer's *remaining* weights removed per
    trial (a geometric schedule: 0.2 takes a layer from 90 % to 92 % sparsity, so the
    last, most sensitive weights are removed in small steps). ``max_sparsity``: cap per
    layer. ``rounds``: re-fit batches per step (see module NB). ``max_iterations``: prune / fine-tune iterations. ``damping``: ridge added to
    ``G`` when scoring, relative to its mean diagonal (the re-fit itself is undamped).
    ``batch_size``: calibration images per forward pass.
    """

    layer_drop: float | None = None
    step: float = 0.2
    max_sparsity: float = 0.99
    rounds: int = 2
    max_iterations: int = 3
    damping: float = 1e-6
    batch_size: int = 256

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_sparsity <= 1.0:
            raise UserInputError(f"EAPConfig: max_sparsity must be in [0, 1] (got {self.max_sparsity})")
        if self.layer_drop is not None and not 0.0 <= self.layer_drop <= 1.0:
            raise UserInputError(f"EAPConfig: layer_drop must be in [0, 1] or None (got {self.layer_drop})")
        if not 0.0 < self.step <= 1.0:
            raise UserInputError(f"EAPConfig: step must be in (0, 1] (got {self.step})")
        for name in ("rounds", "max_iterations", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserInputError(f"EAPConfig: {name} must be a positive int (got {value!r})")
        if not self.damping >= 0.0:
            raise UserInputError(f"EAPConfig: damping must be >= 0 (got {self.damping})")


def _removal_costs(gram: Tensor, weight: Tensor, keep: Tensor, damping: float) -> Tensor:
    """OBS cost ``w_q^2 / [G_KK^-1]_qq`` of every kept weight of every row (inf for removed ones).

    ``[G_KK^-1]`` comes from ``H = G^-1`` by the Schur complement ``H_KK - H_KS H_SS^-1 H_SK``
    when a row removed fewer weights than it kept (an ``|S|``-sized solve), else directly.
    """
    g = gram.to(torch.float64)
    g = g + damping * torch.diagonal(g).mean().clamp_min(1e-30) * torch.eye(g.shape[0], dtype=g.dtype)
    costs = torch.full(weight.shape, math.inf, dtype=torch.float64)
    patterns, inverse = torch.unique(keep, dim=0, return_inverse=True)
    h = torch.cholesky_inverse(torch.linalg.cholesky(g)) if len(patterns) > 1 else None  # damped G is positive definite
    for p, pattern in enumerate(patterns):
        rows = torch.nonzero(inverse == p).flatten()
        cols = torch.nonzero(pattern).flatten()
        if cols.numel() == 0:
            continue
        removed = torch.nonzero(~pattern).flatten()
        if h is not None and removed.numel() < cols.numel():
            h_ks = h[cols][:, removed]
            hinv = torch.diagonal(h)[cols] - (h_ks * torch.linalg.solve(h[removed][:, removed], h_ks.T).T).sum(1)
        else:
            hinv = torch.diagonal(torch.cholesky_inverse(torch.linalg.cholesky(g[cols][:, cols])))
        costs[rows.unsqueeze(1), cols.unsqueeze(0)] = weight[rows][:, cols].to(torch.float64).square() / hinv
    return costs


def select_by_output_error(
    gram: Tensor, target: Tensor, keep: Tensor, count: int, *, rounds: int = 4, damping: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """Remove ``count`` more weights with the least joint impact on the output; re-fit the rest.

    Grouped shapes: ``gram`` ``(groups, K, K)``, ``target`` (the weights whose output is
    preserved) and ``keep`` ``(groups, rows, K)``; a plain ``(K, K)`` / ``(rows, K)``
    layer is one group. Weights are chosen across the whole layer in ``rounds`` batches
    by OBS cost (module docstring) and the kept ones re-fitted by
    :func:`~dnnergy.compress.reconstruct.least_squares` after each batch. Returns
    ``(keep, weight)`` with exactly ``count`` more ``False`` entries (fewer if the layer
    runs out) and ``weight`` zero where ``keep`` is False.
    """
    squeeze = gram.ndim == 2
    if squeeze:
        gram, target, keep = gram.unsqueeze(0), target.unsqueeze(0), keep.unsqueeze(0)
    keep = keep.clone().bool()
    count = min(int(count), int(keep.sum()))
    weight = _refit(gram, target, keep)
    for r in range(rounds):
        batch = math.ceil(count / (rounds - r)) if r < rounds - 1 else count
        if batch <= 0:
            continue
        costs = torch.stack([_removal_costs(gram[i], weight[i], keep[i], damping) for i in range(len(gram))])
        drop = torch.argsort(costs.reshape(-1), stable=True)[:batch]
        keep.view(-1)[drop] = False
        count -= batch
        weight = _refit(gram, target, keep)
    return (keep[0], weight[0]) if squeeze else (keep, weight)


def layer_energies(model: nn.Module, energy_fn: Callable[[nn.Module], float], layers: Sequence[str]) -> dict[str, float]:
    """Energy attributed to each module path in ``layers``, in ``energy_fn``'s unit.

    Uses ``energy_fn.by_module(model)`` when available (the estimate's per-layer split);
    otherwise, for a plain ``model -> float``, the energy saved by zeroing that layer's
    weights alone (a marginal estimate, one call per layer).
    """
    by_module = getattr(energy_fn, "by_module", None)
    if by_module is not None:
        split = by_module(model)
        return {name: float(split.get(name, 0.0)) for name in layers}
    base = energy_fn(model)
    out = {}
    for name in layers:
        probe = copy.deepcopy(model)
        with torch.no_grad():
            probe.get_submodule(name).weight.zero_()
        out[name] = base - energy_fn(probe)
    return out


def _check(*, calibration: int, layers: tuple[str, ...], **config: object) -> None:
    EAPConfig(**config)
    require_positive("eap", calibration=calibration)


@register_method("eap", check=_check)
def eap(model: nn.Module, context: CompressionContext, *, step: float = 0.2, max_sparsity: float = 0.99,
        layer_drop: float | None = None, rounds: int = 2, max_iterations: int = 3, damping: float = 1e-6,
        batch_size: int = 256, calibration: int = 2000, layers: tuple[str, ...] = ()) -> Outcome:
    """Yang, Chen and Sze 2017: prune layer by layer, most energy first, by output error with a least-squares restore.

    Layers are ordered by the context's energy objective (``by_module`` when it has one);
    inside a layer, steps of ``step`` of its remaining weights (up to ``max_sparsity``)
    remove the weights whose removal least changes the layer's output and re-fit the rest
    on the Gram matrix of the first ``calibration`` training images, until accuracy on the
    selection split (``select``, else validation) falls below the budget (or ``layer_drop``
    below the layer's start). Each iteration ends with one check of the budget on
    validation (when the selection split is separate); an iteration that breaks it is undone. Then the
    whole model is fine-tuned, and the iteration repeats (at most ``max_iterations``).
    ``rounds``, ``damping``, ``batch_size``: see :class:`EAPConfig`. ``layers`` limits
    pruning to some Linear/Conv1d/Conv2d module paths. With ``context.checkpoint`` set, the
    run is saved after every layer and every iteration and, started again, resumes from
    there to the same result (:mod:`~dnnergy.compress.checkpoint`).
    """
    energy_fn = context.require("energy", "eap")
    context.require("max_accuracy_drop", "eap")
    config = EAPConfig(layer_drop, step, max_sparsity, rounds, max_iterations, damping, batch_size)
    names = [n.rpartition(".")[0] for n in prunable_parameters(model, list(layers) or None)]
    images = context.calibration(calibration)
    target = context.with_selection_reference(model).selection_floor()  # many accept decisions: the selection split
    allowed = context.max_accuracy_drop if config.layer_drop is None else config.layer_drop
    run = _Run(checkpoint_of(context, "eap", model, {**dataclasses.asdict(config), "calibration": calibration,
                                                      "layers": list(layers)}), model)
    masks = Masks(model, reversible=False)
    if not run.resume():
        run.accuracy = context.selection_accuracy(model)
    while not run.done and run.iteration < config.max_iterations:
        iteration = run.iteration
        if run.position == 0:  # a new iteration: order the layers by energy
            energies = layer_energies(model, energy_fn, names)
            run.begin(tuple(sorted(names, key=lambda n: -energies[n])))  # stable: ties keep model order
        for name in run.orders[-1][run.position:]:
            run.accuracy, trials = _prune_layer(model, name, masks, context, images, config, target, run.accuracy,
                                                allowed, iteration)
            run.steps.extend(trials)
            run.changed |= any(t.accepted for t in trials)
            run.position += 1
            run.save()
        run.done = not run.changed
        if not run.done:
            run.done = not _fine_tune(model, masks, context, target, run, iteration)
        run.iteration, run.position = iteration + 1, 0
        run.save()
    steps, orders = run.steps, run.orders
    summary = f"{len(orders)} iteration(s), order {' > '.join(orders[0])}" if orders else "nothing to prune"
    layers_now = weight_sparsity(model, names)
    return Outcome(model, summary, steps, {"order": [list(o) for o in orders],
                                           "layers": {r.name: r.sparsity for r in layers_now}})


def _fine_tune(model, masks, context, target, run, iteration) -> bool:
    """The end of an iteration: fine-tune, then check the target (and the budget on validation); undo the
    iteration when either broke. Returns True when the iteration holds (the next one may start)."""
    if context.fine_tune(model):
        run.accuracy = context.selection_accuracy(model)
        run.steps.append(Step(iteration, "", masks.sparsity(), run.accuracy, run.accuracy >= target, True))
    held = run.accuracy >= target
    if held and context.selection_split != "val":  # one decision per iteration on validation: the budget itself
        held = context.within_budget(context.evaluate(model))
    if not held:  # fine-tuning could not hold the target, or the validation budget broke: undo this iteration
        rollback(model, run.saved)
        run.accuracy = context.selection_accuracy(model)
    return held


class _Run:
    """EAP's progress as plain data (iteration, layers done in its order, steps, orders, accuracy) and its
    checkpoint: saved after every layer and every iteration, with the model and the iteration's start."""

    def __init__(self, checkpoint: Checkpoint | None, model: nn.Module):
        self.checkpoint, self.model = checkpoint, model
        self.iteration, self.position, self.changed, self.done = 0, 0, False, False
        self.accuracy: float = math.nan
        self.steps: list[Step] = []
        self.orders: list[tuple[str, ...]] = []
        self.saved = None  # the iteration's start: a Snapshot to roll back to, and its checkpoint form
        self.start: tuple[list[dict], dict[str, Tensor]] = ([], {})

    def begin(self, order: tuple[str, ...]) -> None:
        self.orders.append(order)
        self.changed = False
        self.saved, self.start = snapshot(self.model), model_tensors(self.model, "start/")

    def resume(self) -> bool:
        """Load the checkpoint into the model and this run; False when there is none."""
        progress = self.checkpoint.load() if self.checkpoint is not None else None
        if progress is None:
            return False
        state = progress.state
        self.iteration, self.position, self.changed, self.done = (state["iteration"], state["position"], state["changed"],
                                                                  state["done"])
        self.accuracy = state["accuracy"]
        self.steps = [Step(**step) for step in state["steps"]]
        self.orders = [tuple(order) for order in state["orders"]]
        if self.position:  # inside an iteration: its start is the rollback point
            self.start = (state["start"], {k: v for k, v in progress.tensors.items() if k.startswith("start/")})
            restore_model(self.model, self.start[0], progress.tensors, "start/")
            self.saved = snapshot(self.model)
        restore_model(self.model, state["model"], progress.tensors, "model/")
        return True

    def save(self) -> None:
        if self.checkpoint is None:
            return
        records, tensors = model_tensors(self.model, "model/")
        inside = self.position > 0
        self.checkpoint.save({"iteration": self.iteration, "position": self.position, "changed": self.changed,
                              "done": self.done, "accuracy": self.accuracy, "steps": [dataclasses.asdict(s) for s in self.steps],
                              "orders": self.orders, "model": records, "start": self.start[0] if inside else []},
                             {**tensors, **(self.start[1] if inside else {})})


def _prune_layer(model, name, masks, context, calibration, config, target, accuracy, layer_drop, iteration):
    """Greedy steps on one layer until accuracy or the sparsity cap stops it; returns (accuracy, steps)."""
    module = model.get_submodule(name)
    key = f"{name}.weight"
    gram = input_gram(model, name, calibration, config.batch_size)
    original = weight_rows(module)
    keep = masks[key].reshape(original.shape).clone() if key in masks else original != 0
    numel = keep.numel()
    floor = max(target, accuracy - layer_drop)
    best, trials = original, []
    while True:
        zeros = numel - int(keep.sum())
        goal = min(math.floor(config.max_sparsity * numel), zeros + max(1, round(config.step * (numel - zeros))))
        if goal <= zeros:
            break
        new_keep, new_weight = select_by_output_error(gram, original, keep, goal - zeros, rounds=config.rounds,
                                                      damping=config.damping)
        set_weight_rows(module, new_weight)
        acc = context.selection_accuracy(model)
        accepted = acc >= floor
        trials.append(Step(iteration, name, goal / numel, acc, accepted))
        if not accepted:
            break
        keep, best, accuracy = new_keep, new_weight, acc
    set_weight_rows(module, best)
    masks.set(key, keep.reshape(module.weight.shape))
    return accuracy, trials


def _refit(gram: Tensor, target: Tensor, keep: Tensor) -> Tensor:
    """:func:`least_squares` for every group of ``(groups, rows, K)`` shapes."""
    return torch.stack([least_squares(gram[i], target[i], keep[i]) for i in range(len(gram))])

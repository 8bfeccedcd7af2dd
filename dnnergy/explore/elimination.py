"""Algorithm 1 of seed 002 (Zhang, Davoodi and Hu): searches over neuron-elimination plans, and the method ``eliminate``.

:func:`elimination_sweep` is Algorithm 1 for one layer: ``p`` goes down from ``rank(X)``
and each simplified network (Algorithm 2 + Eq. 6, no retraining,
:class:`~dnnergy.compress.eliminate.PlanBuilder`) is evaluated until the accuracy drop
exceeds the budget. :func:`elimination_search` walks several layers (and the input
features) at once, steered by energy: the "After" rows of seed 002 combine layers. Both
return :class:`~dnnergy.metrics.Point` records (``strength`` = neurons kept, ``info`` =
the plan and its residual or distortion). The registered method ``eliminate`` runs the
search that fits the layers it is given and rebuilds the chosen plan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ..compress import CompressionContext, Outcome, Step, register_method
from ..compress.checkpoint import Checkpoint, checkpoint_of
from ..compress.contract import require_positive
from ..compress.eliminate import PlanBuilder, eliminate_plan
from ..errors import UserInputError
from ..metrics import Point
from .executors import as_executor, runs_here

__all__ = ["elimination_sweep", "elimination_search", "Search", "eliminate", "decision_accuracy"]


def _point(context: CompressionContext, model: nn.Module, plan: dict[str, int], accuracy: float | None,
           **info: float) -> Point:
    """A plan's Point with its ``accuracy`` on the context's selection split (see :func:`_with_accuracy`)."""
    energy = context.energy
    point = Point(label="eliminate", strength=float(sum(plan.values())), layer=",".join(plan),
                  val_samples=len(context.data.val), energy=float(energy(model)) if energy else None,
                  energy_unit=getattr(energy, "unit", "") if energy else "", info={"plan": plan, **info})
    return point if accuracy is None else _with_accuracy(context, point, accuracy)


def _with_accuracy(context: CompressionContext, point: Point, accuracy: float) -> Point:
    """``point`` with the accuracy measured on the selection split: its validation accuracy when that split is
    ``val``, else ``info["select_accuracy"]`` (validation stays unmeasured: it is the budget's own split)."""
    if context.selection_split == "val":
        return dataclasses.replace(point, val_accuracy=accuracy)
    return dataclasses.replace(point, info={**point.info, "select_accuracy": accuracy})


def decision_accuracy(point: Point) -> float | None:
    """The accuracy a search decided on for ``point``: on ``select`` when the data set has it, else validation."""
    return point.info.get("select_accuracy", point.val_accuracy)


def _with_reference(context: CompressionContext, model: nn.Module) -> CompressionContext:
    """``context`` whose budgets (validation and selection) are measured from ``model`` unless set (or no budget)."""
    if context.max_accuracy_drop is None:
        return context
    if context.reference_accuracy is None:
        context = context.with_reference(context.evaluate(model))
    return context.with_selection_reference(model)


def elimination_sweep(model: nn.Module, context: CompressionContext, layer: str, *, step: int = 1,
                      samples: int = 1024) -> list[Point]:
    """Algorithm 1: for ``p = rank(X), rank(X) - step, ...`` eliminate ``layer`` down to ``p`` neurons and measure it.

    Stops after the first ``p`` whose accuracy on the selection split (``select``, else
    validation) leaves the context's budget (that point is kept) or at ``p = 1``. One point
    per ``p`` (descending): that accuracy (:func:`decision_accuracy`), energy (the context's objective), ``info`` with the plan and the Eq. 6
    residual. The SVD of ``X`` (the first ``samples`` training images) is computed once.
    With ``context.checkpoint`` set, the points are saved after each one and a run started
    again continues after the last (:mod:`~dnnergy.compress.checkpoint`).

    Example: ``elimination_sweep(model, context, "1", step=4)`` on a 64-16-10 MLP trained 3 epochs on
    ``digits`` (``CompressionContext.build(load_dataset("digits"), max_accuracy_drop=0.05)``) returns 4
    points with ``info["plan"]`` ``{"1": 14}``, ``{"1": 10}``, ``{"1": 6}``, ``{"1": 2}`` (14 = the rank of
    the hidden layer's input), each with its accuracy (a fraction) and energy (MAC-normalized on eyeriss);
    the last one left the budget.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise UserInputError(f"elimination_sweep: step must be a positive int (got {step!r})")
    context = _with_reference(context, model)
    checkpoint = checkpoint_of(context, "elimination_sweep", model, {"layer": layer, "step": step, "samples": samples})
    progress = checkpoint.load() if checkpoint is not None else None
    points = [Point.from_dict(d) for d in progress.state["points"]] if progress else []
    if progress and progress.state["done"]:
        return points
    builder = PlanBuilder(model, context.calibration(samples), [layer], samples=samples)
    for p in range(builder.rank(0) - step * len(points), 0, -step):  # the points measured before the checkpoint are skipped
        built = builder.build([p])
        point = _point(context, built, {layer: p}, context.selection_accuracy(built), residual=builder.residual([p]))
        points.append(point)
        if decision_accuracy(point) < context.selection_floor():
            break
        _save(checkpoint, {"points": [pt.to_dict() for pt in points], "done": False})
    _save(checkpoint, {"points": [pt.to_dict() for pt in points], "done": True})
    return points


def _save(checkpoint: Checkpoint | None, state: dict) -> None:
    if checkpoint is not None:
        checkpoint.save(state)


@dataclass(frozen=True, slots=True)
class Search:
    """What :func:`elimination_search` decided: the ``start`` (every neuron kept), the accepted plans
    in order (each within the budget) and the move that left it (``None`` if every layer reached one).

    Example: for the 64-16-10 MLP of :func:`elimination_search`, ``search.start.info["plan"] == {"1": 16}``
    and ``search.plan`` is the last accepted plan, e.g. ``{"1": 4}`` (neurons kept per layer).
    """

    start: Point
    accepted: tuple[Point, ...]
    stopped_by: Point | None

    @property
    def plan(self) -> dict[str, int]:
        """The last accepted plan (the original sizes when no move was accepted)."""
        return dict((self.accepted[-1] if self.accepted else self.start).info["plan"])


@dataclass(frozen=True, eq=False)
class _Proposal:
    """Builds one plan and scores its energy and output distortion (picklable: runs on any executor)."""

    builder: PlanBuilder
    context: CompressionContext
    reference: torch.Tensor
    scale: float

    def distortion(self, built: nn.Module) -> float:
        """Relative squared error of ``built``'s outputs on the calibration inputs."""
        with torch.no_grad():
            return float((built(self.builder.x).double() - self.reference).square().sum()) / self.scale

    def __call__(self, ps: list[int]) -> tuple[nn.Module, Point]:
        built = self.builder.build(ps)
        plan = dict(zip(self.builder.keys, ps))
        return built, _point(self.context, built, plan, None, distortion=self.distortion(built))


def elimination_search(model: nn.Module, context: CompressionContext, layers: Sequence[str], *, steps: int = 25,
                       samples: int = 1024, executor: Any = None) -> Search:
    """Algorithm 1 over several layers at once, steered by energy: the "After" rows of seed 002.

    Every round proposes, for each of ``layers`` (names and/or ``"inputs"``) with more
    than one neuron, ``p`` lowered by about ``n / steps``; each proposal is built
    (Algorithm 2 + Eq. 6, no retraining) and scored by energy saved (the context's
    objective) per distortion added (relative squared error of the model outputs on the
    ``samples`` calibration inputs, smooth where accuracy is not). The best proposal is
    then evaluated on the selection split (``select``, else validation): kept if within
    the budget; the first one past it ends
    the search, as in Algorithm 1. Rebuild the result with ``eliminate_plan(model,
    images, search.plan)``. A round's proposals run on ``executor`` (``"local"``,
    ``"ray"`` or an object with ``map``; :mod:`~dnnergy.explore.executors`). With
    ``context.checkpoint`` set, the accepted plans are saved after each round and a run
    started again continues from them (:mod:`~dnnergy.compress.checkpoint`).

    Example: ``elimination_search(model, context, ["1"], steps=4)`` with the model and context of
    :func:`elimination_sweep` accepts 3 plans in a few seconds and returns a :class:`Search` whose
    ``plan`` is ``{"1": 4}`` (4 of the 16 hidden neurons kept).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserInputError(f"elimination_search: steps must be a positive int (got {steps!r})")
    context.require("energy", "elimination_search")
    context = _with_reference(context, model)
    builder = PlanBuilder(model, context.calibration(samples), list(layers), samples=samples)
    keys, sizes, x = builder.keys, builder.sizes, builder.x
    with torch.no_grad():
        reference = model.eval()(x).double()
    scale = float(reference.square().sum()) or 1.0
    run = as_executor(executor)
    quiet = context if runs_here(executor) else context.replace(progress=None)
    checkpoint = checkpoint_of(context, "elimination_search", model, {"layers": list(layers), "steps": steps, "samples": samples})
    progress = checkpoint.load() if checkpoint is not None else None
    if progress is None:
        start, accepted = _point(context, model, dict(zip(keys, sizes)), context.selection_accuracy(model), distortion=0.0), []
    else:
        start, accepted = Point.from_dict(progress.state["start"]), [Point.from_dict(d) for d in progress.state["accepted"]]
        if progress.state["done"]:
            stopped = progress.state["stopped_by"]
            return Search(start, tuple(accepted), Point.from_dict(stopped) if stopped else None)
    now = accepted[-1] if accepted else start
    current = [now.info["plan"][key] for key in keys]
    builder.keep_only(current)

    def finish(stopped_by: Point | None) -> Search:
        _save(checkpoint, {"start": start.to_dict(), "accepted": [pt.to_dict() for pt in accepted], "done": True,
                           "stopped_by": stopped_by.to_dict() if stopped_by else None})
        return Search(start, tuple(accepted), stopped_by)

    while True:
        plans = []
        for i in range(len(keys)):
            if current[i] <= 1:
                continue
            ps = list(current)
            ps[i] = max(1, ps[i] - max(1, sizes[i] // steps))
            plans.append(ps)
        scored = run.map(_Proposal(builder, quiet, reference, scale), plans)
        proposals = [(ps, built, point) for ps, (built, point) in zip(plans, scored)]
        if not proposals:
            return finish(None)
        ps, built, trial = max(proposals, key=lambda c: (now.energy - c[2].energy)
                               / max(c[2].info["distortion"] - now.info["distortion"], 1e-12))
        trial = _with_accuracy(context, trial, context.selection_accuracy(built))
        if decision_accuracy(trial) < context.selection_floor():  # as Algorithm 1: stop at the first degradation past the budget
            return finish(trial)
        current, now = ps, trial
        accepted.append(trial)
        builder.keep_only(current)
        _save(checkpoint, {"start": start.to_dict(), "accepted": [pt.to_dict() for pt in accepted], "done": False})


def _hidden_linear(model: nn.Module) -> list[str]:
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if len(linears) < 2:
        raise UserInputError("eliminate needs layer=...: the model has no hidden fully connected layer")
    return linears[:1]


def _check(*, layer: tuple[str, ...], plan: dict[str, int] | None, step: int, steps: int, samples: int) -> None:
    require_positive("eliminate", step=step, steps=steps, samples=samples, **{f"plan[{k!r}]": v for k, v in (plan or {}).items()})


@register_method("eliminate", check=_check)
def eliminate(model: nn.Module, context: CompressionContext, *, layer: tuple[str, ...] = (), plan: dict[str, int] | None = None,
              step: int = 5, steps: int = 25, samples: int = 1024) -> Outcome:
    """Zhang, Davoodi and Hu (seed 002): keep representative neurons (SVD + pivoted QR), refit the next layer, no retraining.

    ``plan`` ({layer or "inputs": neurons kept}) is applied as given. Otherwise, for one
    ``layer`` (default: the first hidden Linear) Algorithm 1 sweeps ``p`` down in steps of
    ``step`` and keeps the fewest neurons within the budget; for several (``"inputs"``
    = the input features read by the first Linear) the energy-guided search lowers one
    layer by about n / ``steps`` per round. ``samples``: calibration training images.
    """
    images = context.calibration(samples)
    steps_taken, tried = [], []
    if plan is None:
        context.require("max_accuracy_drop", "eliminate")
        layers = list(layer) or _hidden_linear(model)
        if len(layers) == 1:
            tried = elimination_sweep(model, context, layers[0], step=step, samples=samples)
            floor = _with_reference(context, model).selection_floor()
            ok = [pt for pt in tried if decision_accuracy(pt) >= floor]
            plan = {layers[0]: int(min(ok, key=lambda pt: pt.strength).strength)} if ok else None
        else:
            search = elimination_search(model, context, layers, steps=steps, samples=samples)
            tried = [*search.accepted, *([search.stopped_by] if search.stopped_by else [])]
            plan = search.plan if search.accepted else None
        floor = _with_reference(context, model).selection_floor()
        steps_taken = [Step(i, pt.layer, pt.strength, decision_accuracy(pt), decision_accuracy(pt) >= floor)
                       for i, pt in enumerate(tried)]
        if plan is None:
            return Outcome(model, f"no plan over {', '.join(layers)} stays within the accuracy budget", steps_taken,
                           {"tried": [pt.to_dict() for pt in tried]})
    pruned, info = eliminate_plan(model, images, plan, samples=samples)
    summary = ", ".join(f"{key}: {info['sizes'][key]} -> {kept}" for key, kept in info["plan"].items())
    return Outcome(pruned, summary, steps_taken, {**info, "tried": [pt.to_dict() for pt in tried]})

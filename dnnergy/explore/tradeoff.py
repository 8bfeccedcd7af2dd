"""Energy / accuracy / size / MACs / latency trade-offs of a registered method's strength.

A sweep is a list of independent tasks (the model, the context, a method *name*, its
parameters and one strength), run through an ``executor`` with a
``concurrent.futures``-style ``map(fn, iterable)``. The default runs them one after the
other in this process; a ``ProcessPoolExecutor`` (or a Ray-backed executor) works too,
because a task holds only picklable things: the method is looked up by name in the
worker. Give a process pool ``mp_context=multiprocessing.get_context("spawn")``: a
child *forked* from a process whose torch thread pool is running can hang. Each task runs the method without an accuracy budget (a sweep wants every
strength as asked) and returns the compressed model's :class:`~dnnergy.metrics.Point`,
timed at batch 1 on this CPU. Example::

    points = tradeoff(model, context.replace(fine_tuning=None), "magnitude", [0.0, 0.5, 0.9])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from torch import nn

from ..compress import CompressionContext, get_method
from ..compress.checkpoint import Checkpoint, checkpoint_of
from ..errors import UserInputError
from ..metrics import Point, model_latency
from .executors import LocalExecutor, as_executor, runs_here

__all__ = ["LocalExecutor", "Sweep", "tradeoff", "layer_curves", "best_layer"]


class Sweep(list):
    """The points of a sweep: a plain ``list`` of :class:`Point` that prints as a table with its Pareto front marked
    (``str()``: text; ``_repr_html_``: HTML for Jupyter; :mod:`dnnergy.report.display`)."""

    def __str__(self) -> str:
        from ..report.display import text

        return text(self)

    def _repr_html_(self) -> str:
        from ..report.display import html

        return html(self)


@dataclass(frozen=True, slots=True)
class _Task:
    """One sweep point: everything a worker needs, picklable (the method travels by name)."""

    model: nn.Module
    context: CompressionContext
    method: str
    params: Mapping[str, Any]
    strength: float
    layer: str
    before: Point
    latency: bool


def _run(task: _Task) -> Point:
    method = get_method(task.method)
    params = {**task.params, method.strength: task.strength, **({"layers": (task.layer,)} if task.layer else {})}
    result = method.apply(task.model, task.context, params, before=task.before)
    latency = model_latency(result.model, task.context.examples[:1]) if task.latency else None
    return dataclasses.replace(result.record.after, label=task.method, strength=task.strength, layer=task.layer,
                               latency_s=latency, info={"summary": result.record.summary})


def _tasks(model: nn.Module, context: CompressionContext, method: str, strengths: Sequence[float], layers: Sequence[str],
           params: Mapping[str, Any] | None, latency: bool, executor: Any) -> list[_Task]:
    spec = get_method(method)
    if spec.strength is None:
        raise UserInputError(f"tradeoff: method {method!r} has no strength to sweep (sweepable: methods registered with strength=)")
    if any(layers) and not spec.takes("layers"):
        raise UserInputError(f"layer_curves: method {method!r} cannot be limited to layers (it has no 'layers' parameter)")
    values = [float(s) for s in strengths]
    if not values:
        raise UserInputError("tradeoff: strengths must list at least one value, e.g. (0.0, 0.5, 0.9)")
    free = context.replace(max_accuracy_drop=None, reference_accuracy=None, checkpoint=None)  # the sweep checkpoints, not its tasks
    if not runs_here(executor):  # tasks may cross processes: a progress display stays in this one
        free = free.replace(progress=None)
    before = free.measure(model, label="before")
    return [_Task(model, free, method, dict(params or {}), s, layer, before, latency) for layer in layers for s in values]


def _identity(tasks: Sequence[_Task]) -> dict[str, Any]:
    """What a sweep's checkpoint is tied to besides the model and the context: the method, its parameters, the tasks."""
    first = tasks[0]
    return {"method": first.method, "params": dict(first.params), "latency": first.latency,
            "tasks": [[task.layer, task.strength] for task in tasks]}


def _sweep(tasks: Sequence[_Task], executor: Any, checkpoint: Checkpoint | None) -> list[Point]:
    """Run ``tasks`` on ``executor``; with a ``checkpoint``, skip the points it holds and save after every finished one
    (an executor with ``workers`` runs that many at a time between saves)."""
    run = as_executor(executor)
    if checkpoint is None:
        return list(run.map(_run, tasks))
    progress = checkpoint.load()
    points = [Point.from_dict(d) for d in progress.state["points"]] if progress else []
    chunk = max(1, getattr(run, "workers", 1))
    for start in range(len(points), len(tasks), chunk):
        points.extend(run.map(_run, tasks[start:start + chunk]))
        checkpoint.save({"points": [p.to_dict() for p in points]})
    return points


def tradeoff(model: nn.Module, context: CompressionContext, method: str, strengths: Sequence[float], *,
             params: Mapping[str, Any] | None = None, executor: Any = None, latency: bool = True) -> list[Point]:
    """Compress a copy of ``model`` with ``method`` at each strength and measure it: one :class:`Point` each.

    ``strength`` is the method's registered strength parameter (sparsity for
    ``magnitude``, channel ratio for ``structured``, threshold for ``activation``);
    ``params`` are its other keyword parameters. Points carry validation and test
    accuracy, energy (the context's objective), counts, bytes and (``latency``) batch-1
    CPU seconds. ``executor`` is ``"local"`` (default: :class:`LocalExecutor`, serial, which
    keeps the context's progress callback), ``"ray"`` or any object with ``map(fn, tasks)``
    (:mod:`~dnnergy.explore.executors`); tasks that may leave this process go without the
    progress callback, so they pickle. The input model is not changed. With
    ``context.checkpoint`` set, the points are saved as they finish (a process pool's
    ``workers`` at a time) and a sweep started again skips the ones saved. Accuracies are
    fractions in [0, 1]; energies in the objective's unit.

    Example: ``tradeoff(model, context, "magnitude", [0.5, 0.9], latency=False)`` on a 64-16-10 MLP
    (1,184 weights) and a ``digits`` context gives two points, with 592 and 118 non-zero weights and
    energies in MAC-normalized units (``CompressionContext.build``'s eyeriss default).
    """
    tasks = _tasks(model, context, method, strengths, [""], params, latency, executor)
    return Sweep(_sweep(tasks, executor, checkpoint_of(context, "tradeoff", model, _identity(tasks))))


def layer_curves(model: nn.Module, context: CompressionContext, method: str, strengths: Sequence[float], *,
                 layers: Sequence[str], params: Mapping[str, Any] | None = None, executor: Any = None,
                 latency: bool = True) -> dict[str, list[Point]]:
    """For each layer separately, sweep the strength with only that layer compressed (seed 002's per-layer curves).

    Runs ``method`` with ``layers=(layer,)``; returns ``{layer: points}`` in the order of
    ``layers``. All (layer, strength) tasks go to ``executor`` at once.

    Example: ``layer_curves(model, context, "magnitude", [0.5, 0.9], layers=["1", "3"], latency=False)`` with the
    model and context of :func:`tradeoff` gives ``{"1": [2 points], "3": [2 points]}``; pruning layer ``"1"``
    (1,024 weights) to 0.9 leaves 262 non-zero weights, pruning ``"3"`` (160) leaves 1,040.
    """
    if not layers:
        raise UserInputError("layer_curves: name at least one layer (module path such as 'fc1')")
    tasks = _tasks(model, context, method, strengths, list(layers), params, latency, executor)
    points = _sweep(tasks, executor, checkpoint_of(context, "layer_curves", model, _identity(tasks)))
    per = len(points) // len(layers)
    return {layer: points[i * per:(i + 1) * per] for i, layer in enumerate(layers)}


def best_layer(curves: Mapping[str, Sequence[Point]], min_accuracy: float) -> tuple[str, Point] | None:
    """Which layer to simplify for a target accuracy: the lowest-energy point with validation accuracy >= ``min_accuracy``.

    Returns ``(layer, point)``, or ``None`` when no point reaches the accuracy. Ties go to
    the layer listed first. As in seed 002, the answer changes with the target accuracy.

    Example: with the curves of :func:`layer_curves`, ``best_layer(curves, 0.0)`` is ``("1", <the sparsity 0.9
    point of layer "1">)``, the lowest energy overall; ``best_layer(curves, 1.01)`` is ``None`` (accuracy is a
    fraction: no point reaches 101 %).
    """
    best: tuple[str, Point] | None = None
    for layer, points in curves.items():
        for point in points:
            if point.accuracy >= min_accuracy and (best is None or point.energy < best[1].energy):
                best = (layer, point)
    return best

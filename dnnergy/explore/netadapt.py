"""NetAdapt (Yang et al., ECCV 2018): shrink a trained network layer by layer until a resource budget is met.

Algorithm 1 of the paper. Each iteration ``i`` lowers the resource target by
``step * decay**i`` of the original resource (never below the budget). For every
layer (every group of channels the dependency graph couples, rooted at a Conv or Linear
layer) a *proposal* removes just enough filters or neurons, the lowest-L2-norm ones,
physically and with their dependents (:class:`~dnnergy.compress.removal.ChannelSurgeon`),
to reach the target; each proposal is fine-tuned briefly (short-term) and the one with
the best accuracy on the selection split is kept. The loop stops once the resource is
within the budget; the result is then fine-tuned with the context's policy (long-term).

The resource is pluggable (:func:`resource_objective`): estimated energy (any preset or
YAML hardware), dense MACs, weights, or latency measured on this machine through a
per-layer lookup table (:class:`~dnnergy.metrics.LatencyTable`). Proposals run through
an executor (:mod:`~dnnergy.explore.executors`: ``local`` or ``ray``), and every
iteration is kept in a :class:`History` (plain data, JSON) for plots and for resuming:
``netadapt_search(model_after, context, budget, history=history)`` continues exactly as
the uninterrupted run would. Example::

    adapted = netadapt_search(model, context, Budget("macs", 0.5))
    adapted.history.iterations[-1].resource <= adapted.history.budget
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from torch import nn
from torch.utils.data import TensorDataset

from ..compress import CompressionContext, Event, Outcome, Step, register_method
from ..compress.checkpoint import Progress, checkpoint_of, model_tensors, restore_model
from ..compress.importance import norm_importance
from ..compress.removal import ChannelGroup, ChannelSurgeon
from ..compress.structured import lowest_channels
from ..errors import UserInputError
from ..metrics import LatencyTable, MacsObjective, WeightsObjective, energy_objective
from .executors import as_executor, runs_here

__all__ = ["METRICS", "Budget", "Proposal", "Iteration", "History", "Adaptation", "resource_objective",
           "netadapt_search", "netadapt"]

#: Resource metrics a budget can name.
METRICS = ("energy", "latency", "macs", "weights")


@dataclass(frozen=True, slots=True)
class Budget:
    """A resource budget: ``metric`` (one of :data:`METRICS`) at ``value``, a fraction of the original model's
    resource (``absolute=False``) or in the metric's own unit (``absolute=True``).

    ``Budget.parse("energy=0.5")`` is half the original energy. Example: ``Budget.parse("macs=0.5")`` is
    ``Budget(metric='macs', value=0.5, absolute=False)``; its ``.target(1184.0)`` is 592.0 MACs.
    """

    metric: str
    value: float
    absolute: bool = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise UserInputError(f"budget: metric must be one of {', '.join(METRICS)} (got {self.metric!r})")
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value) \
                or self.value <= 0 or (not self.absolute and self.value > 1):
            expected = "a positive number" if self.absolute else "a fraction of the original in (0, 1]"
            raise UserInputError(f"budget {self.metric}: expected {expected} (got {self.value!r})")

    @classmethod
    def parse(cls, text: str, *, absolute: bool = False) -> "Budget":
        """``"metric=value"``, e.g. ``"latency=0.5"`` or ``"macs=0.25"``. Example: ``Budget.parse("energy=0.5").value == 0.5``."""
        metric, sep, value = str(text).partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or number is None:
            raise UserInputError(f"--budget takes metric=value with metric one of {', '.join(METRICS)}, e.g. energy=0.5 "
                                 f"(got {text!r})")
        return cls(metric.strip(), number, absolute)

    def target(self, original: float) -> float:
        """The budget in the metric's unit, given the original model's resource."""
        return self.value if self.absolute else self.value * original


@dataclass(frozen=True, slots=True)
class Proposal:
    """One layer's proposal in one iteration: ``removed`` of its ``size`` channels go, leaving ``resource``;
    ``accuracy`` on the selection split after short-term fine-tuning."""

    layer: str
    size: int
    removed: int
    resource: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class Iteration:
    """One NetAdapt iteration: its ``target`` resource, every layer's proposal, and the one kept
    (``layer``, the channel ``indices`` removed, numbered in that iteration's model)."""

    index: int
    target: float
    layer: str
    indices: tuple[int, ...]
    resource: float
    accuracy: float
    proposals: tuple[Proposal, ...]


@dataclass(slots=True)
class History:
    """A NetAdapt run as plain data: the metric and its unit, the absolute ``budget``, the ``original``
    resource and selection accuracy, the schedule, every :class:`Iteration`, and why it ``stopped``
    (``""`` while running). ``final`` holds the resource and accuracies after long-term fine-tuning;
    ``seed`` and ``version`` are the run's seed and the dnnergy version that ran it.

    Example (a run before its first iteration; :func:`netadapt_search` shows a whole run):

    >>> history = History("macs", "MACs", budget=592.0, original=1184.0, accuracy=0.9, step=0.1, decay=1.0, split="val")
    >>> history.resource, history.met  # no iteration yet: the original resource, in MACs
    (1184.0, False)
    >>> History.from_dict(history.to_dict()) == history, '"budget": 592.0' in history.to_json()
    (True, True)
    """

    metric: str
    unit: str
    budget: float
    original: float
    accuracy: float
    step: float
    decay: float
    split: str
    iterations: list[Iteration] = field(default_factory=list)
    stopped: str = ""
    final: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    version: str = ""

    @property
    def resource(self) -> float:
        """The resource after the last iteration (the original before the first)."""
        return self.iterations[-1].resource if self.iterations else self.original

    @property
    def met(self) -> bool:
        """True when the last iteration's resource is within the budget."""
        return self.resource <= self.budget

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists, dicts, numbers, strings), as :meth:`to_json` writes it."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text (what a ``--json`` run writes)."""
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        """Inverse of :meth:`to_dict` (resuming a run, reading a saved history)."""
        iterations = [Iteration(**{**it, "indices": tuple(it["indices"]),
                                   "proposals": tuple(Proposal(**p) for p in it["proposals"])}) for it in data["iterations"]]
        return cls(**{**data, "iterations": iterations})


@dataclass(frozen=True, eq=False)
class Adaptation:
    """What :func:`netadapt_search` returns: the adapted ``model`` (before long-term fine-tuning) and its ``history``.

    Example: see :func:`netadapt_search` (``adaptation.model`` is the shrunk copy, ``adaptation.history.met`` True).
    """

    model: nn.Module
    history: History


def resource_objective(metric: str, context: CompressionContext, *, hardware: Any = None, dataflow: str = "row_stationary",
                       latency_batch: int = 1, table: Any = None) -> Callable[[nn.Module], float]:
    """The ``model -> float`` objective of ``metric`` (with a ``unit``).

    ``energy``: the context's objective, or one image's energy on ``hardware``/``dataflow``
    when given (any preset or YAML file); ``macs``: dense MACs of one image; ``weights``:
    weights of the MAC layers; ``latency``: seconds predicted by the measured per-layer
    table (``table``: a path, default the cache) at batch ``latency_batch``. Units: the hardware's
    (pJ or MAC-normalized), MACs, weights, seconds. Example: ``resource_objective("macs", context)`` on
    a ``digits`` context gives 1184.0 MACs (unit ``"MACs"``) for
    ``nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))`` (64 x 16 + 16 x 10).
    """
    example = context.examples
    if metric == "energy":
        if hardware is None:
            return context.require("energy", "netadapt (metric 'energy')")
        return energy_objective(example, hardware, dataflow, per_image=True)
    if metric == "macs":
        return MacsObjective(example[:1], nonzero=False)
    if metric == "weights":
        return WeightsObjective(example[:1])
    if metric == "latency":
        if isinstance(latency_batch, bool) or not isinstance(latency_batch, int) or latency_batch < 1:
            raise UserInputError(f"netadapt: latency_batch must be a positive int (got {latency_batch!r})")
        x = example[:latency_batch]
        if len(x) < latency_batch:
            x = (latency_batch, *example.shape[1:])
        return LatencyTable(x, table)
    raise UserInputError(f"netadapt: metric must be one of {', '.join(METRICS)} (got {metric!r})")


@dataclass(frozen=True, eq=False)
class _ShortTerm:
    """One proposal's short-term fine-tuning and its accuracy on ``split`` (picklable: runs on any executor)."""

    context: CompressionContext
    split: str

    def __call__(self, model: nn.Module) -> tuple[float, nn.Module]:
        self.context.fine_tune(model)
        return self.context.evaluate(model, self.split), model


def _short_term_context(context: CompressionContext, samples: int) -> CompressionContext:
    """``context`` fine-tuning one epoch on the first ``samples`` training images (``None`` policy: no fine-tuning)."""
    if context.fine_tuning is None or samples == 0:
        return context.replace(fine_tuning=None)
    train = context.data.train
    data = dataclasses.replace(context.data, train=TensorDataset(*(t[:samples] for t in train.tensors)))
    return context.replace(data=data, fine_tuning=dataclasses.replace(context.fine_tuning, epochs=1))


class _Layer:
    """Builds the models with ``n`` of one group's lowest-L2 channels removed (memoised) and finds the smallest
    ``n`` whose resource is at most a target."""

    def __init__(self, model: nn.Module, inputs: Any, group: ChannelGroup, objective: Callable[[nn.Module], float]):
        self.model, self.inputs, self.group, self.objective = model, inputs, group, objective
        self.scores = norm_importance(group, 2.0)
        self.built: dict[int, tuple[nn.Module, float]] = {}

    def indices(self, n: int) -> list[int]:
        return lowest_channels(self.scores, n)

    def build(self, n: int) -> tuple[nn.Module, float]:
        if n not in self.built:
            surgeon = ChannelSurgeon(copy.deepcopy(self.model), self.inputs)
            surgeon.remove(self.group.root, self.indices(n))
            self.built[n] = (surgeon.model, float(self.objective(surgeon.model)))
        return self.built[n]

    def smallest(self, target: float, hint: int) -> int | None:
        """The fewest channels to remove for ``resource <= target`` (searched around ``hint``), or ``None``."""
        top = self.group.size - 1
        ok = lambda n: self.build(n)[1] <= target  # noqa: E731  (a one-line predicate)
        hint = min(max(hint, 1), top)
        if ok(hint):
            if hint == 1 or not ok(hint - 1):
                return hint
            low, high = 0, hint - 1  # ok(high); 0 (nothing removed) is never ok here
        else:
            if not ok(top):
                return None
            low, high = hint, top
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if ok(middle) else (middle, high)
        return high


def _hint(values: dict[str, float] | None, group: ChannelGroup, cut: float) -> int:
    """Channels to remove for a cut of ``cut`` if the group's layers shrank in proportion (a first guess);
    ``values`` is the objective per module (``None``: no per-module view, guess 1)."""
    if values is None:
        return 1
    share = sum(values.get(member.name, 0.0) for member in group.members) / group.size
    return math.ceil(cut / share) if share > 0 else group.size - 1


def _smallest_network(model: nn.Module, inputs: Any, ignore: Sequence[str], objective: Callable[[nn.Module], float]) -> float:
    """The resource with every prunable group down to one channel: no budget below it is reachable."""
    surgeon = ChannelSurgeon(copy.deepcopy(model), inputs)
    for group in surgeon.groups(ignore):
        if group.size > 1:
            surgeon.remove(group.root, list(range(1, group.size)))
    return float(objective(surgeon.model))


def netadapt_search(model: nn.Module, context: CompressionContext, budget: Budget, *, objective: Any = None,
                    step: float = 0.1, decay: float = 1.0, short_term: int = 1024, ignore: Sequence[str] = (),
                    max_iterations: int = 100, executor: Any = None, history: History | None = None) -> Adaptation:
    """NetAdapt's iterations on a copy of ``model`` until ``budget`` is met; no long-term fine-tuning (see :func:`netadapt`).

    ``objective``: the resource (default :func:`resource_objective` of the budget's metric);
    ``step``: the resource removed per iteration, a fraction of the original, shrinking by
    ``decay`` each iteration; ``short_term``: training images of each proposal's one-epoch
    fine-tuning (0: none; the context's policy otherwise, with its seed, so runs repeat);
    ``ignore``: modules never pruned; ``executor``: runs the proposals (``"local"``,
    ``"ray"`` or an object with ``map``). ``history`` (with ``model`` the adapted model it
    ended with) resumes a run. Raises :class:`UserInputError` when the budget is below the
    smallest network the layers can reach. A run that cannot meet it otherwise (a
    target no layer reaches, ``max_iterations``) says why in ``history.stopped``. Each
    iteration is reported to the context's ``progress`` as an ``"iterated"`` event. With
    ``context.checkpoint`` set, the history and the adapted model are saved after each
    iteration; a run started again rebuilds the model from the history (channels removed
    again, weights loaded) and continues (:mod:`~dnnergy.compress.checkpoint`).

    Example (halve the MACs of an untrained MLP on ``digits``: 64 x 16 + 16 x 10 = 1184 MACs, and
    64 x 8 + 8 x 10 = 592 once 8 of the 16 hidden units are gone):

    >>> import dnnergy, torch.nn as nn
    >>> from dnnergy.data import load_dataset
    >>> context = dnnergy.CompressionContext.build(load_dataset("digits"), fine_tuning=None)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    >>> adaptation = netadapt_search(model, context, Budget.parse("macs=0.5"), short_term=0)
    >>> history = adaptation.history
    >>> history.original, history.budget, history.resource, history.unit, history.met, history.stopped
    (1184.0, 592.0, 592.0, 'MACs', True, 'budget met')
    >>> adaptation.model[1].out_features
    8
    """
    if not 0 < step < 1 or not 0 < decay <= 1:
        raise UserInputError(f"netadapt: step must be in (0, 1) and decay in (0, 1] (got {step!r}, {decay!r})")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise UserInputError(f"netadapt: max_iterations must be a positive int (got {max_iterations!r})")
    if isinstance(short_term, bool) or not isinstance(short_term, int) or short_term < 0:
        raise UserInputError(f"netadapt: short_term must be an int >= 0 training images (got {short_term!r})")
    objective = objective or resource_objective(budget.metric, context)
    split = getattr(context, "selection_split", "val")
    checkpoint = checkpoint_of(context, "netadapt", model, {
        "budget": dataclasses.asdict(budget), "unit": getattr(objective, "unit", ""), "step": step, "decay": decay,
        "short_term": short_term, "ignore": list(ignore), "max_iterations": max_iterations})
    model = copy.deepcopy(model).eval()
    inputs = context.examples[:1]
    progress = checkpoint.load() if checkpoint is not None else None
    if progress is not None:  # the checkpoint wins over a history given
        history = History.from_dict(progress.state["history"])
        model = _replay(model, inputs, history, progress)
        if progress.state["done"]:
            return Adaptation(model, history)
    if history is None:
        original = float(objective(model))
        from .. import __version__

        history = History(budget.metric, getattr(objective, "unit", ""), budget.target(original), original,
                          context.evaluate(model, split), step, decay, split, seed=context.seed, version=__version__)
    else:
        if history.metric != budget.metric:
            raise UserInputError(f"netadapt: cannot resume a {history.metric} history with a {budget.metric} budget")
        history = History.from_dict(history.to_dict())  # a copy; its budget and schedule win over the arguments
        history.stopped = ""
    smallest = _smallest_network(model, inputs, ignore, objective)
    if smallest > history.budget:
        raise UserInputError(f"netadapt: the {budget.metric} budget {history.budget:.4g} {history.unit} is below the smallest "
                             f"network the layers can reach ({smallest:.4g} {history.unit}, one channel left in every layer)")
    quiet = context if runs_here(executor) else context.replace(progress=None)
    tune = _ShortTerm(_short_term_context(quiet, short_term), split)
    run = as_executor(executor)
    while not history.met:
        index = len(history.iterations)
        if index >= max_iterations:
            history.stopped = f"max_iterations ({max_iterations}) reached before the budget"
            break
        current = history.resource
        cut = history.original * history.step * history.decay ** index
        layers = [_Layer(model, inputs, group, objective) for group in ChannelSurgeon(model, inputs).groups(ignore)]
        values = objective.by_module(model) if hasattr(objective, "by_module") else None
        chosen: list[tuple[_Layer, int]] = []
        for _ in range(5):  # NetAdapt's target; halved when no single layer can reach it
            target = max(history.budget, current - cut)
            chosen = [(layer, n) for layer in layers if layer.group.size > 1
                      for n in [layer.smallest(target, _hint(values, layer.group, current - target))] if n]
            if chosen:
                break
            cut /= 2
        if not chosen:
            history.stopped = f"no single layer can lower the {budget.metric} below {target:.4g} {history.unit}"
            break
        results = list(run.map(tune, [copy.deepcopy(layer.build(n)[0]) for layer, n in chosen]))
        proposals = tuple(Proposal(layer.group.root, layer.group.size, n, layer.build(n)[1], accuracy)
                          for (layer, n), (accuracy, _) in zip(chosen, results))
        best = max(range(len(chosen)), key=lambda i: proposals[i].accuracy)  # ties: the first layer in module order
        layer, n = chosen[best]
        model = results[best][1].eval()
        iteration = Iteration(index, target, layer.group.root, tuple(layer.indices(n)), float(objective(model)),
                              proposals[best].accuracy, proposals)
        history.iterations.append(iteration)
        if checkpoint is not None:
            checkpoint.save(*_state(history, model, done=False))
        context.notify(Event("iterated", f"iteration {index}: {iteration.layer} -{len(iteration.indices)}, {budget.metric} "
                                         f"{iteration.resource:.4g} {history.unit} (budget {history.budget:.4g}), "
                                         f"accuracy {iteration.accuracy:.2%}", accuracy=iteration.accuracy))
    else:
        history.stopped = "budget met"
    if checkpoint is not None:
        checkpoint.save(*_state(history, model, done=True))
    return Adaptation(model, history)


def _state(history: History, model: nn.Module, *, done: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A checkpoint of the search: the history (plain data) and the adapted model's weights and transforms."""
    records, tensors = model_tensors(model, "model/")
    return {"history": history.to_dict(), "model": records, "done": done}, tensors


def _replay(model: nn.Module, inputs: Any, history: History, progress: Progress) -> nn.Module:
    """``model`` with every iteration's channels of ``history`` removed again, then the checkpoint's weights loaded."""
    for iteration in history.iterations:
        surgeon = ChannelSurgeon(model, inputs)
        surgeon.remove(iteration.layer, list(iteration.indices))
        model = surgeon.model
    return restore_model(model, progress.state["model"], progress.tensors, "model/").eval()


def _check(*, metric: str, budget: float, absolute: bool, step: float, decay: float, short_term: int,
           ignore: tuple[str, ...], max_iterations: int, hardware: str | None, latency_batch: int,
           latency_table: str | None, executor: str, ray_address: str | None) -> None:
    Budget(metric, budget, absolute)
    if not 0 < step < 1 or not 0 < decay <= 1:
        raise UserInputError(f"netadapt: step must be in (0, 1) and decay in (0, 1] (got {step!r}, {decay!r})")
    if executor not in ("local", "ray"):
        raise UserInputError(f"netadapt: executor must be 'local' or 'ray' (got {executor!r})")


@register_method("netadapt", strength="budget", check=_check)
def netadapt(model: nn.Module, context: CompressionContext, *, metric: str = "energy", budget: float = 0.5,
             absolute: bool = False, step: float = 0.1, decay: float = 1.0, short_term: int = 1024,
             ignore: tuple[str, ...] = (), max_iterations: int = 100, hardware: str | None = None, latency_batch: int = 1,
             latency_table: str | None = None, executor: str = "local", ray_address: str | None = None) -> Outcome:
    """NetAdapt (Yang et al., ECCV 2018): remove filters/neurons layer by layer until ``metric`` is within ``budget``.

    ``metric``: ``energy`` (the context's, or on ``hardware``), ``latency`` (measured
    per-layer table at batch ``latency_batch``, in the file ``latency_table``, default the
    cache's), ``macs`` or ``weights``; ``budget``: a
    fraction of the original (``absolute``: in the metric's unit); ``step``: resource cut
    per iteration as a fraction of the original, times ``decay`` each iteration;
    ``short_term``: training images of each proposal's one-epoch fine-tuning; proposals
    run on ``executor`` (``local`` or ``ray``, at ``ray_address``). Fine-tuned with the
    context's policy at the end. ``info["history"]`` is the whole run.
    """
    objective = resource_objective(metric, context, hardware=hardware, latency_batch=latency_batch, table=latency_table)
    runner = as_executor(executor, address=ray_address)
    try:
        adapted = netadapt_search(model, context, Budget(metric, budget, absolute), objective=objective, step=step,
                                  decay=decay, short_term=short_term, ignore=ignore, max_iterations=max_iterations,
                                  executor=runner)
    finally:  # a Ray instance the method started stops with it (a cluster it joined keeps running)
        getattr(runner, "shutdown", lambda: None)()
    history = adapted.history
    tuned = context.fine_tune(adapted.model)
    history.final = {"resource": float(objective(adapted.model)), "accuracy": context.evaluate(adapted.model, history.split)}
    short_tuned = context.fine_tuning is not None and short_term > 0
    sizes = [{p.layer: p.size for p in it.proposals}[it.layer] for it in history.iterations]
    steps = [Step(it.index, it.layer, len(it.indices) / size, it.accuracy, True, short_tuned)
             for it, size in zip(history.iterations, sizes)]
    summary = (f"{metric} {history.original:.4g} -> {history.final['resource']:.4g} {history.unit} "
               f"(budget {history.budget:.4g}, {'met' if history.final['resource'] <= history.budget else 'NOT met'}) "
               f"in {len(history.iterations)} iteration(s); {history.stopped}" + (", fine-tuned" if tuned else ""))
    return Outcome(adapted.model, summary, steps, {"history": history.to_dict()})

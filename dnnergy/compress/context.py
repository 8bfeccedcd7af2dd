"""``CompressionContext``: everything a compression method needs besides the model.

One context serves every method and every stage of a chain: the data splits, how a
model is evaluated, the accuracy budget, the fine-tuning policy (and the loss it trains
with), the objective that steers and measures energy, an example batch, the seed and a
progress callback. Methods read it; they never build their own data, energy function or
fine-tuning loop, so the CLI, the demo, the benchmarks and library users drive every
method the same way::

    data = dnnergy.data.load_dataset("mnist")
    context = CompressionContext.build(data, hardware="eyeriss", max_accuracy_drop=0.01)
    result = dnnergy.compress.run(model, "magnitude", context, sparsity=(0.5, 0.8, 0.9))
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from torch import Tensor, nn

from ..data import Dataset
from ..errors import UserInputError
from ..metrics import Point, energy_objective, model_counts, model_latency
from ..train import FINE_TUNE, Loss, TrainConfig, TrainHook, evaluate, fine_tune
from .transforms import Transforms

__all__ = ["Event", "CompressionContext"]


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    """Something a method did that a progress display or a benchmark may want to see.

    ``kind`` is ``"evaluated"`` (a validation accuracy was measured: ``accuracy``, a fraction) or
    ``"fine_tuned"`` (``model`` was just retrained); ``message`` is one human line.
    Example: ``Event("evaluated", "validation accuracy 97.20%", accuracy=0.972)``; see
    :class:`CompressionContext` for a ``progress`` callback that collects them.
    """

    kind: str
    message: str
    accuracy: float | None = None
    model: nn.Module | None = None


@dataclass(frozen=True, eq=False)
class CompressionContext:
    """Data, evaluation, budget, fine-tuning policy, objective, example, seed and progress for methods.

    * ``data``: a :class:`~dnnergy.data.Dataset` (train / val / test splits, and ``select``
      when the data set has one). Methods calibrate on ``train``; a method taking a few
      decisions (a schedule's steps) takes them on ``val``; a search taking many accept
      decisions takes them on the selection split (:attr:`selection_split`: ``select``,
      or ``val`` when the data set has none) against :meth:`selection_floor`, so the
      budget checked on ``val`` is measured on images no decision has seen; ``test`` is
      only reported.
    * ``energy``: the objective that steers and measures (any ``model -> float`` with a
      ``unit``, e.g. :func:`~dnnergy.metrics.energy_objective`); ``None`` leaves energy out.
    * ``max_accuracy_drop``: the budget, a fraction of validation accuracy (0.01 = one
      point) below the reference; ``None`` = no budget (sweeps run every strength as asked).
    * ``fine_tuning``: the :class:`~dnnergy.train.TrainConfig` of every fine-tuning run
      (its seed is replaced by ``seed``), or ``None`` to never retrain; ``loss_fn`` its loss.
    * ``example``: a batch of inputs for counts and latency (default: 32 validation images).
    * ``progress``: called with an :class:`Event` for every evaluation and fine-tuning.
    * ``reference_accuracy``: the validation accuracy the budget is measured from; methods
      and chains set it from the model they start with (``selection_reference``: the same
      on the ``select`` split).
    * ``origin``: the model a compression or a chain started from (set by ``compress.run``;
      never modified), e.g. the default teacher of ``distill`` in ``structured,distill``.
    * ``checkpoint``: a file where a long run (``eap``, ``eliminate``, ``netadapt``, a
      trade-off sweep) saves its progress after each finished step and resumes from when it
      exists (:mod:`~dnnergy.compress.checkpoint`); ``None``: no checkpoint.

    Accuracies are fractions in [0, 1] (0.01 = one percentage point); energies are in the
    objective's ``unit`` (pJ, or MAC-normalized on ``eyeriss``).

    Example (the bundled 8x8 ``digits`` have no ``select`` split, so searches decide on ``val``):

    >>> import torch.nn as nn
    >>> from dnnergy.data import load_dataset
    >>> events = []
    >>> context = CompressionContext.build(load_dataset("digits"), max_accuracy_drop=0.02, fine_tuning=None,
    ...                                    progress=events.append)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    >>> accuracy = context.evaluate(model); 0.0 <= accuracy <= 1.0, events[-1].kind
    (True, 'evaluated')
    >>> context.examples.shape, context.calibration(5).shape, context.selection_split
    (torch.Size([32, 1, 8, 8]), torch.Size([5, 1, 8, 8]), 'val')
    >>> budgeted = context.with_reference(0.90)  # the unpruned model's validation accuracy
    >>> budgeted.floor(), budgeted.within_budget(0.885), budgeted.within_budget(0.87)
    (0.88, True, False)
    >>> budgeted.with_selection_reference(model) is budgeted, budgeted.selection_floor()  # no select split
    (True, 0.88)
    >>> budgeted.selection_accuracy(model) == accuracy, budgeted.with_origin(model).origin is model
    (True, True)
    >>> context.require("energy", "magnitude").unit, context.fine_tune(model)  # fine_tuning=None: no retraining
    ('MAC-normalized', False)
    >>> point = context.measure(model, label="dense"); point.energy_unit, point.weights
    ('MAC-normalized', 640)
    >>> context.replace(seed=3).seed
    3
    >>> context.notify(Event("fine_tuned", "by hand")); events[-1].message
    'by hand'
    """

    data: Dataset = field(repr=False)
    energy: Callable[[nn.Module], float] | None = None
    max_accuracy_drop: float | None = 0.01
    fine_tuning: TrainConfig | None = FINE_TUNE
    example: Tensor | None = field(default=None, repr=False)
    seed: int = 0
    loss_fn: Loss | None = None
    progress: Callable[[Event], None] | None = field(default=None, repr=False)
    reference_accuracy: float | None = None
    selection_reference: float | None = None
    origin: nn.Module | None = field(default=None, repr=False)
    checkpoint: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, Dataset):
            raise UserInputError(f"CompressionContext: data must be a dnnergy.data.Dataset (got {type(self.data).__name__})")
        for name in ("max_accuracy_drop", "reference_accuracy", "selection_reference"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0):
                raise UserInputError(f"CompressionContext: {name} must be a fraction in [0, 1] or None (got {value!r})")
        if self.fine_tuning is not None and not isinstance(self.fine_tuning, TrainConfig):
            raise UserInputError(f"CompressionContext: fine_tuning must be a TrainConfig or None (got {type(self.fine_tuning).__name__})")
        if self.energy is not None and not callable(self.energy):
            raise UserInputError(f"CompressionContext: energy must be a model -> float objective (got {type(self.energy).__name__})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserInputError(f"CompressionContext: seed must be an int >= 0 (got {self.seed!r})")
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            raise UserInputError(f"CompressionContext: checkpoint must be a file path or None (got {type(self.checkpoint).__name__})")
        if self.example is not None and (not isinstance(self.example, Tensor) or len(self.example) == 0):
            raise UserInputError("CompressionContext: example must be a non-empty batch of inputs")

    @classmethod
    def build(cls, data: Dataset, *, hardware: Any = "eyeriss", dataflow: str = "row_stationary", examples: int = 32,
              **options: Any) -> "CompressionContext":
        """A context whose energy is one image's (batch 1) on ``hardware``/``dataflow``, with activation
        densities measured on the first ``examples`` validation images; ``options`` set the other fields.

        Example: ``CompressionContext.build(load_dataset("digits"), hardware="horowitz45",
        dataflow="weights_once", max_accuracy_drop=0.02)``.
        """
        taken = {"energy", "example"} & set(options)
        if taken:
            raise UserInputError(f"CompressionContext.build sets {' and '.join(sorted(taken))} itself; "
                                 "pass them to CompressionContext(...) instead")
        example = data.val.tensors[0][:examples]
        return cls(data, energy=energy_objective(example, hardware, dataflow, per_image=True), example=example, **options)

    def replace(self, **changes: Any) -> "CompressionContext":
        """A copy with some fields changed (validated like a new context)."""
        return dataclasses.replace(self, **changes)

    # -- what methods ask ------------------------------------------------------------------
    @property
    def examples(self) -> Tensor:
        """The example batch: :attr:`example`, or the first 32 validation images."""
        return self.example if self.example is not None else self.data.val.tensors[0][:32]

    def evaluate(self, model: nn.Module, split: str = "val") -> float:
        """Top-1 accuracy of ``model`` on ``split`` (a fraction); validation and selection evaluations are
        reported to ``progress``."""
        accuracy = evaluate(model, self.data.split(split))
        if split in ("val", "select"):
            what = "validation" if split == "val" else "selection"
            self.notify(Event("evaluated", f"{what} accuracy {accuracy:.2%}", accuracy=accuracy))
        return accuracy

    def floor(self) -> float:
        """The lowest acceptable validation accuracy: reference minus the budget (a fraction)."""
        if self.max_accuracy_drop is None:
            return -math.inf
        if self.reference_accuracy is None:
            raise UserInputError("CompressionContext: the budget needs reference_accuracy (set by compress.run and every method)")
        return self.reference_accuracy - self.max_accuracy_drop

    def with_reference(self, accuracy: float) -> "CompressionContext":
        """This context with the budget measured from ``accuracy`` (validation, a fraction), unless it has a
        reference already or no budget. Methods and chains call it with their input model's accuracy."""
        if self.reference_accuracy is not None or self.max_accuracy_drop is None:
            return self
        return self.replace(reference_accuracy=accuracy)

    def with_origin(self, model: nn.Module) -> "CompressionContext":
        """This context with :attr:`origin` set to ``model`` unless one is set already (a chain keeps its first)."""
        return self if self.origin is not None else self.replace(origin=model)

    def within_budget(self, accuracy: float) -> bool:
        """True when ``accuracy`` (validation, a fraction) is at or above :meth:`floor`."""
        return accuracy >= self.floor()

    # -- the selection split (searches' accept decisions) -------------------------------------
    @property
    def selection_split(self) -> str:
        """The split searches decide on: ``"select"`` when the data set has one, else ``"val"``."""
        return self.data.selection_split

    def with_selection_reference(self, model: nn.Module) -> "CompressionContext":
        """This context with :attr:`selection_reference` measured on ``model`` (one evaluation of the
        ``select`` split), unless it is set already, there is no budget or no ``select`` split."""
        if self.selection_reference is not None or self.max_accuracy_drop is None or self.data.select is None:
            return self
        return self.replace(selection_reference=self.evaluate(model, "select"))

    def selection_accuracy(self, model: nn.Module) -> float:
        """Top-1 accuracy of ``model`` on :attr:`selection_split` (a fraction), reported to ``progress``."""
        return self.evaluate(model, self.selection_split)

    def selection_floor(self) -> float:
        """The lowest acceptable accuracy on :attr:`selection_split`: its reference minus the budget
        (:meth:`floor` itself when the selection split is ``val``)."""
        if self.data.select is None or self.max_accuracy_drop is None:
            return self.floor()
        if self.selection_reference is None:
            raise UserInputError("CompressionContext: the selection budget needs selection_reference "
                                 "(set by compress.run, or call with_selection_reference(model))")
        return self.selection_reference - self.max_accuracy_drop

    def require(self, what: str, method: str) -> Any:
        """The context field ``what`` (``"energy"`` or ``"max_accuracy_drop"``), or a clear error naming ``method``."""
        value = getattr(self, what)
        if value is None:
            hint = {"energy": "an energy objective (CompressionContext.build or energy=...)",
                    "max_accuracy_drop": "an accuracy budget (max_accuracy_drop)"}[what]
            raise UserInputError(f"{method} needs {hint}")
        return value

    def fine_tune(self, model: nn.Module, hooks: Iterable[TrainHook] = ()) -> bool:
        """Fine-tune ``model`` in place with the context's policy, through its weight transforms.

        Returns False (and does nothing) when ``fine_tuning`` is ``None``. Reports a
        ``"fine_tuned"`` :class:`Event` with the model.
        """
        if self.fine_tuning is None:
            return False
        transforms = Transforms.of(model, create=False)
        config = dataclasses.replace(self.fine_tuning, seed=self.seed)
        fine_tune(model, self.data, config, hooks=[*([transforms] if transforms else []), *hooks], loss_fn=self.loss_fn)
        self.notify(Event("fine_tuned", f"fine-tuned {config.epochs} epoch(s)", model=model))
        return True

    def calibration(self, samples: int) -> Tensor:
        """The first ``samples`` training inputs (all of them when there are fewer), for Gram matrices and statistics."""
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise UserInputError(f"calibration samples must be a positive int (got {samples!r})")
        return self.data.train.tensors[0][:samples]

    def measure(self, model: nn.Module, *, label: str = "", strength: float | None = None, layer: str = "",
                latency: bool = False, info: dict | None = None) -> Point:
        """The :class:`~dnnergy.metrics.Point` of ``model``: validation and test accuracy, energy, counts, bytes
        (and batch-1 latency on this CPU when ``latency``)."""
        return Point(
            label=label, strength=strength, layer=layer,
            val_accuracy=evaluate(model, self.data.val), val_samples=len(self.data.val),
            test_accuracy=evaluate(model, self.data.test), test_samples=len(self.data.test),
            energy=float(self.energy(model)) if self.energy is not None else None,
            energy_unit=getattr(self.energy, "unit", "") if self.energy is not None else "",
            latency_s=model_latency(model, self.examples[:1]) if latency else None,
            info=info or {}, **model_counts(model, self.examples),
        )

    def notify(self, event: Event) -> None:
        """Pass ``event`` to ``progress`` (if any)."""
        if self.progress is not None:
            self.progress(event)

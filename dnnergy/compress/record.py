"""``Record``: what any compression method did, as plain data that round-trips through JSON.

Every registered method returns one (see :mod:`~dnnergy.compress.contract`): the method
and its parameters, the seed and library version, the model before and after as
:class:`~dnnergy.metrics.Point` (validation **and** test accuracy with their sample counts,
energy with its unit, weights, non-zero weights, MACs, bytes), every decision it took
(:class:`Step`), method-specific plain data (``info``) and, for a chain of methods, the
record of each stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import UserInputError
from ..metrics import Point

__all__ = ["Step", "Record", "RECORD_FORMAT", "plain"]

#: ``format`` tag of :meth:`Record.to_dict`.
RECORD_FORMAT = "dnnergy.record/1"


def plain(value: Any, where: str = "value") -> Any:
    """``value`` as JSON data: tuples become lists, mappings dicts, enums their value; anything else raises.

    Example: ``plain({"sparsity": (0.5, 0.9)}) == {"sparsity": [0.5, 0.9]}``.
    """
    from enum import Enum

    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise UserInputError(f"{where}: expected plain data (numbers, strings, lists, dicts), got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Step:
    """One decision a method took, in order.

    ``layer`` is the module it acted on (``""`` = the whole model); ``strength`` what it
    tried, in the method's own unit (a sparsity fraction, a channel ratio, neurons kept);
    ``accuracy`` the accuracy after the trial on the split the decision was taken on
    (validation, or the ``select`` split for searches on data sets that have one; a
    fraction, ``None`` if not evaluated); ``accepted`` False for a trial that was undone; ``fine_tuned`` whether the
    model was retrained in this step. Example: ``magnitude`` at ``sparsity=0.5`` without fine-tuning
    records ``Step(iteration=0, layer='', strength=0.5, accuracy=0.122, accepted=True, fine_tuned=False)``.
    """

    iteration: int
    layer: str = ""
    strength: float | None = None
    accuracy: float | None = None
    accepted: bool = True
    fine_tuned: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.iteration, bool) or not isinstance(self.iteration, int) or self.iteration < 0:
            raise ValueError(f"Step: iteration must be a non-negative int (got {self.iteration!r})")
        if self.accuracy is not None and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError(f"Step {self.layer!r}: accuracy must be a fraction in [0, 1] or None (got {self.accuracy})")


@dataclass(frozen=True)
class Record:
    """What one method (or a chain, with ``stages``) did to a model.

    ``params`` are the method's keyword arguments as plain data; ``summary`` is the
    method's one-line account of what it chose ("sparsity 0.9 after 5 steps");
    ``max_accuracy_drop`` the budget it worked to (a fraction of validation accuracy,
    ``None`` = no budget); ``seconds`` wall-clock time including fine-tuning;
    ``input_shape`` the example input shape (batch 1) the points were counted on;
    ``model`` the architecture it ran on as the zoo or a factory names it (``"lenet300"``,
    ``"pkg.models:build"``; a model from neither: its class name; ``""``: not recorded, as
    in records written before dnnergy recorded it). Accuracies are fractions in [0, 1];
    energies are in ``before.energy_unit``.

    Example (magnitude pruning of an untrained 64 -> 10 classifier on ``digits``, no
    fine-tuning and no budget, so the accuracies are near chance):

    >>> import dnnergy, torch.nn as nn
    >>> from dnnergy.data import load_dataset
    >>> context = dnnergy.CompressionContext.build(load_dataset("digits"), fine_tuning=None, max_accuracy_drop=None)
    >>> record = dnnergy.run(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), "magnitude", context, sparsity=0.5).record
    >>> record.method, record.summary, record.before.nonzero_weights, record.after.nonzero_weights
    ('magnitude', 'sparsity 0.500 (step 1 of 1)', 640, 320)
    >>> record.energy_reduction > 1.0, -1.0 <= record.accuracy_drop("val") <= 1.0, record.test_budget_broken
    (True, True, False)
    >>> Record.from_dict(record.to_dict()) == record, '"method": "magnitude"' in record.to_json()
    (True, True)
    """

    method: str
    params: Mapping[str, Any]
    before: Point
    after: Point
    summary: str = ""
    steps: tuple[Step, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    stages: tuple["Record", ...] = ()
    seed: int = 0
    max_accuracy_drop: float | None = None
    seconds: float = 0.0
    input_shape: tuple[int, ...] | None = None
    version: str = ""
    model: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"Record: method must be a non-empty string (got {self.method!r})")
        if not isinstance(self.model, str):
            raise ValueError(f"Record {self.method!r}: model must be the name of a model (got {self.model!r})")
        if not isinstance(self.before, Point) or not isinstance(self.after, Point):
            raise ValueError("Record: before and after must be Point records")
        object.__setattr__(self, "params", plain(self.params, "Record.params"))
        object.__setattr__(self, "info", plain(self.info, "Record.info"))
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "stages", tuple(self.stages))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if not self.version:
            from .. import __version__

            object.__setattr__(self, "version", __version__)

    def __str__(self) -> str:
        """A compact text table (:func:`dnnergy.report.display.text`)."""
        from ..report.display import text

        return text(self)

    def _repr_html_(self) -> str:
        """The full HTML table, for Jupyter (:func:`dnnergy.report.display.html`)."""
        from ..report.display import html

        return html(self)

    # -- derived views ------------------------------------------------------------------
    @property
    def energy_reduction(self) -> float | None:
        """Energy before / energy after, a ratio (1.4 = 1.4x less energy; ``None`` without an energy objective)."""
        b, a = self.before.energy, self.after.energy
        if b is None or a is None:
            return None
        return b / a if a > 0 else float("inf")

    def accuracy_drop(self, split: str = "test") -> float | None:
        """Accuracy lost on ``"val"`` or ``"test"`` (a fraction; negative when accuracy rose)."""
        b, a = getattr(self.before, f"{split}_accuracy"), getattr(self.after, f"{split}_accuracy")
        return None if a is None or b is None else b - a

    @property
    def test_budget_broken(self) -> bool:
        """True when the *test* accuracy fell by more than the budget the method kept on validation."""
        drop = self.accuracy_drop("test")
        return self.max_accuracy_drop is not None and drop is not None and drop > self.max_accuracy_drop + 1e-12

    # -- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data (with the derived ``energy_reduction`` and ``test_budget_broken``)."""
        return {
            "format": RECORD_FORMAT,
            "method": self.method,
            "model": self.model,
            "params": self.params,
            "summary": self.summary,
            "seed": self.seed,
            "version": self.version,
            "max_accuracy_drop": self.max_accuracy_drop,
            "seconds": self.seconds,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "energy_reduction": self.energy_reduction,
            "test_budget_broken": self.test_budget_broken,
            "steps": [{"iteration": s.iteration, "layer": s.layer, "strength": s.strength, "accuracy": s.accuracy,
                       "accepted": s.accepted, "fine_tuned": s.fine_tuned} for s in self.steps],
            "info": self.info,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    def to_json(self, indent: int | None = 1) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Record":
        """Inverse of :meth:`to_dict`; a wrong format tag or a missing field raises :class:`UserInputError`."""
        if not isinstance(data, Mapping) or data.get("format") != RECORD_FORMAT:
            raise UserInputError(f"Record: expected a dict with format {RECORD_FORMAT!r} (got {str(data)[:80]})")
        try:
            return cls(
                method=data["method"], params=data["params"], summary=data.get("summary", ""), seed=data["seed"],
                version=data["version"], max_accuracy_drop=data["max_accuracy_drop"], seconds=data["seconds"],
                input_shape=data.get("input_shape"), model=data.get("model") or "",
                before=Point.from_dict(data["before"]), after=Point.from_dict(data["after"]),
                steps=tuple(Step(**s) for s in data["steps"]), info=data["info"],
                stages=tuple(cls.from_dict(s) for s in data["stages"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"Record: invalid record ({exc})") from exc

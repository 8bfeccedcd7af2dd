"""The compression contract: a method registry, one call shape, one result, and chaining.

Every method is a function ``impl(model, context, *, **params) -> Outcome`` decorated
with :func:`register_method`. The decorator returns a :class:`Method`, which is called
the contract way, ``method(model, context, **params) -> Result(model, record)``: it works
on a copy of ``model``, measures the model before and after with the context
(validation and test accuracy, energy, counts), times the run, and builds the
:class:`~dnnergy.compress.record.Record` from what the implementation reports
(:class:`Outcome`: the compressed model, a one-line summary, its steps and plain info).

A new method is one module::

    @register_method("halve", strength="ratio")
    def halve(model, context, *, ratio: float = 0.5) -> Outcome:
        \"\"\"Scale every weight by ``ratio`` (a toy).\"\"\"
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(ratio)
        return Outcome(model, summary=f"weights x {ratio}")

and the CLI (``dnnergy compress MODEL --method halve --ratio 0.3``), the demo, the
benchmarks and the contract tests find it by name once its module is imported (the
built-in methods are imported with ``dnnergy``; a method of your own, when your code
imports the module that registers it). :func:`run` chains methods
(``run(model, "magnitude,structured", context)``): each stage starts from the previous
one's model, keyword parameters go to every stage that takes them, the accuracy budget is
measured from the first model, and the record keeps each stage.
"""

from __future__ import annotations

import copy
import inspect
import time
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from ..errors import UserInputError
from ..metrics import Point
from ..registry import Registry
from .context import CompressionContext
from .record import Record, Step, plain

__all__ = ["Outcome", "Result", "Param", "Method", "METHODS", "register_method", "list_methods", "get_method", "run",
           "parse_chain", "check_params", "require_positive"]


@dataclass(frozen=True, eq=False)
class Outcome:
    """What a method implementation returns: the compressed ``model``, a one-line ``summary`` of what
    it chose, the ``steps`` it took and method-specific plain ``info``. Example: the ``halve`` method of
    this module's docstring returns ``Outcome(model, summary=f"weights x {ratio}")``."""

    model: nn.Module
    summary: str = ""
    steps: Sequence[Step] = ()
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Result:
    """A method's compressed model and its :class:`~dnnergy.compress.record.Record`.

    Example: ``result = dnnergy.run(model, "magnitude", context, sparsity=0.5)`` gives the pruned copy
    as ``result.model`` (``model`` is unchanged) and what was done as ``result.record`` (see
    :class:`~dnnergy.compress.record.Record` for a checked run).
    """

    model: nn.Module
    record: Record


@dataclass(frozen=True, slots=True)
class Param:
    """One keyword parameter of a method: its name, default and (resolved) type annotation.

    Example: ``get_method("magnitude").params[0]`` is ``Param(name='sparsity', default=(0.5, 0.75, 0.9, 0.95),
    annotation=float | tuple[float, ...])``.
    """

    name: str
    default: Any
    annotation: Any


@dataclass(frozen=True, eq=False)
class Method:
    """A registered method: call it as ``method(model, context, **params) -> Result``.

    ``name`` is its registry name, ``strength`` the parameter a trade-off sweep varies
    (``None`` when it has none), ``params`` its keyword parameters, ``doc`` the docstring
    of the implementation (first line: :attr:`summary`).

    Example:

    >>> from dnnergy.compress import get_method
    >>> method = get_method("magnitude")
    >>> method.strength, method.takes("sparsity"), method.summary.split(":")[0]
    ('sparsity', True, 'Han et al. 2015')
    >>> method.check({"ratio": 2})
    Traceback (most recent call last):
    dnnergy.errors.UserInputError: magnitude: no parameter 'ratio'; it takes sparsity=(0.5, 0.75, 0.9, 0.95), scope='layer', layers=()

    ``method.apply(model, context, {"sparsity": 0.5})`` is ``method(model, context, sparsity=0.5)``.
    """

    name: str
    impl: Callable[..., Outcome]
    strength: str | None
    params: tuple[Param, ...]
    doc: str
    checker: Callable[..., object] | None = None

    @property
    def summary(self) -> str:
        """The first line of the method's docstring."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""

    def takes(self, name: str) -> bool:
        """True when the method has a keyword parameter ``name``."""
        return any(p.name == name for p in self.params)

    def check(self, params: Mapping[str, Any]) -> None:
        """Refuse unknown parameters and bad values (the method's own check) before any work starts."""
        unknown = [k for k in params if not self.takes(k)]
        if unknown:
            raise UserInputError(f"{self.name}: no parameter {unknown[0]!r}; it takes {_signature(self)}")
        if self.checker is not None:
            self.checker(**{**{p.name: p.default for p in self.params}, **params})

    def __call__(self, model: nn.Module, context: CompressionContext, **params: Any) -> Result:
        return self.apply(model, context, params)

    def apply(self, model: nn.Module, context: CompressionContext, params: Mapping[str, Any], *,
              before: Point | None = None) -> Result:
        """:meth:`__call__` with the parameters as a mapping and, optionally, the input model's Point
        when the caller already measured it (a sweep measures the input once)."""
        if not isinstance(model, nn.Module):
            raise UserInputError(f"{self.name}: model must be a torch.nn.Module (got {type(model).__name__})")
        if not isinstance(context, CompressionContext):
            raise UserInputError(f"{self.name}: context must be a CompressionContext (got {type(context).__name__})")
        self.check(params)
        start = time.perf_counter()
        work = copy.deepcopy(model)
        before = before or context.measure(work, label="before")
        context = context.with_reference(before.val_accuracy).with_selection_reference(work).with_origin(model)
        outcome = self.impl(work, context, **params)
        if not isinstance(outcome, Outcome):
            raise TypeError(f"method {self.name!r} returned {type(outcome).__name__}; implementations return Outcome")
        after = context.measure(outcome.model, label=self.name)
        defaults = {p.name: p.default for p in self.params}
        record = Record(self.name, {**defaults, **params}, before, after, outcome.summary, tuple(outcome.steps),
                        outcome.info, seed=context.seed, max_accuracy_drop=context.max_accuracy_drop,
                        seconds=time.perf_counter() - start, input_shape=_shape(context), model=_model_name(model))
        return Result(outcome.model, record)


#: Every registered compression method, by name.
METHODS: Registry[Method] = Registry("compression method")


def register_method(name: str | None = None, *, strength: str | None = None, check: Callable[..., object] | None = None,
                    aliases: Sequence[str] = (), override: bool = False) -> Callable[[Callable[..., Outcome]], Method]:
    """Decorator: register ``impl(model, context, *, **params) -> Outcome`` as a method and return its :class:`Method`.

    ``name`` defaults to the function's name; ``strength`` names the keyword parameter a
    trade-off sweep varies; ``check(**params)`` (every parameter, defaults filled in)
    raises :class:`UserInputError` for bad values, so a command line fails before it
    loads or trains anything. Every parameter after ``context`` must be keyword-only with
    a default, so a method runs with no parameters at all. Raises ``TypeError`` for
    another signature and ``RuntimeError`` for a taken name (unless ``override=True``).
    Example: the ``halve`` method of this module's docstring; afterwards
    ``get_method("halve").strength == "ratio"``.
    """

    def decorate(impl: Callable[..., Outcome]) -> Method:
        key = name or impl.__name__
        method = Method(key, impl, strength, _params(key, impl), inspect.getdoc(impl) or "", check)
        if strength is not None and not method.takes(strength):
            raise TypeError(f"register_method({key!r}): strength {strength!r} is not one of its parameters")
        return METHODS.add(key, method, aliases=aliases, override=override)

    return decorate


def require_positive(method: str, **values: Any) -> None:
    """Raise :class:`UserInputError` naming ``method`` and the parameter for any value that is not an int >= 1.

    Example: ``require_positive("eap", calibration=0)`` raises "eap: calibration must be a positive int (got 0)".
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{method}: {name} must be a positive int (got {value!r})")


def _params(name: str, impl: Callable) -> tuple[Param, ...]:
    every = list(inspect.signature(impl).parameters.values())
    if [p.name for p in every[:2]] != ["model", "context"] or any(
            p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in every[:2]):
        raise TypeError(f"register_method({name!r}): the signature must start (model, context, *, ...)")
    hints = typing.get_type_hints(impl)
    params = []
    for p in every[2:]:
        if p.kind is not p.KEYWORD_ONLY or p.default is p.empty:
            raise TypeError(f"register_method({name!r}): parameter {p.name!r} must be keyword-only with a default")
        params.append(Param(p.name, p.default, hints.get(p.name, Any)))
    return tuple(params)


def _shape(context: CompressionContext) -> tuple[int, ...]:
    return (1, *context.examples.shape[1:])


def _model_name(model: nn.Module) -> str:
    """The architecture a record names: the zoo's or the factory's name (``"lenet300"``, ``"pkg.models:build"``), as
    ``zoo.create_model`` and ``dnnergy.load`` set it, else the model's class name (as ``trace`` names a workload)."""
    built = getattr(model, "dnnergy_architecture", None)  # zoo.ARCHITECTURE_ATTRIBUTE
    names = [built.get(key) for key in ("zoo", "factory")] if isinstance(built, Mapping) else []
    return next((name for name in names if isinstance(name, str)), type(model).__name__)


def _signature(method: Method) -> str:
    return ", ".join(f"{p.name}={p.default!r}" for p in method.params) or "no parameters"


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching the fnmatch ``pattern``, sorted.

    Example: ``list_methods("s*") == ["share", "simd", "snapea", "structured"]``.
    """
    return METHODS.list(pattern)


def get_method(name: str) -> Method:
    """The :class:`Method` registered as ``name``; unknown names raise :class:`UserInputError` with close names.

    Example: ``get_method("magnitude").strength == "sparsity"``; ``get_method("magnitud")`` raises
    "unknown compression method 'magnitud'; did you mean magnitude? (known: ...)".
    """
    return METHODS.get(name)


def parse_chain(methods: str | Sequence[str | Method]) -> list[Method]:
    """``"magnitude,structured"`` or ``["magnitude", "structured"]`` (names or :class:`Method`) -> the methods, in order.

    Example: ``[m.name for m in parse_chain("magnitude,structured")] == ["magnitude", "structured"]``.
    """
    items = methods.split(",") if isinstance(methods, str) else list(methods)
    names = [m if isinstance(m, Method) else str(m).strip() for m in items]
    if not names or not all(names):
        raise UserInputError(f"methods must name at least one registered method, comma-separated (got {methods!r})")
    return [m if isinstance(m, Method) else get_method(m) for m in names]


def check_params(methods: str | Sequence[str | Method], params: Mapping[str, Any]) -> list[Method]:
    """The chain's methods, after checking ``params`` before any work: each must be taken by some method of the
    chain (:class:`UserInputError` saying what each takes otherwise) and pass that method's own check.

    Example: ``check_params("magnitude", {"ratio": 2})`` raises "no method of 'magnitude' takes a parameter
    'ratio' (magnitude takes sparsity=(0.5, 0.75, 0.9, 0.95), scope='layer', layers=())".
    """
    chain = parse_chain(methods)
    for key in params:
        if not any(m.takes(key) for m in chain):
            takes = "; ".join(f"{m.name} takes {_signature(m)}" for m in chain)
            raise UserInputError(f"no method of {','.join(m.name for m in chain)!r} takes a parameter {key!r} ({takes})")
    for method in chain:
        method.check(_own(method, params))
    return chain


def _own(method: Method, params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if method.takes(k)}


def run(model: nn.Module, methods: str | Sequence[str | Method], context: CompressionContext, **params: Any) -> Result:
    """Run one method or a chain (``"magnitude,structured"``) on a copy of ``model``.

    Each keyword parameter goes to every stage that takes it; one that no stage takes
    raises :class:`UserInputError` saying what each stage takes. The accuracy budget is
    measured from ``model``'s validation accuracy for the whole chain. A single method's
    result is that method's; a chain's record has ``method`` "a,b", the first stage's
    ``before``, the last stage's ``after``, every step, and one record per stage in
    ``stages``.

    Example: ``run(model, "magnitude", context, sparsity=0.5)`` on the ``digits`` context of
    :class:`~dnnergy.compress.record.Record`'s example halves the non-zero weights (640 -> 320) of a
    copy of ``model``; ``run(model, "magnitude,structured", context)`` chains two stages and its
    ``record.stages`` holds one record each.
    """
    chain = check_params(methods, params)
    if len(chain) == 1:
        return chain[0].apply(model, context, _own(chain[0], params))
    start = time.perf_counter()
    before = context.measure(model, label="before")
    context = context.with_reference(before.val_accuracy).with_selection_reference(model).with_origin(model)
    results, current, point = [], model, before
    for method in chain:
        result = method.apply(current, context, _own(method, params), before=point)
        results.append(result)
        current, point = result.model, result.record.after
    records = [r.record for r in results]
    record = Record(
        ",".join(m.name for m in chain), plain(params, "params"), before, point,
        "; ".join(f"{r.method}: {r.summary}" for r in records), tuple(s for r in records for s in r.steps),
        {}, tuple(records), seed=context.seed, max_accuracy_drop=context.max_accuracy_drop,
        seconds=time.perf_counter() - start, input_shape=_shape(context), model=_model_name(model))
    return Result(current, record)

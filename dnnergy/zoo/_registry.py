"""The model registry: architecture factories under short names, with their published figures.

A family module (``lenet.py``, ``resnet.py``, ...) decorates each factory with
:func:`register_model`; :func:`create_model` builds one by name and :func:`model_info`
returns its :class:`ModelInfo` (input shape and the figures the original paper gives),
so tests and reports can compare a trace against the literature. Every model built by
:func:`create_model` records how it was built in ``model.dnnergy_architecture``. The
table is a :class:`~dnnergy.registry.Registry` of kind ``"model"``.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, TypeVar

from torch import nn

from ..errors import UserInputError
from ..registry import Registry

#: Name of the model attribute recording how to rebuild the model (read when a compressed model is saved).
ARCHITECTURE_ATTRIBUTE = "dnnergy_architecture"

__all__ = ["ARCHITECTURE_ATTRIBUTE", "ModelInfo", "register_model", "list_models", "create_model", "model_info"]

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])

#: Keys a ``published`` dict may have: counts (MACs, learned parameters, weights without
#: biases), where they come from, and a free-text note on how they were counted.
PUBLISHED_KEYS = frozenset({"macs", "params", "weights", "source", "note"})
_FIGURES = ("macs", "params", "weights")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the registry knows about a model besides its factory.

    ``input_shape`` is the example input the published figures refer to, e.g.
    ``(1, 3, 224, 224)``; ``published`` maps ``macs`` (multiply-accumulates, one per
    filter tap per output, bias not counted), ``params`` (learned parameters, biases
    included), ``weights`` (filter/matrix weights, no biases) to numbers, and ``source``
    to the paper or table they come from. It is stored read-only.

    Example: ``model_info("lenet5")`` is ``ModelInfo(name='lenet5', input_shape=(1, 1, 28, 28), description='Caffe
    LeNet-5: ...', published={'macs': 2293000, 'weights': 430500, 'params': 431080, 'source': ...})``.
    """

    name: str
    input_shape: tuple[int, ...]
    description: str
    published: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"ModelInfo: name must be lowercase letters, digits and '_', starting with a letter (got {self.name!r})")
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (tuple, list)) else None
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ValueError(f"ModelInfo {self.name!r}: input_shape must be a non-empty tuple of positive ints (got {self.input_shape!r})")
        object.__setattr__(self, "input_shape", shape)
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"ModelInfo {self.name!r}: description must be a non-empty string")
        published = dict(self.published or {})
        unknown = set(published) - PUBLISHED_KEYS
        if unknown:
            raise ValueError(f"ModelInfo {self.name!r}: published has unknown keys {sorted(unknown)} (expected some of {sorted(PUBLISHED_KEYS)})")
        for key in _FIGURES:
            value = published.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"ModelInfo {self.name!r}: published[{key!r}] must be a positive number (got {value!r})")
        if any(key in published for key in _FIGURES) and not published.get("source"):
            raise ValueError(f"ModelInfo {self.name!r}: published figures need a 'source' (paper, table) saying where they come from")
        object.__setattr__(self, "published", MappingProxyType(published))


_MODELS: Registry[tuple[Callable[..., nn.Module], ModelInfo]] = Registry("model")


def register_model(
    name: str | None = None,
    *,
    input_shape: tuple[int, ...],
    description: str,
    published: Mapping[str, Any] | None = None,
    override: bool = False,
) -> Callable[[Factory], Factory]:
    """Decorator registering a model factory under ``name`` (default: the function's name).

    Raises ``RuntimeError`` if the name is taken (unless ``override=True``) and
    ``ValueError`` for an invalid name, shape or ``published`` dict (see
    :class:`ModelInfo`). Returns the factory unchanged. Example::

        @register_model(input_shape=(1, 784), description="one layer", published={"macs": 7840, "source": "784*10"})
        def tiny() -> nn.Module:
            return nn.Linear(784, 10)
    """

    def decorate(factory: Factory) -> Factory:
        key = name or factory.__name__
        info = ModelInfo(key, input_shape, description, MappingProxyType(dict(published or {})))
        _MODELS.add(key, (factory, info), override=override)
        return factory

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching an fnmatch ``pattern`` (e.g. ``"resnet*"``), sorted.

    Example: ``list_models("lenet*") == ["lenet100", "lenet300", "lenet5", "lenet64"]``.
    """
    return _MODELS.list(pattern)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with freshly initialised weights (nothing is downloaded).

    ``kwargs`` go to the factory (e.g. ``num_classes``). The model records how it was
    built in ``model.dnnergy_architecture = {"zoo": name, "kwargs": kwargs}`` (plain data,
    JSON-able when the kwargs are), so ``create_model(a["zoo"], **a["kwargs"])`` rebuilds
    the architecture. Raises :class:`UserInputError` naming the closest registered names
    when ``name`` is unknown, and listing the factory's options when it does not take
    one of ``kwargs``. Example: ``create_model("lenet5", num_classes=3).dnnergy_architecture
    == {"zoo": "lenet5", "kwargs": {"num_classes": 3}}``.
    """
    factory, _ = _MODELS.get(name)
    signature = inspect.signature(factory)
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        options = ", ".join(signature.parameters) or "none"
        raise UserInputError(f"model {name!r}: {exc} (its options: {options})") from None
    model = factory(**kwargs)
    setattr(model, ARCHITECTURE_ATTRIBUTE, {"zoo": name, "kwargs": dict(kwargs)})
    return model


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of the registered model ``name``; :class:`UserInputError` if unknown.

    Example: ``model_info("lenet5").input_shape == (1, 1, 28, 28)``.
    """
    return _MODELS.get(name)[1]

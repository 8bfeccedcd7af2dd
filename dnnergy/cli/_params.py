"""Method parameters from the command line: ``--name value`` options read by the methods' own signatures.

The CLI knows no method. ``dnnergy compress MODEL --method structured --criterion l1
--ratio 0.5`` gives the chain's methods ``criterion="l1", ratio=0.5``: each option is
matched to the keyword parameters of the methods that take it (dashes read as
underscores) and converted by that parameter's type annotation (``float``, ``int``,
``bool``, ``str``, ``Literal[...]``, ``tuple[X, ...]`` as ``a,b,c``, ``dict[str, int]`` as
``k=v,k=v``, unions tried in order, ``none`` for an optional one).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Sequence

from ..compress import Method
from ..errors import UserInputError

__all__ = ["method_options", "convert", "as_text", "describe"]

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def method_options(args: Sequence[str], chain: Sequence[Method]) -> dict[str, Any]:
    """``["--ratio", "0.5", "--reconstruct"]`` -> ``{"ratio": 0.5, "reconstruct": True}`` for the methods of ``chain``.

    An option no method of the chain takes, a missing value or a value of the wrong type
    raises :class:`UserInputError` saying what was expected.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) < 3:
            raise UserInputError(f"unexpected argument {token!r}: method parameters are given as --name value")
        name, _, inline = token[2:].partition("=")
        key = name.replace("-", "_")
        takers = [m for m in chain if m.takes(key)]
        if not takers:
            takes = "; ".join(f"{m.name}: {', '.join('--' + p.name.replace('_', '-') for p in m.params) or 'none'}" for m in chain)
            raise UserInputError(f"--{name}: no method of {','.join(m.name for m in chain)!r} takes it (parameters: {takes})")
        annotation = next(p.annotation for p in takers[0].params if p.name == key)
        if inline or "=" in token:
            text, i = inline, i + 1
        elif annotation is bool and (i + 1 == len(args) or args[i + 1].startswith("--")):
            text, i = "true", i + 1
        elif i + 1 < len(args):
            text, i = args[i + 1], i + 2
        else:
            raise UserInputError(f"--{name} needs a value")
        out[key] = convert(text, annotation, name)
    return out


def convert(text: str, annotation: Any, name: str) -> Any:
    """``text`` as a value of the type ``annotation`` (see the module docstring); ``name`` is used in errors.

    Example: ``convert("0.5,0.9", float | tuple[float, ...], "sparsity") == (0.5, 0.9)``.
    """
    options = _union(annotation)
    if type(None) in options and text.strip().lower() in ("none", "null"):
        return None
    for option in (o for o in options if o is not type(None)):
        try:
            return _as(text.strip(), option)
        except (ValueError, TypeError):
            continue
    raise UserInputError(f"--{name.replace('_', '-')}: cannot read {text!r} as {_describe(annotation)}")


def _union(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _as(text: str, kind: Any) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(text)
    if kind in (int, float, str):
        if kind is not str and "," in text:
            raise ValueError(text)
        return kind(text)
    if origin is Literal:
        if text in args:
            return text
        raise ValueError(text)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple(_as(part.strip(), args[0]) for part in text.split(",") if part.strip())
    if origin is dict:
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        if not pairs or any(len(pair) != 2 for pair in pairs):
            raise ValueError(text)
        return {_as(k.strip(), args[0]): _as(v.strip(), args[1]) for k, v in pairs}
    if kind is Any:
        return text
    raise TypeError(f"unsupported parameter type {kind!r}")


def as_text(value: Any) -> str:
    """A parameter value as one would type it: ``(0.5, 0.9) -> "0.5,0.9"``, ``None -> "none"``, ``{"fc1": 40} -> "fc1=40"``."""
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(as_text(v) for v in value) or "(empty)"
    if isinstance(value, dict):
        return ",".join(f"{k}={as_text(v)}" for k, v in value.items()) or "(empty)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def describe(annotation: Any) -> str:
    """What a parameter of type ``annotation`` accepts, in words (``"float or a comma-separated list of float"``)."""
    return _describe(annotation)


def _describe(annotation: Any) -> str:
    parts = []
    for option in _union(annotation):
        origin, args = typing.get_origin(option), typing.get_args(option)
        if option is type(None):
            parts.append("none")
        elif origin is Literal:
            parts.append(" or ".join(repr(a) for a in args))
        elif origin is tuple:
            parts.append(f"a comma-separated list of {_describe(args[0])}")
        elif origin is dict:
            parts.append("name=value pairs, comma-separated")
        else:
            parts.append(getattr(option, "__name__", str(option)))
    return " or ".join(parts)

"""``Registry``: one named table type behind every extension point of dnnergy.

Ops, ONNX ops, dataflows, DRAM codes, compression methods, datasets and zoo models are
all looked up by name in a :class:`Registry`, so they share one rule set:

* a name is a non-empty string; registering a taken name (or alias) raises
  ``RuntimeError`` unless ``override=True``;
* entries may have aliases (``"random"`` for ``"synthetic"``), which resolve to the
  canonical name and are never listed as entries of their own;
* an unknown name raises :class:`~dnnergy.errors.UserInputError` that names the kind of
  entry, suggests close names and lists the known ones;
* :meth:`Registry.list` filters with fnmatch wildcards (``"resnet*"``) and sorts;
* :meth:`Registry.copy` gives an independent table for per-call overrides (``trace(...,
  ops={...})``) that must not leak into the global one.

Example::

    dataflows = Registry("dataflow")

    @dataflows.register("naive")
    class Naive: ...

    dataflows.get("naive")          # the class
    dataflows.get("navie")          # UserInputError: unknown dataflow 'navie'; did you mean naive?
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from .errors import UserInputError

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F")


class Registry(Generic[T]):
    """Entries of one ``kind`` (e.g. ``"dataflow"``) by name, with aliases and close-name errors."""

    def __init__(self, kind: str):
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"Registry: kind must be a non-empty string (got {kind!r})")
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    # -- registering -------------------------------------------------------------------
    def add(self, name: str, entry: T, *, aliases: Iterable[str] = (), override: bool = False) -> T:
        """Register ``entry`` under ``name`` (and ``aliases``) and return it unchanged.

        Raises ``TypeError`` for a name that is not a non-empty string and
        ``RuntimeError`` when a name or alias is taken, unless ``override=True``.
        """
        aliases = tuple(aliases)
        for key in (name, *aliases):
            if not isinstance(key, str) or not key:
                raise TypeError(f"register {self.kind}: names must be non-empty strings (got {key!r})")
        if not override:
            for key in (name, *aliases):
                if key in self._entries or key in self._aliases:
                    raise RuntimeError(f"register {self.kind}: {key!r} is already registered (pass override=True to replace it)")
        self._aliases.pop(name, None)
        self._entries[name] = entry
        for alias in aliases:
            self._entries.pop(alias, None)
            self._aliases[alias] = name
        return entry

    def register(self, name: str | None = None, *, aliases: Iterable[str] = (),
                 override: bool = False) -> Callable[[F], F]:
        """Decorator form of :meth:`add`; ``name`` defaults to the decorated object's ``__name__``.

        An explicit ``name`` is checked at once (a ``TypeError`` before anything is decorated).
        """
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"register {self.kind}: names must be non-empty strings (got {name!r})")

        def decorate(entry: F) -> F:
            self.add(name if name is not None else getattr(entry, "__name__", ""), entry, aliases=aliases,
                     override=override)
            return entry

        return decorate

    # -- looking up ----------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """The canonical name of ``name`` (itself, or the entry an alias points to); unknown names raise."""
        if isinstance(name, str):
            if name in self._entries:
                return name
            if name in self._aliases:
                return self._aliases[name]
        known = sorted(self._entries)
        close = difflib.get_close_matches(str(name), [*known, *self._aliases], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserInputError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(known) or 'none'})")

    def get(self, name: str) -> T:
        """The entry registered as ``name`` (or an alias of it); :class:`UserInputError` when unknown."""
        return self._entries[self.resolve(name)]

    def list(self, pattern: str = "*", *, exclude: Iterable[str] = ()) -> list[str]:
        """Canonical names matching the fnmatch ``pattern`` and none of ``exclude``, sorted."""
        exclude = tuple(exclude)
        return sorted(n for n in self._entries
                      if fnmatch.fnmatch(n, pattern) and not any(fnmatch.fnmatch(n, x) for x in exclude))

    def aliases(self) -> dict[str, str]:
        """``{alias: canonical name}``."""
        return dict(self._aliases)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs in registration order."""
        return list(self._entries.items())

    def copy(self) -> "Registry[T]":
        """An independent registry with the same entries and aliases (for per-call overrides)."""
        other: Registry[T] = Registry(self.kind)
        other._entries = dict(self._entries)
        other._aliases = dict(self._aliases)
        return other

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

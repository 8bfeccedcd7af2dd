"""The zoo's models and the compression methods as plain data, for listings that must not import torch.

``dnnergy zoo`` and ``dnnergy methods`` print what the registries hold, but importing the
registries imports every model and method module, and with them torch (about 1.5 s).
This module answers from :mod:`dnnergy.catalog_data`, a generated file of plain values
(no imports beyond this module), in milliseconds. The registries stay the source of
truth: :func:`build` reads the catalogue back from them (importing torch), and

    python -m dnnergy.catalog            # rewrite dnnergy/catalog_data.py from the registries
    python -m dnnergy.catalog --check    # exit 1 if it is stale

``tests/cli/test_catalog.py`` compares the two entry by entry and field by field, so a
model or method registered without regenerating the catalogue fails the suite, naming it.
"""

from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["ZooEntry", "ParamEntry", "MethodEntry", "zoo_entries", "method_entries", "build", "source"]

DATA = Path(__file__).with_name("catalog_data.py")


@dataclass(frozen=True, slots=True)
class ZooEntry:
    """One registered zoo model: its name, example ``input_shape``, description, published figures for one
    image (``macs``, ``params``, ``weights``: counts, None when unpublished) and the ``module:function``
    ``factory`` that builds it. Example: the ``lenet5`` entry has ``input_shape=(1, 1, 28, 28)``,
    ``macs=2293000`` and ``factory='dnnergy.zoo.lenet:lenet5'``.
    """

    name: str
    input_shape: tuple[int, ...]
    description: str
    macs: int | float | None
    params: int | float | None
    weights: int | float | None
    factory: str


@dataclass(frozen=True, slots=True)
class ParamEntry:
    """One keyword parameter of a method as the command line shows it: its ``name``, its ``default`` as one
    would type it and what it ``accepts``, in words. Example: magnitude's first parameter is
    ``ParamEntry(name='sparsity', default='0.5,0.75,0.9,0.95', accepts='float or a comma-separated list of float')``.
    """

    name: str
    default: str
    accepts: str


@dataclass(frozen=True, slots=True)
class MethodEntry:
    """One registered compression method: its name, the parameter a sweep varies (``strength``, None if
    none), the first line of its docstring (``summary``) and its ``params``. Example: the ``magnitude``
    entry has ``strength='sparsity'`` and a summary starting ``'Han et al. 2015'``.
    """

    name: str
    strength: str | None
    summary: str
    params: tuple[ParamEntry, ...]


def zoo_entries(pattern: str = "*") -> list[ZooEntry]:
    """The catalogued zoo models whose names match the fnmatch ``pattern``, sorted by name (no torch import).

    Example: ``[e.name for e in zoo_entries("lenet*")] == ["lenet100", "lenet300", "lenet5", "lenet64"]``,
    as ``dnnergy.zoo.list_models("lenet*")``.
    """
    from .catalog_data import ZOO

    return sorted((e for e in ZOO if fnmatch.fnmatch(e.name, pattern)), key=lambda e: e.name)


def method_entries(pattern: str = "*") -> list[MethodEntry]:
    """The catalogued compression methods whose names match the fnmatch ``pattern``, sorted by name (no torch import).

    Example: ``[e.name for e in method_entries("s*")] == ["share", "simd", "snapea", "structured"]``,
    as ``dnnergy.compress.list_methods("s*")``.
    """
    from .catalog_data import METHODS

    return sorted((e for e in METHODS if fnmatch.fnmatch(e.name, pattern)), key=lambda e: e.name)


def build() -> tuple[list[ZooEntry], list[MethodEntry]]:
    """The catalogue as the registries define it now (imports every model and method module, hence torch).

    Example: ``build()[0] == zoo_entries()`` and ``build()[1] == method_entries()`` while the catalogue is current.
    """
    from .cli._params import as_text, describe  # the texts `dnnergy methods` prints
    from .compress import METHODS
    from .zoo._registry import _MODELS

    models = []
    for name, (factory, info) in sorted(_MODELS.items(), key=lambda item: item[0]):
        published = info.published
        models.append(ZooEntry(name, info.input_shape, info.description, published.get("macs"), published.get("params"),
                               published.get("weights"), f"{factory.__module__}:{factory.__qualname__}"))
    methods = [MethodEntry(name, m.strength, m.summary, tuple(ParamEntry(p.name, as_text(p.default), describe(p.annotation))
                                                               for p in m.params))
               for name, m in sorted(METHODS.items(), key=lambda item: item[0])]
    return models, methods


def _call(entry: ZooEntry | MethodEntry) -> str:
    """``entry`` as Python source, one field per line (a method's parameters one per line)."""
    lines = [f"{type(entry).__name__}("]
    for f in fields(entry):
        value = getattr(entry, f.name)
        if isinstance(entry, MethodEntry) and f.name == "params" and value:
            text = "(\n" + "".join(f"            {p!r},\n" for p in value) + "        )"
        else:
            text = repr(value)
        lines.append(f"        {f.name}={text},")
    return "\n".join(lines) + "\n    )"


def source() -> str:
    """The text of dnnergy/catalog_data.py generated from the registries by :func:`build`.

    Example: ``source() == Path("dnnergy/catalog_data.py").read_text()`` while the catalogue is current; its
    first line says it is generated by ``python -m dnnergy.catalog``.
    """
    models, methods = build()
    head = ('"""Generated by `python -m dnnergy.catalog` from the zoo and method registries; do not edit by hand."""\n\n'
            "from .catalog import MethodEntry, ParamEntry, ZooEntry\n\n")
    blocks = [f"{name} = (\n" + "".join(f"    {_call(e)},\n" for e in entries) + ")\n"
              for name, entries in (("ZOO", models), ("METHODS", methods))]
    return head + "\n".join(blocks)


def main(argv: list[str]) -> int:
    """``python -m dnnergy.catalog [--check]``: rewrite dnnergy/catalog_data.py, or exit 1 if it is stale.

    Example: ``main(["--check"]) == 0`` while the catalogue is current.
    """
    from .io import write_generated

    return write_generated(DATA, source(), check="--check" in argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

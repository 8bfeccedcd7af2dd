"""Compressed models as files: :func:`save` writes one :mod:`dnnergy.io` container, :func:`load` rebuilds the model.

A file holds everything needed to rebuild the model without pickling a module:

* ``architecture``: how to build the original network, ``{"zoo": name, "kwargs": {...}}``
  or ``{"factory": "package.module:function", "kwargs": {...}}``. A factory runs code, so
  :func:`load` calls one only when the caller named it (``load(path, architecture=...)``,
  ``save(..., architecture=...)`` or :func:`build_architecture` in this process, or the
  command line's MODEL): a file alone never chooses code to import or run;
* ``edits``: the structural edit log (:mod:`~dnnergy.compress.edits`) replayed on it;
* the ``state_dict`` (tensors ``state/<key>``), loaded strictly afterwards;
* ``transforms``: the weight transforms still attached (masks), re-attached so fine-tuning
  a loaded model keeps them (tensors ``transform.<i>.<name>``); a parameter whose transform
  ``encodes_values`` (weight sharing: Huffman-coded streams) is stored only in that form;
* ``hints``: the modules' energy hints (bits, executed-MAC fractions);
* ``record``: the :class:`~dnnergy.compress.Record` of the compression, and
  ``input_shape``, an example input shape (batch 1) for tracing the loaded model.

Example::

    result = dnnergy.compress.run(model, "magnitude", context)
    dnnergy.save("lenet300-pruned.dnnergy", result.model, result.record)
    loaded = dnnergy.load("lenet300-pruned.dnnergy")     # loaded.model, loaded.record
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import DnnergyError, UserInputError
from ..io import read_container, write_container
from ..workload.hints import HINTS_ATTRIBUTE, model_hints
from ..zoo import ARCHITECTURE_ATTRIBUTE
from .edits import EditLog, edit_log, replay
from .record import Record
from .transforms import TRANSFORMS, Transforms

__all__ = ["Loaded", "save", "load", "build_architecture", "architecture_of", "trust_factory"]

KIND = "model"
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
#: Factories this process was given by Python code or the command line (never by a file), which a file may name.
_TRUSTED: set[str] = set()


@dataclass(frozen=True, eq=False)
class Loaded:
    """A model read by :func:`load`: the rebuilt ``model`` (eval mode), its ``record`` (or ``None``),
    its ``architecture`` reference and an example ``input_shape`` (batch 1; ``None`` if unknown).

    Example: loading a saved zoo ``lenet300`` gives ``Loaded(model=LeNet300(...), record=None,
    architecture={'zoo': 'lenet300', 'kwargs': {}}, input_shape=(1, 1, 28, 28))``.
    """

    model: nn.Module
    record: Record | None
    architecture: dict[str, Any]
    input_shape: tuple[int, ...] | None


def architecture_of(reference: str | Mapping[str, Any]) -> dict[str, Any]:
    """A checked architecture reference: a zoo name or ``"package.module:function"`` string, or such a dict.

    Example: ``architecture_of("lenet300") == {"zoo": "lenet300", "kwargs": {}}``.
    """
    if isinstance(reference, str):
        reference = {"factory": reference} if _FACTORY.match(reference) else {"zoo": reference}
    if not isinstance(reference, Mapping) or len({"zoo", "factory"} & set(reference)) != 1:
        raise UserInputError(f"architecture must be a zoo name, 'package.module:function', or a dict with 'zoo' or "
                             f"'factory' (got {reference!r})")
    kwargs = dict(reference.get("kwargs") or {})
    key = "zoo" if "zoo" in reference else "factory"
    if not isinstance(reference[key], str) or (key == "factory" and not _FACTORY.match(reference[key])):
        raise UserInputError(f"architecture {key} must be a name such as {'lenet300' if key == 'zoo' else 'pkg.models:build'} "
                             f"(got {reference[key]!r})")
    return {key: reference[key], "kwargs": kwargs}


def build_architecture(reference: str | Mapping[str, Any]) -> nn.Module:
    """A freshly initialised model of the referenced architecture (see :func:`architecture_of`).

    The caller names the architecture, so a factory given here may later be named by a file
    :func:`load` reads in this process (a file alone never makes dnnergy import code).
    """
    return _construct(_trust(architecture_of(reference)))


def trust_factory(reference: str) -> None:
    """Let files read later in this process name the ``"package.module:function"`` factory ``reference``
    (the caller names it, e.g. the command line's ``--architecture``); nothing is imported here."""
    _trust(architecture_of(reference) if _FACTORY.match(reference) else architecture_of({"factory": reference}))


def _trust(ref: dict[str, Any]) -> dict[str, Any]:
    if "factory" in ref:
        _TRUSTED.add(ref["factory"])
    return ref


def _construct(ref: dict[str, Any]) -> nn.Module:
    from .. import zoo

    if "zoo" in ref:
        model = zoo.create_model(ref["zoo"], **ref["kwargs"])
    else:
        module_name, attr = ref["factory"].split(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UserInputError(f"cannot import the architecture {ref['factory']!r}: {exc}") from None
        model = factory(**ref["kwargs"]) if callable(factory) and not isinstance(factory, nn.Module) else factory
        if not isinstance(model, nn.Module):
            raise UserInputError(f"{ref['factory']!r} must give a torch.nn.Module (got {type(model).__name__})")
    object.__setattr__(model, ARCHITECTURE_ATTRIBUTE, ref)
    return model


def _input_shape(model: nn.Module, ref: dict[str, Any], example: Any, record: Record | None) -> list[int] | None:
    if example is not None:
        return [1, *torch.as_tensor(example).shape[1:]] if isinstance(example, torch.Tensor) else [1, *list(example)[1:]]
    if record is not None and record.input_shape is not None:
        return list(record.input_shape)
    log = edit_log(model)
    if log is not None and log.input_shapes:
        return list(log.input_shapes[0])
    if "zoo" in ref:
        from .. import zoo

        return [1, *zoo.model_info(ref["zoo"]).input_shape[1:]]
    return None


def save(path: str | os.PathLike, model: nn.Module, record: Record | None = None, *,
         architecture: str | Mapping[str, Any] | None = None, example: Any = None) -> Path:
    """Write ``model`` (with its edits, transforms, hints and ``record``) to ``path`` atomically; returns the path.

    ``architecture`` defaults to the model's own reference (``zoo.create_model`` and
    :func:`load` set it); the stored example input shape comes from ``example`` (an input
    batch or shape), else the record, the edit log or the zoo. Raises :class:`UserInputError` when the
    architecture is unknown (a model built by hand: pass ``architecture="pkg.mod:build"``).

    Example: ``dnnergy.save("lenet300.dnr", dnnergy.zoo.create_model("lenet300"))`` returns
    ``Path("lenet300.dnr")``; ``dnnergy.save("mlp.dnr", nn.Linear(4, 2))`` raises (no architecture to rebuild
    it from) unless given ``architecture="mypkg.models:build_mlp"``.
    """
    reference = architecture if architecture is not None else getattr(model, ARCHITECTURE_ATTRIBUTE, None)
    if reference is None:
        raise UserInputError(f"save: cannot tell how to rebuild a {type(model).__name__}; pass architecture= a zoo name "
                             "or 'package.module:function'")
    ref = _trust(architecture_of(reference))
    transforms = Transforms.of(model, create=False)
    records, transform_tensors = transforms.state() if transforms is not None else ([], {})
    log = edit_log(model)
    header = {
        "architecture": ref,
        "edits": log.to_dict() if log is not None else None,
        "transforms": records,
        "hints": model_hints(model),
        "record": record.to_dict() if record is not None else None,
        "input_shape": _input_shape(model, ref, example, record),
    }
    encoded = {t.parameter for t in transforms or () if getattr(t, "encodes_values", False)}  # stored coded by their transform instead
    tensors = {f"state/{k}": v for k, v in model.state_dict().items() if k not in encoded} | transform_tensors
    return write_container(path, KIND, header, tensors)


def load(path: str | os.PathLike, *, architecture: str | Mapping[str, Any] | None = None) -> Loaded:
    """Rebuild the model saved by :func:`save` in one call: architecture, edits, weights (strict), hints, transforms.

    Nothing is unpickled, and no code the file names is run: a zoo architecture is looked
    up in the registry; a ``module:factory`` one is called only if the caller names it,
    as ``architecture`` (its ``kwargs``, if none are given, are the file's when it names
    the same factory) or earlier in this process (:func:`save`, :func:`build_architecture`,
    the command line's MODEL). A file of another kind, a damaged or malformed file, an
    unnamed factory, or weights that do not fit the rebuilt architecture raise
    :class:`UserInputError` naming the file.

    Example: ``dnnergy.load("lenet300.dnr")`` (saved as in :func:`save`) returns a :class:`Loaded` whose
    ``model`` is a ``LeNet300`` in eval mode with the saved weights, masks and hints, and whose
    ``input_shape`` is ``(1, 1, 28, 28)``.
    """
    container = read_container(path, kind=KIND)
    where = os.fspath(path)
    try:
        return _rebuild(container.header, container.tensors, where, architecture)
    except DnnergyError as exc:
        if where in str(exc):
            raise
        raise UserInputError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UserInputError(f"{where}: malformed {KIND} file ({type(exc).__name__}: {exc})") from None


def _architecture(stored: Any, where: str, given: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """The reference to build: the caller's (with the file's kwargs if it names the same one), or the file's if safe."""
    stored = architecture_of(stored)
    if given is not None:
        ref = _trust(architecture_of(given))
        key = "zoo" if "zoo" in ref else "factory"
        if not ref["kwargs"] and stored.get(key) == ref[key]:
            ref["kwargs"] = stored["kwargs"]
        return ref
    if "factory" in stored and stored["factory"] not in _TRUSTED:
        raise UserInputError(
            f"{where}: the model is built by the factory {stored['factory']!r}, which dnnergy does not import or run "
            f"because a file names it; name it yourself: dnnergy.load({where!r}, architecture={stored['factory']!r}), "
            f"or on the command line `dnnergy --architecture {stored['factory']} COMMAND ...`")
    return stored


def _rebuild(header: dict[str, Any], tensors: dict[str, torch.Tensor], where: str,
             architecture: str | Mapping[str, Any] | None) -> Loaded:
    ref = _architecture(header["architecture"], where, architecture)
    model = _construct(ref)
    if header.get("edits"):
        replay(model, EditLog.from_dict(header["edits"]))
    state = {k.removeprefix("state/"): v for k, v in tensors.items() if k.startswith("state/")}
    encoded = {r["parameter"] for r in header.get("transforms") or () if getattr(TRANSFORMS.get(r["kind"]), "encodes_values", False)}
    state |= {k: v for k, v in model.state_dict().items() if k in encoded and k not in state}  # their transforms write them
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserInputError(f"{where}: weights do not fit the rebuilt architecture ({str(exc).splitlines()[0]})") from None
    modules = dict(model.named_modules())
    for module_path, hints in (header.get("hints") or {}).items():
        if module_path not in modules:
            raise UserInputError(f"{where}: energy hints for a module {module_path!r} the model does not have")
        object.__setattr__(modules[module_path], HINTS_ATTRIBUTE, dict(hints))
    model_hints(model)  # validates them
    if header.get("transforms"):
        Transforms.load(model, header["transforms"], tensors)
    record = Record.from_dict(header["record"]) if header.get("record") else None
    shape = tuple(header["input_shape"]) if header.get("input_shape") else None
    if shape is not None and not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise UserInputError(f"{where}: input_shape must be positive ints (got {header['input_shape']!r:.80})")
    return Loaded(model.eval(), record, ref, shape)

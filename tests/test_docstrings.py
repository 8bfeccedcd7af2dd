"""Every public callable has a docstring with an example, and the ones that deal in physical
quantities name their unit.

The public API is each name in the ``__all__`` of ``dnnergy`` and of its subpackages, plus the
public methods and properties that a public class defines itself (not dunders, not those it
inherits, not those ``dataclass`` generates). An override of a method that a dnnergy base class
documents is covered by the base's docstring. A method or property may also be covered by its
class's example when that example uses it by name (``report.by_level()``, ``workload.macs``), as
fvcore's ``FlopCountAnalysis`` shows all its queries in one example.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import sys
import warnings

import pytest

PACKAGES = ["dnnergy"] + [f"dnnergy.{name}" for name in (
    "workload", "energy", "hardware", "compress", "explore", "metrics", "report", "train", "data", "coding", "io", "zoo")]

#: A line with an example: one containing ``Example``/``Examples`` (``Example::``) or a ``>>>`` doctest prompt.
EXAMPLE = re.compile(r"\bExamples?\b|^\s*>>> ", re.MULTILINE)

#: Callables that take or return a physical quantity, and the unit words their docstring must use
#: (one of them). Energies are in the hardware's unit (pJ, or MAC-normalized); sizes in bits/bytes/words;
#: times in seconds/ms; accuracies as fractions (0..1) or percentage points.
UNITS = {
    "dnnergy.energy.estimate.estimate": r"pJ|MAC-normali[sz]ed",
    "dnnergy.energy.profile.profile": r"pJ|MAC-normali[sz]ed|unit",
    "dnnergy.energy.report.EnergyReport": r"pJ|MAC-normali[sz]ed",
    "dnnergy.energy.report.EnergyReport.total": r"pJ|MAC-normali[sz]ed|unit",
    "dnnergy.energy.report.EnergyReport.normalized": r"MAC-normali[sz]ed|reference MAC",
    "dnnergy.energy.report.EnergyRecord": r"unit",
    "dnnergy.energy.codes.DramCode.coded_bits": r"\bbits\b",
    "dnnergy.energy.codes.code_ratio": r"\bbits\b|ratio",
    "dnnergy.hardware.hardware.Hardware": r"pJ|MAC-normali[sz]ed",
    "dnnergy.hardware.level.MemoryLevel.access_energy": r"pJ|unit",
    "dnnergy.hardware.level.MemoryLevel.capacity_words": r"words",
    "dnnergy.hardware.mac.MacCost.energy": r"pJ|unit",
    "dnnergy.hardware.mac.MacCost.reference_energy": r"pJ|unit",
    "dnnergy.workload.workload.Workload.macs": r"MACs?\b",
    "dnnergy.workload.workload.Workload.unsupported_share": r"fraction",
    "dnnergy.compress.record.Record.energy_reduction": r"ratio",
    "dnnergy.compress.record.Record.accuracy_drop": r"fraction|percent",
    "dnnergy.compress.context.CompressionContext.evaluate": r"fraction|percent",
    "dnnergy.metrics.point.Point": r"fraction|percent",
    "dnnergy.metrics.point.model_bytes": r"bytes",
    "dnnergy.metrics.latency.measure_latency": r"seconds|\bms\b",
    "dnnergy.metrics.latency.model_latency": r"seconds|\bms\b",
    "dnnergy.metrics.latency_table.LatencyTable.layer_latency": r"seconds|\bms\b",
    "dnnergy.metrics.objectives.EnergyObjective": r"pJ|MAC-normali[sz]ed|unit",
    "dnnergy.train.loop.evaluate": r"fraction|percent",
    "dnnergy.coding.bits.Bitstream": r"\bbits\b",
    "dnnergy.coding.bits.Bitstream.nbytes": r"bytes",
    "dnnergy.coding.entropy.entropy_bits": r"\bbits\b",
    "dnnergy.coding.runlength.encode_rlc": r"\bbits\b",
    "dnnergy.coding.huffman.huffman_encode": r"\bbits\b",
    "dnnergy.explore.tradeoff.tradeoff": r"fraction|percent",
}


def _function(member):
    """The function behind a class attribute (plain, static, class method or property), else None."""
    if isinstance(member, (staticmethod, classmethod)):
        return member.__func__
    if isinstance(member, property):
        return member.fget
    return member if inspect.isfunction(member) else None


def _documented_by_base(cls: type, name: str) -> bool:
    """Whether a dnnergy base class of ``cls`` defines ``name`` (its docstring then documents the override)."""
    return any(name in vars(base) and base.__module__.startswith("dnnergy.") for base in cls.__mro__[1:])


def public_api() -> dict[str, tuple[object, type | None]]:
    """Qualified name -> (function or class, the class it belongs to for methods, else None)."""
    api: dict[str, tuple[object, type | None]] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # constants (MAC_KINDS, METHODS, ...) and submodules
            qualname = f"{obj.__module__}.{obj.__qualname__}"
            api[qualname] = (obj, None)
            if not inspect.isclass(obj):
                continue
            for attr, member in vars(obj).items():
                function = _function(member)
                if attr.startswith("_") or function is None or _documented_by_base(obj, attr):
                    continue
                api[f"{qualname}.{attr}"] = (function, obj)
    return api


API = public_api()


def _has_example(obj, owner: type | None, name: str) -> bool:
    if EXAMPLE.search(inspect.getdoc(obj) or ""):
        return True
    if owner is None:
        return False
    class_doc = inspect.getdoc(owner) or ""
    match = EXAMPLE.search(class_doc)
    return bool(match) and re.search(rf"\.{re.escape(name)}\b", class_doc[match.start():]) is not None


def test_the_public_api_is_collected():
    # the top-level verbs, report views and methods the issue names are all in the set checked below
    for name in ("dnnergy.energy.estimate.estimate", "dnnergy.energy.report.EnergyReport.by_level",
                 "dnnergy.workload.workload.Workload.to_frame", "dnnergy.compress.contract.run",
                 "dnnergy.zoo._registry.create_model"):
        assert name in API, name
    assert len(API) > 250


@pytest.mark.parametrize("qualname", sorted(API))
def test_docstring_has_an_example(qualname):
    obj, owner = API[qualname]
    assert inspect.getdoc(obj), f"{qualname} has no docstring"
    assert _has_example(obj, owner, qualname.rsplit(".", 1)[1]), (
        f"{qualname}: no example (a line with 'Example' or a '>>> ' prompt) in its docstring"
        + (" or in its class's example" if owner else ""))


@pytest.mark.parametrize("qualname", sorted(UNITS))
def test_docstring_names_its_unit(qualname):
    assert qualname in API, f"{qualname} is not public any more: update UNITS"
    doc = inspect.getdoc(API[qualname][0]) or ""
    assert re.search(UNITS[qualname], doc, re.IGNORECASE), f"{qualname}: the docstring does not name its unit ({UNITS[qualname]})"


#: Modules of the public API whose docstrings hold ``>>>`` examples (16 modules, about 7 s in all).
DOCTEST_MODULES = sorted({inspect.getmodule(obj).__name__ for obj, _ in API.values()
                          if any(t.examples for t in doctest.DocTestFinder().find(inspect.getmodule(obj)))})


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_doctest_examples_are_true(module):
    # the >>> examples run as written: an example that no longer matches the code fails here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trace's notes on ignored ops are not part of the examples
        result = doctest.testmod(sys.modules[module], optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{module}: {result.failed} of {result.attempted} doctest examples failed (output above)"

"""The top-level package: every exported name resolves (lazily) to the object its subpackage defines."""

from __future__ import annotations

import subprocess
import sys

import pytest

import dnnergy

#: The names ``dnnergy`` exported when it imported them eagerly (0.1.0), and where each is defined.
EXPORTED = {
    "dnnergy.workload": ["trace", "from_onnx", "Workload", "Layer", "OpKind", "Datum", "TensorStats", "UnsupportedOp",
                         "register_op", "list_ops"],
    "dnnergy.energy": ["estimate", "profile", "EnergyReport", "list_dataflows"],
    "dnnergy.hardware": ["Hardware", "load_hardware", "list_presets"],
    "dnnergy.compress": ["CompressionContext", "Record", "Result", "run", "register_method", "list_methods", "get_method"],
    "dnnergy.compress.artifact": ["save", "load", "Loaded"],
    "dnnergy.errors": ["DnnergyError", "UserInputError", "TraceError", "UnsupportedOpError", "OnnxImportError",
                       "HardwareConfigError"],
}


def test_all_lists_every_exported_name_once():
    names = [n for group in EXPORTED.values() for n in group]
    assert sorted(dnnergy.__all__) == sorted(names) and len(set(dnnergy.__all__)) == len(dnnergy.__all__)
    assert set(dnnergy._EXPORTS) == set(dnnergy.__all__)  # the lazy table knows where each one lives


@pytest.mark.parametrize("module, name", [(m, n) for m, group in EXPORTED.items() for n in group])
def test_every_name_resolves_to_its_definition(module, name):
    import importlib

    assert getattr(dnnergy, name) is getattr(importlib.import_module(module), name)
    assert name in dir(dnnergy)


def test_star_import_and_subpackages():
    namespace: dict = {}
    exec("from dnnergy import *", namespace)
    assert set(dnnergy.__all__) <= set(namespace)
    assert dnnergy.compress.run is dnnergy.run and dnnergy.explore.pareto_front is not None
    assert isinstance(dnnergy.__version__, str)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dnnergy.nope  # noqa: B018
    assert not hasattr(dnnergy, "nope")


def test_importing_compress_alone_registers_every_method():
    # eliminate and netadapt register from dnnergy.explore; a fresh process that imports only
    # dnnergy.compress must still list them (as when dnnergy/__init__ imported explore eagerly)
    code = "from dnnergy.compress import list_methods; print(','.join(list_methods()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert {"eliminate", "netadapt", "magnitude", "structured", "quantize", "share", "lowrank", "distill"} <= set(
        out.stdout.strip().split(","))

"""The catalogue `dnnergy zoo` and `dnnergy methods` print from (dnnergy/catalog_data.py, plain data) is what
the registries define, entry by entry and field by field; the listings print what they printed when they
read the registries (tests/cli/test_startup.py checks they import no torch)."""

from __future__ import annotations

import importlib
from dataclasses import fields, replace

import pytest
from typer.testing import CliRunner

from dnnergy import catalog
from dnnergy.cli import app
from dnnergy.cli._params import as_text, describe
from dnnergy.compress import get_method, list_methods
from dnnergy.zoo import _registry, list_models, register_model

REGENERATE = "run `python -m dnnergy.catalog` to regenerate dnnergy/catalog_data.py"


def drift(kind: str, registered: list, catalogued: list) -> list[str]:
    """What differs between the entries built from the registries and the catalogue's, one line each."""
    built, listed = {e.name: e for e in registered}, {e.name: e for e in catalogued}
    lines = [f"{kind} {name!r} is registered but not in the catalogue" for name in sorted(built.keys() - listed.keys())]
    lines += [f"{kind} {name!r} is in the catalogue but no longer registered" for name in sorted(listed.keys() - built.keys())]
    for name in sorted(built.keys() & listed.keys()):
        lines += [f"{kind} {name!r}: {f.name} is {getattr(listed[name], f.name)!r} in the catalogue, "
                  f"{getattr(built[name], f.name)!r} in the registry"
                  for f in fields(built[name]) if getattr(built[name], f.name) != getattr(listed[name], f.name)]
    return lines


def test_catalogue_matches_the_registries():
    models, methods = catalog.build()
    differences = drift("model", models, catalog.zoo_entries()) + drift("method", methods, catalog.method_entries())
    assert not differences, "\n".join([*differences, REGENERATE])
    assert catalog.source() == catalog.DATA.read_text(encoding="utf-8"), REGENERATE  # and in its generated layout
    assert [e.name for e in models] == list_models() and [e.name for e in methods] == list_methods()


def test_catalogue_against_independent_figures():
    # LeNet-5 (seed 002, Caffe): 20x24x24x25 + 50x8x8x500 + 800x500 + 500x10 = 288,000 + 1,600,000 + 400,000 + 5,000
    # MACs; 430,500 weights + 20 + 50 + 500 + 10 biases = 431,080 params; LeNet-300-100: 784x300 + 300x100 + 100x10
    lenet5, lenet300 = (catalog.zoo_entries(name)[0] for name in ("lenet5", "lenet300"))
    assert (lenet5.input_shape, lenet5.macs, lenet5.params) == ((1, 1, 28, 28), 2_293_000, 431_080)
    assert lenet300.macs == 784 * 300 + 300 * 100 + 100 * 10
    # every factory reference imports and is the registered factory, so the entry says how to build the model
    for entry in catalog.zoo_entries():
        module, _, name = entry.factory.partition(":")
        assert getattr(importlib.import_module(module), name) is _registry._MODELS.get(entry.name)[0], entry.name


def test_drift_names_a_new_model_and_a_changed_field(monkeypatch):
    monkeypatch.setattr(_registry, "_MODELS", _registry._MODELS.copy())  # the registration stays in this test
    register_model("tiny", input_shape=(1, 4), description="one layer")(lambda: None)
    models, methods = catalog.build()
    assert drift("model", models, catalog.zoo_entries()) == ["model 'tiny' is registered but not in the catalogue"]
    # the Python zoo table lists what is registered now, user models too; `dnnergy zoo` lists the catalogue
    from dnnergy.report import zoo_table

    assert "tiny" in [row[0] for row in zoo_table().rows]
    assert "tiny" not in [row[0] for row in zoo_table(catalog.zoo_entries()).rows]
    changed = [replace(e, summary="renamed") if e.name == "magnitude" else e for e in catalog.method_entries()]
    assert drift("method", methods, changed) == [
        f"method 'magnitude': summary is 'renamed' in the catalogue, {get_method('magnitude').summary!r} in the registry"]
    assert drift("method", methods[1:], catalog.method_entries()) == [
        f"method {methods[0].name!r} is in the catalogue but no longer registered"]


def _methods_from_the_registry(pattern: str) -> str:
    """What `dnnergy methods PATTERN` printed when it read the registry (before the catalogue)."""
    lines = []
    for name in list_methods(pattern):
        spec = get_method(name)
        sweep = f" (sweeps --{spec.strength.replace('_', '-')})" if spec.strength else ""
        lines.append(f"{name}{sweep}: {spec.summary}")
        lines += [f"    --{p.name.replace('_', '-')} {as_text(p.default)}    ({describe(p.annotation)})" for p in spec.params]
    return "".join(f"{line}\n" for line in lines)


@pytest.mark.parametrize("pattern", ["*", "q*", "s*", "nothing*"])
def test_methods_prints_what_the_registry_holds(pattern):
    result = CliRunner().invoke(app, ["methods", pattern])
    assert result.exit_code == 0, result.output
    assert result.output == _methods_from_the_registry(pattern)
    assert ("magnitude (sweeps --sparsity): Han et al. 2015" in result.output) == (pattern == "*")


def test_zoo_prints_what_the_registry_holds(monkeypatch):
    # the table `dnnergy zoo` printed when it read the registry (before the catalogue), rendered the same way
    from dnnergy.cli._format import console, render
    from dnnergy.report import Table, zoo_table
    from dnnergy.zoo import model_info

    rows = [(name, "x".join(map(str, info.input_shape)), info.published.get("macs"),
             info.published.get("params", info.published.get("weights")), info.description)
            for name, info in ((name, model_info(name)) for name in list_models())]
    expected = zoo_table()
    assert list(expected.rows) == rows
    for columns in ("200", "80"):  # one table, and folded into several
        monkeypatch.setenv("COLUMNS", columns)
        with console.capture() as captured:
            console.print(render(Table(expected.title, expected.columns, rows, notes=expected.notes)))
        result = CliRunner().invoke(app, ["zoo"])
        assert result.exit_code == 0, result.output
        assert result.output == captured.get()

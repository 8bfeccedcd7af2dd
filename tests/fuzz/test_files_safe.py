"""Files are safe (issue 14): every file dnnergy writes is atomic, has normal permissions and holds no pickle.

Two checks. A scan of the source (``dnnergy/`` and ``benchmarks/``) finds every way Python
can write or unpickle a file and allows only :mod:`dnnergy.io` (``atomic_write``, the
container) to do it; a new ``open(path, "w")`` or ``torch.save`` anywhere fails here. Then
each file type dnnergy writes is written under two umasks and must have the mode of any
freshly created file, ``0o666 & ~umask`` (not ``mkstemp``'s 0o600).
"""

from __future__ import annotations

import ast
import importlib
import os
import stat
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import dnnergy
from dnnergy.energy import estimate
from dnnergy.io import atomic_write, write_container
from dnnergy.workload import Layer, Workload, formulas

ROOT = Path(__file__).resolve().parents[2]
SCANNED = sorted([*(ROOT / "dnnergy").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
IO_PACKAGE = ROOT / "dnnergy" / "io"

#: Modules that deserialise arbitrary objects (running code from the data).
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
#: Calls that write a file, wherever they appear: ``(object name, attribute)``; ``None`` = any object.
WRITERS = {("torch", "save"), ("json", "dump"), ("np", "save"), ("np", "savez"), ("np", "savez_compressed"),
           ("numpy", "save"), ("shutil", "copy"), ("shutil", "copyfile"), ("shutil", "copy2"), ("shutil", "move"),
           ("os", "rename"), ("os", "replace"), ("os", "open"), ("tempfile", "mkstemp"),
           ("tempfile", "NamedTemporaryFile"), (None, "write_text"), (None, "write_bytes"), (None, "tofile")}
#: Where each serialising call takes its file: a variable holding an ``io.BytesIO``/``io.StringIO`` there is
#: memory, not a file (``torch.save`` to measure PyTorch's size, ``savefig`` for inline SVG).
TARGET = {"torch.save": 1, "json.dump": 1, "np.save": 0, "numpy.save": 0, "np.savez": 0, "*.savefig": 0}


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        return f"{owner}.{func.attr}" if owner else f"*.{func.attr}"
    return func.id if isinstance(func, ast.Name) else ""


def _write_mode(node: ast.Call) -> bool:
    """Whether an ``open(...)`` / ``Path.open(...)`` call opens for writing (mode with w, a, x or +)."""
    mode = node.args[1] if len(node.args) > 1 and _call_name(node) == "open" else node.args[0] if node.args and \
        _call_name(node).endswith(".open") else next((k.value for k in node.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and any(c in mode.value for c in "wax+")


def _inside_atomic_write(node: ast.AST, parents: dict) -> bool:
    """Whether ``node`` sits in a lambda or function passed to ``atomic_write`` (the writer callable)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call) and _call_name(node).endswith("atomic_write"):
            return True
    return False


def _in_memory(node: ast.Call, name: str, buffers: set[str]) -> bool:
    index = TARGET.get(name)
    target = node.args[index] if index is not None and len(node.args) > index else None
    return isinstance(target, ast.Name) and target.id in buffers


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    buffers = {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
               and _call_name(node.value).split(".")[-1] in ("BytesIO", "StringIO")
               for target in node.targets if isinstance(target, ast.Name)}
    where = path.relative_to(ROOT).as_posix()
    found = []
    in_io = path.is_relative_to(IO_PACKAGE)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where}:{node.lineno}: imports {n}" for n in names if n.split(".")[0] in UNSAFE_MODULES]
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        owner, _, attr = name.rpartition(".")
        if name == "torch.load":
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if not safe:
                found.append(f"{where}:{node.lineno}: torch.load without weights_only=True")
        elif ((owner, attr) in WRITERS or (None, attr) in WRITERS and owner) and not in_io:
            if not _in_memory(node, name, buffers):
                found.append(f"{where}:{node.lineno}: {name} writes a file outside dnnergy.io")
        elif (name == "open" or name.endswith(".open")) and _write_mode(node) and not in_io:
            found.append(f"{where}:{node.lineno}: {name}(..., write mode) outside dnnergy.io")
        elif attr == "savefig" and not _inside_atomic_write(node, parents) and not _in_memory(node, "*.savefig", buffers):
            found.append(f"{where}:{node.lineno}: savefig not inside atomic_write")
    return found


def test_the_scan_finds_what_it_forbids(tmp_path, monkeypatch):
    """The scanner flags each forbidden pattern (so the source check below can fail)."""
    bad = ROOT / "dnnergy" / "_scan_probe.py"
    code = ("import pickle\nimport torch, json\nfrom pathlib import Path\n"
            "torch.load('x')\ntorch.load('x', weights_only=False)\ntorch.save({}, 'x')\n"
            "json.dump({}, open('x', 'w'))\nPath('x').write_text('a')\nPath('x').open('wb')\nfig.savefig('x.png')\n"
            "torch.load('x', weights_only=True)\nopen('x')\natomic_write('x', lambda h: fig.savefig(h))\n"
            "b = io.BytesIO()\ntorch.save({}, b)\nfig.savefig(b)\n")
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: code)
    found = _violations(bad)
    assert sorted(line.split(": ", 1)[1] for line in found) == sorted([
        "imports pickle", "torch.load without weights_only=True", "torch.load without weights_only=True",
        "torch.save writes a file outside dnnergy.io", "json.dump writes a file outside dnnergy.io",
        "open(..., write mode) outside dnnergy.io", "*.write_text writes a file outside dnnergy.io",
        "*.open(..., write mode) outside dnnergy.io", "savefig not inside atomic_write"]), found


def test_every_write_goes_through_dnnergy_io_and_nothing_unpickles():
    assert len(SCANNED) > 50
    found = [v for path in SCANNED for v in _violations(path)]
    assert found == [], "\n".join(found)


# -- permissions of each file type, against the umask ---------------------------------------------

def _report():
    conv = Layer("conv", op="aten.convolution", **formulas.conv([1, 2, 6, 6], [3, 2, 3, 3], [1, 3, 4, 4], 1, 0, 1, 1))
    return estimate(Workload((conv,), "toy"), "eyeriss")


def _writers(folder: Path) -> dict[str, Path]:
    """Write one file of each type dnnergy writes into ``folder``; return them by type."""
    from dnnergy.metrics.latency_table import LatencyTable
    from dnnergy.report import plots

    pretrained = importlib.import_module("dnnergy.train.pretrained")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        results = importlib.import_module("_results")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    report = _report()
    model = dnnergy.zoo.create_model("lenet300", num_classes=3)
    table = LatencyTable(torch.zeros(1, 4), folder / "latency.json", repeats=1, warmup=0)
    table.layer_latency(nn.Linear(4, 2), (torch.zeros(1, 4),))
    return {
        "energy report JSON": (report.to_json(folder / "report.json"), folder / "report.json")[1],
        "energy report CSV": (report.to_csv(folder / "report.csv"), folder / "report.csv")[1],
        "breakdown plot PNG": plots.plot_breakdown(report, folder / "breakdown.png"),
        "trade-off plot SVG": plots.plot_tradeoff({"m": [(1.0, 0.9), (2.0, 0.95)]}, folder / "tradeoff.svg", "energy"),
        "compressed model (container)": dnnergy.save(folder / "model.dnnergy", model),
        "pretrained checkpoint (container)": (pretrained._save(folder / "cache" / "cp.dnnergy", model, {"a": 1}),
                                              folder / "cache" / "cp.dnnergy")[1],
        "bare container": write_container(folder / "c.dnr", "weights", {}, {"w": torch.ones(2)}),
        "record / history JSON (atomic_write, as the CLI)": atomic_write(folder / "model.dnnergy.json", "{}"),
        "latency table JSON": table.save(),
        "benchmark results Markdown": results.write_section("Probe", "body\n", folder / "results.md"),
    }


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_each_written_file_type_has_the_umask_permissions(tmp_path, mask):
    old = os.umask(mask)
    try:
        written = _writers(tmp_path)
    finally:
        os.umask(old)
    modes = {kind: oct(stat.S_IMODE(path.stat().st_mode)) for kind, path in written.items()}
    assert modes == {kind: oct(0o666 & ~mask) for kind in written}
    leftovers = [p.name for p in tmp_path.rglob(".*.tmp")]
    assert leftovers == []

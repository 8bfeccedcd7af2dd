"""The properties every generated network must have, shared by the fuzz tests and ``benchmarks/fuzz.py``.

Each check raises ``AssertionError`` naming what broke; any other exception escapes as it
came (the callers count it by kind). Closed forms come from :mod:`_networks`, never
from dnnergy.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from pathlib import Path

import torch

import dnnergy
from dnnergy.energy import list_dataflows
from dnnergy.hardware import list_presets

from _networks import Net

__all__ = ["REL", "trace_net", "check_counts", "check_estimates", "export_onnx", "check_onnx"]

REL = 1e-9  #: relative tolerance of sums of floats that should agree exactly


def _under(module: str, path: str) -> bool:
    return not path or module == path or module.startswith(path + ".")


def _quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with warnings silenced (uncounted ops warn; the checks read the lists)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def trace_net(net: Net) -> dnnergy.Workload:
    """``dnnergy.trace`` of a generated network."""
    return _quiet(dnnergy.trace, net.model, net.inputs)


def _block_macs(workload: dnnergy.Workload, path: str) -> int:
    return sum(layer.macs for layer in workload.layers if _under(layer.module, path))


def check_counts(net: Net, workload: dnnergy.Workload) -> None:
    """Counted MACs per block equal the closed form; MACs of blocks without a model are listed, not dropped."""
    for path, expected in net.macs.items():
        got = _block_macs(workload, path)
        assert got == expected, f"{net}: block {path!r} counted {got:,} MACs, closed form {expected:,}"
    for path in net.unsupported:
        assert _block_macs(workload, path) == 0, f"{net}: block {path!r} has no dataflow model yet counted MACs"
        assert any(_under(m, path) for u in workload.unsupported for m in u.modules), \
            f"{net}: block {path!r} (no dataflow model) is not listed unsupported: {workload.unsupported}"
    for path, expected in net.pool_ops.items():
        got = sum(l.ops for l in workload.layers if l.kind is dnnergy.OpKind.POOL and _under(l.module, path))
        assert got == expected, f"{net}: pooling in block {path!r} counted {got:,} ops, closed form {expected:,}"
    unknown = [u for u in workload.unsupported if u.macs is None]
    assert not unknown, f"{net}: uncounted ops with an unknown MAC share: {unknown}"
    listed = sum(net.unsupported.values())
    assert workload.unsupported_macs == listed, \
        f"{net}: unsupported ops list {workload.unsupported_macs:,} MACs, closed form {listed:,} ({workload.unsupported})"
    assert workload.macs == sum(net.macs.values()), f"{net}: {workload.macs:,} MACs in all, closed form {sum(net.macs.values()):,}"
    share = workload.unsupported_share()
    total = workload.macs + listed
    for u in workload.unsupported:
        assert math.isclose(share[u.op], u.macs / total if total else 0.0, rel_tol=REL)


def _check_report(report: dnnergy.EnergyReport, workload: dnnergy.Workload, where: str) -> None:
    total = report.total
    assert math.isfinite(total) and total >= 0, f"{where}: total energy {total!r}"
    for record in report.records:
        assert math.isfinite(record.energy) and record.energy >= 0, f"{where}: {record}"
        assert math.isfinite(record.accesses) and record.accesses >= 0, f"{where}: {record}"
    for view in ("by_level", "by_datum", "by_layer", "by_datum_and_level"):
        parts = getattr(report, view)()
        assert math.isclose(math.fsum(parts.values()), total, rel_tol=REL, abs_tol=1e-12), f"{where}: {view} sums to {math.fsum(parts.values())!r}, total {total!r}"
    names = {layer.name for layer in workload.layers}
    assert set(report.by_layer()) <= names, f"{where}: records of unknown layers {set(report.by_layer()) - names}"
    # dense layers (no densities below 1) perform every MAC, gated or skipped
    assert math.isclose(report.macs, workload.macs, rel_tol=REL), f"{where}: report prices {report.macs} MACs of {workload.macs}"


def check_estimates(workload: dnnergy.Workload, where: str = "") -> int:
    """``estimate`` on every preset and dataflow (non-MAC layers priced, and excluded once): checks the report; returns the count."""
    count = 0
    for preset in list_presets():
        for dataflow in list_dataflows():
            _check_report(dnnergy.estimate(workload, preset, dataflow), workload, f"{where} {preset}/{dataflow}")
            count += 1
    report = dnnergy.estimate(workload, "eyeriss", non_mac="exclude")
    _check_report(report, workload, f"{where} eyeriss, non-MAC excluded")
    assert set(report.excluded) == {layer.name for layer in workload.layers if not layer.is_mac}
    return count + 1


@contextlib.contextmanager
def _stdout_silenced():
    """File descriptor 1 pointed at /dev/null (torch's exporter prints from C++, past ``sys.stdout``)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def export_onnx(net: Net, path: Path) -> bool:
    """Export with the TorchScript exporter (``dynamo=False``); False when torch cannot (no symbolic for an op)."""
    try:
        with _stdout_silenced():  # a failed export prints its TorchScript graph
            _quiet(torch.onnx.export, net.model, net.inputs, str(path), dynamo=False)
    except Exception as exc:  # torch's own limits (UnsupportedOperatorError, SymbolicValueError, ...), not dnnergy's
        if isinstance(exc, dnnergy.DnnergyError):
            raise
        return False
    return True


def check_onnx(net: Net, traced: dnnergy.Workload, path: Path) -> dnnergy.Workload:
    """``from_onnx`` of an exported file: MACs per block and in all (counted + listed) equal the trace's."""
    imported = _quiet(dnnergy.from_onnx, path)
    unknown = [u for u in imported.unsupported if u.macs is None]
    assert not unknown, f"{net}: ONNX ops uncounted with an unknown MAC share: {unknown}"
    paths = {layer.module for layer in imported.layers} & {layer.module for layer in traced.layers}
    for block in set(net.macs) | paths:
        if any(_under(layer.module, block) for layer in imported.layers) and any(_under(l.module, block) for l in traced.layers):
            got, want = _block_macs(imported, block), _block_macs(traced, block)
            assert got == want, f"{net}: ONNX block {block!r} has {got:,} MACs, trace {want:,}"
    got = imported.macs + imported.unsupported_macs
    want = traced.macs + traced.unsupported_macs
    assert got == want, f"{net}: ONNX has {imported.macs:,} + {imported.unsupported_macs:,} listed MACs, trace {traced.macs:,} + {traced.unsupported_macs:,}"
    return imported

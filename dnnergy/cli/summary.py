"""``dnnergy summary`` and ``dnnergy zoo``: per-layer shapes and counts."""

from __future__ import annotations

import csv
import io

from ..workload import Workload
from ._format import render_table, si

__all__ = ["summary_table", "summary_csv", "zoo_table"]


def _shape(layer) -> tuple[str, str, str]:
    inp = f"{layer.C}x{layer.H}x{layer.W}"
    out = f"{layer.M}x{layer.E}x{layer.F}"
    kernel = f"{layer.R}x{layer.S}" if layer.R * layer.S > 1 else ""
    if layer.stride != (1, 1):
        kernel += f"/s{layer.stride[1]}"
    if layer.groups > 1:
        kernel += f" g{layer.groups}"
    return inp, out, kernel


def summary_table(workload: Workload):
    """A per-layer table (name, kind, shapes, MACs, params, fmap sizes) with totals."""
    rows = []
    for layer in workload:
        inp, out, kernel = _shape(layer)
        rows.append((layer.name, layer.kind.value, inp, out, kernel, si(layer.macs), si(layer.ops), si(layer.params), si(layer.ifmap), si(layer.ofmap)))
    totals = workload.totals()
    footer = ("total", f"{len(workload)} layers", "", "", "", si(totals["macs"]), si(sum(l.ops for l in workload)), si(totals["params"]), si(totals["ifmap"]), si(totals["ofmap"]))
    shapes = ", ".join(str(s) for s in workload.input_shapes)
    return render_table(f"{workload.name}  input {shapes}", ["layer", "kind", "in CxHxW", "out MxExF", "kernel", "MACs", "ops", "params", "ifmap", "ofmap"], rows, footer)


def summary_csv(workload: Workload) -> str:
    """CSV with one row per layer (all Layer fields)."""
    records = workload.to_records()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["name"])
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def unsupported_lines(workload: Workload) -> list[str]:
    """Human lines about ops that were not counted and ops known to be free."""
    lines = []
    shares = workload.unsupported_share()
    for op in workload.unsupported:
        share = shares[op.op]
        share_text = f"{share:.1%} of MACs" if share is not None else "MACs unknown"
        lines.append(f"not counted: {op.op} x{op.count} in {', '.join(m or '<root>' for m in op.modules)} ({share_text})")
    free = sum(count for _, count in workload.ignored)
    if free:
        lines.append(f"free ops (views, reshapes, tensor creation): {free}")
    return lines


def zoo_table():
    """The zoo with input shapes and published figures."""
    from .. import zoo

    rows = []
    for name in zoo.list_models():
        info = zoo.model_info(name)
        published = info.published or {}
        rows.append((name, "x".join(map(str, info.input_shape)), si(published.get("macs", 0)) if published.get("macs") else "", si(published.get("params", published.get("weights", 0))) if published else "", info.description))
    return render_table("dnnergy zoo", ["model", "input", "published MACs", "published params", "description"], rows)

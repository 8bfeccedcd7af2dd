"""Per-layer tables that set energy beside its usual proxies (MACs, weights), and each layer's precision and sparsity.

Seed 004's point: a layer's share of MACs or of weights is a poor guide to its share of
energy (data movement dominates, and it follows reuse, not counts). :func:`share_table`
puts the three shares side by side; :func:`precision_table` lists the bitwidths and
zero fractions the estimate priced.
"""

from __future__ import annotations

from ..energy import EnergyReport
from ..workload import Workload
from .tables import Table

__all__ = ["share_table", "precision_table"]


def _percent(part: float, whole: float) -> float:
    return 100 * part / whole if whole else 0.0


def share_table(workload: Workload, report: EnergyReport) -> Table:
    """One row per layer: energy, MACs and weights, each with its share of the network (%), and energy per MAC.

    Energy is the report's, per image (divided by ``report.batch``); MACs are the
    workload's for one image too; weights count parameter weights only (no biases, not the
    second operand of an activation-activation MATMUL). Layers the report excluded have
    no energy. Example: two FC layers of 300 and 100 MACs (300 and 100 weights) priced
    at 10 and 30 pJ give shares (25 %, 75 %, 75 %) and (75 %, 25 %, 25 %).
    """
    batch = workload.batch
    by_layer = report.by_layer()
    energy_total = sum(by_layer.values())
    macs_total, weights_total = workload.macs, workload.weights
    rows = []
    for layer in workload:
        joules = by_layer.get(layer.name, 0.0)
        weights = layer.weights if layer.weight_is_param else 0
        rows.append((layer.name, layer.kind.value, joules / batch, _percent(joules, energy_total), layer.macs // batch,
                     _percent(layer.macs, macs_total), weights, _percent(weights, weights_total),
                     joules / layer.macs if layer.macs else None))
    unit = report.unit
    columns = ("layer", "kind", f"energy ({unit})", "energy share (%)", "MACs", "MAC share (%)", "weights",
               "weight share (%)", f"energy per MAC ({unit})")
    footer = ("total", f"{len(rows)} layers", energy_total / batch, 100.0 if energy_total else 0.0, macs_total // batch,
              100.0 if macs_total else 0.0, weights_total, 100.0 if weights_total else 0.0,
              energy_total / macs_total if macs_total else None)
    per = " per image" if batch > 1 else ""
    return Table(f"{workload.name}: share of energy{per} vs share of MACs and weights ({report.hardware}, {report.dataflow})",
                 columns, rows, footer)


def precision_table(workload: Workload, word_bits: int) -> Table:
    """One row per layer: weight, input and output bits, their sparsity (% zeros), MACs executed (%) and whether
    densities were measured.

    Bits are the layer's own (a quantizer's hint) or the hardware's ``word_bits``, the
    rule :func:`dnnergy.energy.estimate` prices with. Sparsity is ``100 * (1 - density)``;
    "MACs executed" is ``100 * mac_density`` (an algorithm that stops early, SnaPEA-style,
    runs fewer). Example: a layer with ``w_bits=8``, ``w_density=0.25`` on 16-bit
    hardware has weight bits 8, input bits 16 and weight sparsity 75 %.
    """
    rows = [(layer.name, layer.kind.value, layer.w_bits or word_bits, layer.i_bits or word_bits, layer.o_bits or word_bits,
             100 * (1 - layer.w_density), 100 * (1 - layer.i_density), 100 * (1 - layer.o_density), 100 * layer.mac_density,
             "yes" if any((layer.w_stats, layer.i_stats, layer.o_stats)) else "")
            for layer in workload]
    columns = ("layer", "kind", "weight bits", "input bits", "output bits", "weight sparsity (%)", "input sparsity (%)",
               "output sparsity (%)", "MACs executed (%)", "measured")
    return Table(f"{workload.name}: bitwidth and sparsity per layer (hardware word {word_bits} bits)", columns, rows)

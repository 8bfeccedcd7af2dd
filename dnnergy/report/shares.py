"""Per-layer tables that set energy beside its usual proxies (MACs, weights), and each layer's precision and sparsity.

Seed 004's point: a layer's share of MACs or of weights is a poor guide to its share of
energy (data movement dominates, and it follows reuse, not counts). :func:`share_table`
puts the three shares side by side; :func:`share_bars` picks the layers worth a bar (the
rest summed into one labelled bar); :func:`precision_table` lists the bitwidths and zero
fractions the estimate priced.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..energy import EnergyReport
from ..workload import Workload
from .tables import Table

__all__ = ["share_table", "ShareBars", "share_bars", "precision_table"]

#: Shares (%) for which :func:`share_bars` gives a layer its own bar, when its energy, MAC or weight share reaches it.
MIN_SHARE = 0.5

_SHARES = {"energy": "energy share (%)", "MAC": "MAC share (%)", "weight": "weight share (%)"}


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


@dataclass(frozen=True, slots=True)
class ShareBars:
    """The bars of the share chart: ``labels`` (layer names, then the ``other`` bar's label when layers were summed),
    ``series`` (``"energy"``, ``"MAC"``, ``"weight"``: one share in % per label), ``other`` (how many layers the last
    bar sums, 0: none) and ``other_shares`` (that bar's three shares, %, for a caption)."""

    labels: tuple[str, ...]
    series: dict[str, tuple[float, ...]]
    other: int = 0
    other_shares: dict[str, float] | None = None


def share_bars(table: Table, min_share: float = MIN_SHARE, top: int = 40) -> ShareBars:
    """The layers of a :func:`share_table` worth a bar, in execution order, and one ``"other: N layers, x% of energy"``
    bar summing all the rest, so the bars always account for the whole network.

    A layer gets its own bar when its energy, MAC or weight share reaches ``min_share`` (%);
    of those, the ``top`` with the largest such share. Pools, activations and other layers
    with almost no energy, MACs or weights go into the last bar, which says how many layers
    and how much energy it holds. Example: shares (energy, MACs, weights) of (90, 80, 100),
    (9.8, 20, 0) and (0.2, 0, 0) with ``min_share=0.5`` give bars for the first two layers
    and ``"other: 1 layer, 0.2% of energy"``.
    """
    shares = {name: table.column(column) for name, column in _SHARES.items()}
    largest = [max(values) for values in zip(*shares.values())]
    ranked = sorted((i for i, share in enumerate(largest) if share >= min_share), key=lambda i: -largest[i])
    keep = sorted(ranked[:top])
    rest = sorted(set(range(len(table.rows))) - set(keep))
    labels = [table.rows[i][0] for i in keep]
    series = {name: [values[i] for i in keep] for name, values in shares.items()}
    if not rest:
        return ShareBars(tuple(labels), {name: tuple(values) for name, values in series.items()})
    other = {name: sum(values[i] for i in rest) for name, values in shares.items()}
    labels.append(f"other: {len(rest)} layer{'s' * (len(rest) != 1)}, {other['energy']:.1f}% of energy")
    return ShareBars(tuple(labels), {name: (*values, other[name]) for name, values in series.items()}, len(rest), other)


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

"""``weights_once``: the energy model of Zhang, Davoodi & Hu (seed 002), after Han et al. (NIPS 2015).

Every weight is read once from DRAM and once from SRAM, every activation vector that
crosses a layer boundary is written once to SRAM and read once, and every connection
is one MAC. Per MAC layer, in words::

    weight: DRAM  W reads        weight: buffer  W reads          (W = layer.weights, no biases)
    ifmap:  buffer 2 * I         (the layer's input, after any pooling, written then read)
    ofmap:  buffer 2 * O         only for the network's last MAC layer (its output)

This reproduces seed 002's "Energy Comparison (One Image Classification)" table with
``horowitz45`` (fp32 MAC 3.7 + 0.9 pJ, SRAM 5 pJ, DRAM 640 pJ per 32-bit word), e.g.
LeNet5: SRAM activations = 2 x (784 + 2880 + 800 + 500 + 10) x 5 pJ = 49.74 nJ.
NB: biases, partial sums and register files are not modelled, as in the paper.
"""

from __future__ import annotations

from ..hardware import Hardware, LevelKind
from ..workload import Datum, Layer
from .dataflow import AccessCounts, register_dataflow

__all__ = ["WeightsOnce"]


@register_dataflow("weights_once")
class WeightsOnce:
    """Weights streamed once from DRAM through SRAM; activations written and read once in SRAM.

    Example (``nn.Linear(4, 2)``: 8 weights, 8 MACs, 2 outputs; counts are words):

    >>> import dnnergy, torch.nn as nn
    >>> from dnnergy.hardware import load_hardware
    >>> layer, hardware = dnnergy.trace(nn.Linear(4, 2), (1, 4))[0], load_hardware("horowitz45")
    >>> counts = WeightsOnce().accesses(layer, hardware)
    >>> counts.macs, {(d.value, k.value): n for (d, k), n in counts.accesses.items()}
    (8, {('weight', 'dram'): 8, ('weight', 'buffer'): 8, ('ifmap', 'buffer'): 8})
    >>> dict(WeightsOnce().output_accesses(layer, hardware).accesses)  # the 2 outputs written + read once
    {(<Datum.OFMAP: 'ofmap'>, <LevelKind.BUFFER: 'buffer'>): 4}
    """

    name = "weights_once"

    def accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Dense word accesses of one MAC layer (weights at DRAM and buffer, ifmap write + read at buffer)."""
        return AccessCounts(
            layer.macs,
            {
                (Datum.WEIGHT, LevelKind.DRAM): layer.weights,
                (Datum.WEIGHT, LevelKind.BUFFER): layer.weights,
                (Datum.IFMAP, LevelKind.BUFFER): 2 * layer.ifmap,
            },
        )

    def output_accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Extra accesses of the network's last MAC layer: its output written and read once at the buffer."""
        return AccessCounts(0, {(Datum.OFMAP, LevelKind.BUFFER): 2 * layer.ofmap})

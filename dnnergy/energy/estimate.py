"""``estimate``: dataflow access counts + bitwidths + sparsity + DRAM coding -> :class:`EnergyReport`.

For every MAC layer (CONV, FC, MATMUL) the dataflow gives dense word accesses per
(datum, level kind); this module prices them:

* **bits**: weight/ifmap/ofmap widths from the layer (``w_bits``/``i_bits``/``o_bits``,
  ``None`` = ``hardware.word_bits``) or the ``bits=(w, a)`` override (activations =
  ifmap and ofmap). Memory energy is ``accesses * energy * bits / ref_bits``; MAC energy
  is ``hardware.mac.energy(w_bits, i_bits)``.
* **zeros** (``zero_mode``), with ``d_w``/``d_i`` the weight/ifmap non-zero fractions:
  MACs with a zero operand cost nothing (``macs * d_w * d_i``) for ``"gate"`` and
  ``"skip"``. Register-file accesses: ``"gate"`` (Eyeriss: a zero ifmap gates the MAC and
  the filter read) reads every ifmap, weights ``* d_i``, psums ``* d_w * d_i``;
  ``"skip"`` (zeros never fetched) reads ifmaps ``* d_i``, weights and psums
  ``* d_w * d_i``. ``"none"`` is dense. NB: zeros are assumed independent, and the
  buffer and inter-PE levels move data uncompressed. Hardware without an ``array``
  level prices inter-PE accesses as RF accesses (as ``row_stationary`` maps them).
* **DRAM coding** (``coding``): each datum's DRAM traffic shrinks by its code's
  ratio ``coded bits / (numel * bits)``, from the measured zero runs when the layer
  carries ``*_stats`` matching its density, else the i.i.d. expected value
  (:mod:`dnnergy.energy.coding`). A tensor is sent raw when coding would enlarge it
  (ratio capped at 1), so density 1 prices exactly as dense.

Non-MAC layers (pool, eltwise, norm, activation, concat, embedding) with
``non_mac="price"`` cost ``ops`` adds (``hardware.mac.op_energy(i_bits)``) plus reading
their input and writing their output once at the global buffer (DRAM when there is
none; the outermost level when neither exists); ``non_mac="exclude"`` leaves them out (as
seed 002 and Yang et al. 2017 do) and lists them in ``EnergyReport.excluded``.
"""

from __future__ import annotations

from enum import Enum

from ..errors import HardwareConfigError, UserInputError
from ..hardware import Hardware, LevelKind, MemoryLevel, load_hardware
from ..workload import Datum, Layer, TensorStats, Workload
from . import coding as _coding
from .dataflow import AccessCounts, Dataflow, get_dataflow
from .report import COMPUTE, EnergyRecord, EnergyReport

__all__ = ["ZeroMode", "Coding", "NonMac", "estimate"]


class ZeroMode(str, Enum):
    """What the hardware does with a zero operand."""

    GATE = "gate"  #: detect and gate: no MAC, no filter read (Eyeriss)
    SKIP = "skip"  #: zeros never fetched or computed
    NONE = "none"  #: dense: zeros cost like any value


class Coding(str, Enum):
    """How tensors are compressed on their way to and from DRAM."""

    RLC = "rlc"  #: Eyeriss run-length code
    ZERO_FLAG = "zero_flag"  #: 1 bit per zero, 1 + bits per non-zero (seed 001)
    NONE = "none"  #: raw words


class NonMac(str, Enum):
    """Whether layers without MACs are priced."""

    PRICE = "price"  #: ops x add energy + fmap traffic at the buffer
    EXCLUDE = "exclude"  #: left out, as the papers do


def _enum(cls: type[Enum], value: object, what: str) -> Enum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in cls)
        raise UserInputError(f"estimate: {what} must be one of {allowed} (got {value!r})") from None


def _bits_override(bits: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if bits is None:
        return None
    pair = (bits, bits) if isinstance(bits, int) else tuple(bits)
    if len(pair) != 2 or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in pair):
        raise UserInputError(f"estimate: bits must be a positive int or a (weight, activation) pair (got {bits!r})")
    return pair


def _stats_match(stats: TensorStats | None, density: float) -> bool:
    return stats is not None and stats.numel > 0 and abs(stats.density - density) < 1e-9


def _code_ratio(coding: Coding, numel: int, density: float, stats: TensorStats | None, bits: int, rlc: _coding.RunLengthCode) -> float:
    """Coded size / raw size of one tensor, capped at 1 (a tensor is never sent larger than raw)."""
    if coding is Coding.NONE or density >= 1.0:
        return 1.0
    exact = _stats_match(stats, density)
    numel = stats.numel if exact else numel
    if numel <= 0:
        return 1.0
    if coding is Coding.RLC:
        code = rlc.with_level_bits(bits)
        coded = _coding.rlc_bits(stats, code) if exact else _coding.rlc_bits_expected(numel, density, code)
    else:
        coded = _coding.zero_flag_bits(stats, bits) if exact else _coding.zero_flag_bits_expected(numel, density, bits)
    return min(1.0, coded / (numel * bits))


def _rf_factors(mode: ZeroMode, d_w: float, d_i: float) -> dict[Datum, float]:
    if mode is ZeroMode.GATE:
        return {Datum.IFMAP: 1.0, Datum.WEIGHT: d_i, Datum.OFMAP: d_w * d_i}
    if mode is ZeroMode.SKIP:
        return {Datum.IFMAP: d_i, Datum.WEIGHT: d_w * d_i, Datum.OFMAP: d_w * d_i}
    return {Datum.IFMAP: 1.0, Datum.WEIGHT: 1.0, Datum.OFMAP: 1.0}


def _merge(a: AccessCounts, b: AccessCounts) -> AccessCounts:
    accesses = dict(a.accesses)
    for key, count in b.accesses.items():
        accesses[key] = accesses.get(key, 0) + count
    return AccessCounts(a.macs + b.macs, accesses, a.mapping)


def _level(levels: dict[LevelKind, MemoryLevel], kind: LevelKind, hardware: Hardware, dataflow: Dataflow) -> MemoryLevel:
    level = levels.get(kind)
    if level is None:
        raise HardwareConfigError(
            f"hardware {hardware.name!r} has no {kind.value!r} level, which dataflow {dataflow.name!r} uses"
        )
    return level


def estimate(
    workload: Workload,
    hardware: Hardware | str,
    dataflow: str | Dataflow = "row_stationary",
    *,
    bits: int | tuple[int, int] | None = None,
    zero_mode: ZeroMode | str = ZeroMode.GATE,
    coding: Coding | str = Coding.RLC,
    rlc: _coding.RunLengthCode = _coding.EYERISS_RLC,
    non_mac: NonMac | str = NonMac.PRICE,
) -> EnergyReport:
    """Energy of one pass of ``workload`` on ``hardware`` under ``dataflow``, in ``hardware.unit``.

    ``hardware`` is a :class:`Hardware`, a preset name or a YAML path; ``dataflow`` a
    registered name (:func:`list_dataflows`) or an instance. Counting convention: one MAC
    = one multiply + one add; biases are not counted; the pricing of bits, zeros,
    coding and non-MAC layers is described in this module's docstring. Example (seed
    002): ``estimate(lenet5, "horowitz45", "weights_once", non_mac="exclude")`` gives
    2,293,000 MACs x 4.6 pJ = 10.55 uJ of MAC energy and 430,500 weights x 640 pJ =
    275.52 uJ of DRAM energy.
    """
    if not isinstance(workload, Workload):
        raise UserInputError(f"estimate: workload must be a Workload (got {type(workload).__name__}); see dnnergy.trace")
    hw = hardware if isinstance(hardware, Hardware) else load_hardware(hardware)
    flow = get_dataflow(dataflow)
    override = _bits_override(bits)
    mode = _enum(ZeroMode, zero_mode, "zero_mode")
    code = _enum(Coding, coding, "coding")
    pricing = _enum(NonMac, non_mac, "non_mac")
    levels = {level.kind: level for level in hw.levels}
    if LevelKind.ARRAY not in levels and LevelKind.RF in levels:
        levels[LevelKind.ARRAY] = levels[LevelKind.RF]  # NB: an inter-PE hop without a priced array = an RF write
    side = levels.get(LevelKind.BUFFER) or levels.get(LevelKind.DRAM) or hw.levels[0]  # where non-MAC fmaps move
    mac_layers = [layer for layer in workload.layers if layer.is_mac]
    last = mac_layers[-1].name if mac_layers and hasattr(flow, "output_accesses") else None

    records: list[EnergyRecord] = []
    mappings: dict[str, dict] = {}
    excluded: list[str] = []
    for layer in workload.layers:
        kind = layer.kind.value
        if override is None:
            word = hw.word_bits
            w_bits, i_bits, o_bits = layer.w_bits or word, layer.i_bits or word, layer.o_bits or word
        else:
            w_bits, (i_bits, o_bits) = override[0], (override[1], override[1])
        if not layer.is_mac:
            if pricing is NonMac.EXCLUDE:
                excluded.append(layer.name)
                continue
            records.append(EnergyRecord(layer.name, kind, COMPUTE, "ALU", layer.ops, i_bits, layer.ops * hw.mac.op_energy(i_bits)))
            for datum, count, b in ((Datum.IFMAP, layer.ifmap, i_bits), (Datum.OFMAP, layer.ofmap, o_bits)):
                records.append(EnergyRecord(layer.name, kind, datum.value, side.name, count, b, count * side.access_energy(b)))
            continue
        counts = flow.accesses(layer, hw)
        if layer.name == last:
            counts = _merge(counts, flow.output_accesses(layer, hw))
        if counts.mapping is not None:
            mappings[layer.name] = dict(counts.mapping)
        d_w, d_i = layer.w_density, layer.i_density
        dense = mode is ZeroMode.NONE
        macs = (counts.macs if dense else counts.macs * d_w * d_i) * layer.mac_density
        records.append(EnergyRecord(layer.name, kind, COMPUTE, "MAC", macs, max(w_bits, i_bits), macs * hw.mac.energy(w_bits, i_bits)))
        rf = _rf_factors(mode, d_w, d_i)
        rf[Datum.WEIGHT] *= layer.mac_density  # early termination skips the MAC and its weight read
        rf[Datum.OFMAP] *= layer.mac_density
        width = {Datum.WEIGHT: w_bits, Datum.IFMAP: i_bits, Datum.OFMAP: o_bits}
        dram: dict[Datum, float] = {}
        for (datum, level_kind), count in counts.accesses.items():
            if not count:
                continue
            level = _level(levels, level_kind, hw, flow)
            b = width[datum]
            if level_kind is LevelKind.RF:
                count *= rf[datum]
            elif level_kind is LevelKind.DRAM:
                if datum not in dram:
                    dram[datum] = _dram_ratio(code, layer, datum, b, rlc)
                count *= dram[datum]
            records.append(EnergyRecord(layer.name, kind, datum.value, level.name, count, b, count * level.energy * b / level.ref_bits))
    return EnergyReport(
        tuple(records),
        hw.unit,
        hardware=hw.name,
        dataflow=flow.name,
        workload=workload.name,
        mac_energy=hw.mac.energy(hw.word_bits, hw.word_bits) or 1.0,
        mappings=mappings,
        excluded=tuple(excluded),
        levels=tuple(level.name for level in hw.levels),
    )


def _dram_ratio(code: Coding, layer: Layer, datum: Datum, bits: int, rlc: _coding.RunLengthCode) -> float:
    if datum is Datum.WEIGHT:
        return _code_ratio(code, layer.weights, layer.w_density, layer.w_stats, bits, rlc)
    if datum is Datum.IFMAP:
        return _code_ratio(code, layer.ifmap, layer.i_density, layer.i_stats, bits, rlc)
    return _code_ratio(code, layer.ofmap, layer.o_density, layer.o_stats, bits, rlc)

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
  ``* d_w * d_i``. ``"none"`` is dense. A layer's ``mac_density`` (MACs left after
  early termination) scales, in every mode, the MACs and the RF weight and psum
  accesses. NB: zeros are assumed independent, and the buffer and inter-PE levels move
  data uncompressed. Hardware without an ``array`` level prices inter-PE accesses as RF
  accesses (as ``row_stationary`` maps them).
* **DRAM coding** (``coding``): a registered code name (``"rlc"``, ``"zero_flag"``,
  ``"none"``, :func:`~dnnergy.energy.codes.list_codes`) or a code object
  (:class:`~dnnergy.energy.codes.DramCode`). Each datum's DRAM traffic shrinks by its
  code's ratio ``coded bits / (numel * bits)`` (:func:`~dnnergy.energy.codes.code_ratio`),
  from the measured zero runs when the layer carries ``*_stats`` matching its density,
  else the i.i.d. expected value. A tensor is sent raw when coding would enlarge it
  (ratio capped at 1), so density 1 prices exactly as dense.

Non-MAC layers (pool, eltwise, norm, activation, concat, embedding) with
``non_mac="price"`` cost ``ops`` adds (``hardware.mac.op_energy(i_bits)``) plus reading
their input and writing their output once at the global buffer (DRAM when there is
none; the outermost level when neither exists); ``non_mac="exclude"`` leaves them out (as
seed 002 and Yang et al. 2017 do) and lists them in ``EnergyReport.excluded``.

Each concern is one small function: operand widths (``_bit_widths``), non-MAC layers
(``_non_mac_records``), MAC energy after zero gating/skipping (``_mac_record``),
register-file zero factors (``_rf_factors``), DRAM coding (``_dram_ratio``) and the
memory records (``_access_records``); :func:`estimate` loops over the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import HardwareConfigError, UserInputError
from ..hardware import Hardware, LevelKind, MemoryLevel, load_hardware
from ..workload import Datum, Layer, Workload
from .codes import DramCode, code_ratio, get_code
from .dataflow import AccessCounts, Dataflow, get_dataflow
from .report import COMPUTE, EnergyRecord, EnergyReport

__all__ = ["ZeroMode", "NonMac", "estimate"]


class ZeroMode(str, Enum):
    """What the hardware does with a zero operand."""

    GATE = "gate"  #: detect and gate: no MAC, no filter read (Eyeriss)
    SKIP = "skip"  #: zeros never fetched or computed
    NONE = "none"  #: dense: zeros cost like any value


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


@dataclass(frozen=True, slots=True)
class _Pricing:
    """The resolved options of one :func:`estimate` call that the pricing steps share."""

    hardware: Hardware
    dataflow: Dataflow
    mode: ZeroMode
    code: DramCode
    levels: Mapping[LevelKind, MemoryLevel]  #: by kind; an RF stands in for a missing inter-PE array

    @property
    def side(self) -> MemoryLevel:
        """Where non-MAC layers read and write their fmaps: the buffer, else DRAM, else the outermost level."""
        return self.levels.get(LevelKind.BUFFER) or self.levels.get(LevelKind.DRAM) or self.hardware.levels[0]

    def level(self, kind: LevelKind) -> MemoryLevel:
        """The level of ``kind``; :class:`HardwareConfigError` when the hardware lacks one the dataflow uses."""
        level = self.levels.get(kind)
        if level is None:
            raise HardwareConfigError(
                f"hardware {self.hardware.name!r} has no {kind.value!r} level, which dataflow {self.dataflow.name!r} uses"
            )
        return level


def _bit_widths(layer: Layer, word_bits: int, override: tuple[int, int] | None) -> dict[Datum, int]:
    """Operand widths in bits: the ``bits=(w, a)`` override, else the layer's own, else the hardware word."""
    if override is not None:
        return {Datum.WEIGHT: override[0], Datum.IFMAP: override[1], Datum.OFMAP: override[1]}
    return {Datum.WEIGHT: layer.w_bits or word_bits, Datum.IFMAP: layer.i_bits or word_bits, Datum.OFMAP: layer.o_bits or word_bits}


def _non_mac_records(layer: Layer, widths: dict[Datum, int], pricing: _Pricing) -> list[EnergyRecord]:
    """A non-MAC layer: ``ops`` adds at the ifmap width, plus its input read and output written once at ``side``."""
    kind, i_bits, side = layer.kind.value, widths[Datum.IFMAP], pricing.side
    records = [EnergyRecord(layer.name, kind, COMPUTE, "ALU", layer.ops, i_bits, layer.ops * pricing.hardware.mac.op_energy(i_bits))]
    for datum, count in ((Datum.IFMAP, layer.ifmap), (Datum.OFMAP, layer.ofmap)):
        records.append(EnergyRecord(layer.name, kind, datum.value, side.name, count, widths[datum], count * side.access_energy(widths[datum])))
    return records


def _mac_record(layer: Layer, macs: float, widths: dict[Datum, int], pricing: _Pricing) -> EnergyRecord:
    """The MAC energy of ``macs`` dense MACs, less those with a zero operand (unless dense) and those terminated early."""
    if pricing.mode is not ZeroMode.NONE:
        macs = macs * layer.w_density * layer.i_density
    macs *= layer.mac_density
    w_bits, i_bits = widths[Datum.WEIGHT], widths[Datum.IFMAP]
    return EnergyRecord(layer.name, layer.kind.value, COMPUTE, "MAC", macs, max(w_bits, i_bits), macs * pricing.hardware.mac.energy(w_bits, i_bits))


def _rf_factors(mode: ZeroMode, layer: Layer) -> dict[Datum, float]:
    """Fraction of the dense register-file accesses made per datum, after zero gating/skipping and early termination."""
    d_w, d_i, d_mac = layer.w_density, layer.i_density, layer.mac_density
    if mode is ZeroMode.GATE:
        return {Datum.IFMAP: 1.0, Datum.WEIGHT: d_i * d_mac, Datum.OFMAP: d_w * d_i * d_mac}
    if mode is ZeroMode.SKIP:
        return {Datum.IFMAP: d_i, Datum.WEIGHT: d_w * d_i * d_mac, Datum.OFMAP: d_w * d_i * d_mac}
    return {Datum.IFMAP: 1.0, Datum.WEIGHT: d_mac, Datum.OFMAP: d_mac}


def _dram_ratio(code: DramCode, layer: Layer, datum: Datum, bits: int) -> float:
    """Coded / raw size of the layer's ``datum`` tensor at ``bits`` bits under ``code`` (:func:`code_ratio`)."""
    if datum is Datum.WEIGHT:
        return code_ratio(code, layer.weights, bits, layer.w_density, layer.w_stats)
    if datum is Datum.IFMAP:
        return code_ratio(code, layer.ifmap, bits, layer.i_density, layer.i_stats)
    return code_ratio(code, layer.ofmap, bits, layer.o_density, layer.o_stats)


def _access_records(layer: Layer, counts: AccessCounts, widths: dict[Datum, int], pricing: _Pricing) -> list[EnergyRecord]:
    """One record per (datum, level) the dataflow accesses: RF accesses scaled by the zero factors, DRAM
    accesses by the code's ratio; energy = accesses x ``level.energy`` x bits / ``level.ref_bits``."""
    rf = _rf_factors(pricing.mode, layer)
    records = []
    for (datum, kind), count in counts.accesses.items():
        if not count:
            continue
        level, bits = pricing.level(kind), widths[datum]
        if kind is LevelKind.RF:
            count *= rf[datum]
        elif kind is LevelKind.DRAM:
            count *= _dram_ratio(pricing.code, layer, datum, bits)
        records.append(EnergyRecord(layer.name, layer.kind.value, datum.value, level.name, count, bits, count * level.energy * bits / level.ref_bits))
    return records


def _merge(a: AccessCounts, b: AccessCounts) -> AccessCounts:
    accesses = dict(a.accesses)
    for key, count in b.accesses.items():
        accesses[key] = accesses.get(key, 0) + count
    return AccessCounts(a.macs + b.macs, accesses, a.mapping)


def estimate(
    workload: Workload,
    hardware: Hardware | str,
    dataflow: str | Dataflow = "row_stationary",
    *,
    bits: int | tuple[int, int] | None = None,
    zero_mode: ZeroMode | str = ZeroMode.GATE,
    coding: str | DramCode = "rlc",
    non_mac: NonMac | str = NonMac.PRICE,
) -> EnergyReport:
    """Energy of one pass of ``workload`` on ``hardware`` under ``dataflow``, in ``hardware.unit``.

    ``hardware`` is a :class:`Hardware`, a preset name or a YAML path; ``dataflow`` a
    registered name (:func:`list_dataflows`) or an instance; ``coding`` a registered DRAM
    code name (:func:`~dnnergy.energy.codes.list_codes`) or a code object such as
    ``RlcCode(RunLengthCode(run_bits=4))``. Counting convention: one MAC = one multiply +
    one add; biases are not counted; the pricing of bits, zeros, coding and non-MAC
    layers is described in this module's docstring. Example (seed 002):
    ``estimate(lenet5, "horowitz45", "weights_once", non_mac="exclude")`` gives 2,293,000
    MACs x 4.6 pJ = 10.55 uJ of MAC energy and 430,500 weights x 640 pJ = 275.52 uJ of
    DRAM energy.
    """
    if not isinstance(workload, Workload):
        raise UserInputError(f"estimate: workload must be a Workload (got {type(workload).__name__}); see dnnergy.trace")
    hw = hardware if isinstance(hardware, Hardware) else load_hardware(hardware)
    flow = get_dataflow(dataflow)
    override = _bits_override(bits)
    levels = {level.kind: level for level in hw.levels}
    if LevelKind.ARRAY not in levels and LevelKind.RF in levels:
        levels[LevelKind.ARRAY] = levels[LevelKind.RF]  # NB: an inter-PE hop without a priced array = an RF write
    pricing = _Pricing(hw, flow, _enum(ZeroMode, zero_mode, "zero_mode"), get_code(coding), levels)
    non_mac = _enum(NonMac, non_mac, "non_mac")
    mac_layers = [layer for layer in workload.layers if layer.is_mac]
    last = mac_layers[-1].name if mac_layers and hasattr(flow, "output_accesses") else None

    records: list[EnergyRecord] = []
    mappings: dict[str, dict] = {}
    excluded: list[str] = []
    for layer in workload.layers:
        widths = _bit_widths(layer, hw.word_bits, override)
        if not layer.is_mac:
            if non_mac is NonMac.EXCLUDE:
                excluded.append(layer.name)
            else:
                records += _non_mac_records(layer, widths, pricing)
            continue
        counts = flow.accesses(layer, hw)
        if layer.name == last:
            counts = _merge(counts, flow.output_accesses(layer, hw))
        if counts.mapping is not None:
            mappings[layer.name] = dict(counts.mapping)
        records.append(_mac_record(layer, counts.macs, widths, pricing))
        records += _access_records(layer, counts, widths, pricing)
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

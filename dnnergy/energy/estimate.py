"""``estimate``: dataflow access counts + bitwidths + sparsity + DRAM coding -> :class:`EnergyReport`.

For every MAC layer (CONV, FC, MATMUL) the dataflow gives dense word accesses per
(datum, level kind); this module prices them:

* **bits**: weight/ifmap/ofmap widths from the layer (``w_bits``/``i_bits``/``o_bits``,
  ``None`` = ``hardware.word_bits``) or the ``bits=(w, a)`` override (activations =
  ifmap and ofmap). Memory energy is ``accesses * energy * bits / ref_bits``; MAC energy
  is ``hardware.mac.energy(w_bits, i_bits)``.
* **zeros**: each MAC operand has a zero action (``hardware.zero_actions``, default gate
  on both; ``zero_mode`` sets one action for both). With ``d_w``/``d_i`` the
  weight/ifmap non-zero fractions, ``k_w = d_w`` if weights are gated or skipped (else
  1), likewise ``k_i``: MACs ``* k_w * k_i``. Register-file accesses: ifmaps ``* d_i``
  when skipped (else all read), weights ``* k_i`` (a zero ifmap saves its weight read)
  ``* d_w`` when skipped, psums ``* k_w * k_i``. So ``"gate"`` on both (Eyeriss) reads
  every ifmap, weights ``* d_i``, psums ``* d_w * d_i``; ``"skip"`` on both reads
  ifmaps ``* d_i``, weights and psums ``* d_w * d_i``; ``"none"`` is dense. A layer's
  ``mac_density`` (MACs left after early termination) scales, in every mode, the MACs
  and the RF weight and psum accesses. NB: zeros are assumed independent. Hardware
  without an ``array`` level prices inter-PE accesses as RF accesses (as
  ``row_stationary`` maps them).
* **storage formats**: a level that declares a format for a datum
  (``MemoryLevel.storage``, e.g. CSC weights) moves that datum's coded bits: its buffer
  and inter-PE accesses are multiplied by the format's ratio (:func:`code_ratio`, capped
  at 1 like DRAM codes) and, at the RF, the ratio replaces the datum's own ``d`` factor
  (a compressed datum is read as stored, whatever the MAC does with its zeros). Levels
  without one move data uncompressed, as on the eyeriss and horowitz45 presets.
* **DRAM coding** (``coding``): a registered code name (``"rlc"``, ``"zero_flag"``,
  ``"none"``, :func:`~dnnergy.energy.codes.list_codes`) or a code object
  (:class:`~dnnergy.energy.codes.DramCode`) for every datum; when ``None`` (default),
  each datum's format at the DRAM level, else ``DEFAULT_CODING`` (``"rlc"``). Each datum's DRAM traffic shrinks by its
  code's ratio ``coded bits / (numel * bits)`` (:func:`~dnnergy.energy.codes.code_ratio`),
  from the measured zero runs when the layer carries ``*_stats`` matching its density,
  else the i.i.d. expected value. A tensor is sent raw when coding would enlarge it
  (ratio capped at 1), so density 1 prices exactly as dense. A layer whose weights are stored
  coded (``w_coded_bits``, e.g. Deep Compression) moves exactly those bits instead.
* **weight reuse** (UCNN): a layer's ``mult_density`` < 1 drops the multiplier share of that
  fraction of its executed MACs (they become adds) and of their register-file weight reads.

Non-MAC layers (pool, eltwise, norm, activation, concat, embedding) with
``non_mac="price"`` cost ``ops`` adds (``hardware.mac.op_energy(i_bits)``) plus reading
their input and writing their output once at the global buffer (DRAM when there is
none; the outermost level when neither exists); ``non_mac="exclude"`` leaves them out (as
seed 002 and Yang et al. 2017 do) and lists them in ``EnergyReport.excluded``.

Each concern is one small function: operand widths (``_bit_widths``), non-MAC layers
(``_non_mac_records``), MAC energy after zero gating/skipping (``_mac_record``),
register-file zero factors (``_rf_factors``, ``_own_factors``), DRAM coding
(``_dram_ratio``), storage formats (``_format_ratio``) and the
memory records (``_access_records``); :func:`estimate` loops over the layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import HardwareConfigError, UserInputError
from ..hardware import Hardware, LevelKind, MemoryLevel, ZeroAction, ZeroActions, load_hardware
from ..workload import Datum, Layer, Workload
from .codes import DramCode, code_ratio, get_code
from .dataflow import AccessCounts, Dataflow, get_dataflow
from .report import COMPUTE, EnergyRecord, EnergyReport

__all__ = ["ZeroMode", "NonMac", "estimate"]


#: What the hardware does with a zero operand (gate, skip, none); ``zero_mode`` applies one to both operands.
ZeroMode = ZeroAction

#: DRAM coding of a datum when neither ``coding`` nor the DRAM level's ``storage`` names one.
DEFAULT_CODING = "rlc"


class NonMac(str, Enum):
    """Whether layers without MACs are priced.

    Example: for ``nn.Sequential(nn.Linear(4, 2), nn.ReLU())`` on ``eyeriss``, ``estimate(w, "eyeriss")`` prices the
    ReLU (``by_level()["ALU"] == 0.13`` MAC-normalized, plus its buffer traffic) and
    ``estimate(w, "eyeriss", non_mac="exclude")`` leaves it out (``excluded == ("1",)``).
    """

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
    actions: ZeroActions
    code: DramCode | None  #: the ``coding`` argument: overrides every datum's DRAM format when given
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
        code = side.format_of(datum)  # a declared storage format; the DRAM coding is not applied here
        count = count if code is None else count * _format_ratio(code, layer, datum, widths[datum])
        records.append(EnergyRecord(layer.name, kind, datum.value, side.name, count, widths[datum], count * side.access_energy(widths[datum])))
    return records


def _mac_record(layer: Layer, macs: float, widths: dict[Datum, int], pricing: _Pricing) -> EnergyRecord:
    """The MAC energy of ``macs`` dense MACs, less those with a zero operand (unless dense) and those terminated early."""
    macs = macs * _kept(pricing.actions.weight, layer.w_density) * _kept(pricing.actions.ifmap, layer.i_density)
    macs *= layer.mac_density
    w_bits, i_bits = widths[Datum.WEIGHT], widths[Datum.IFMAP]
    mac, add = pricing.hardware.mac.energy(w_bits, i_bits), pricing.hardware.mac.op_energy(max(w_bits, i_bits))
    per_mac = mac if layer.mult_density == 1.0 else add + (mac - add) * layer.mult_density  # UCNN: shared weights multiply once
    return EnergyRecord(layer.name, layer.kind.value, COMPUTE, "MAC", macs, max(w_bits, i_bits), macs * per_mac)


def _kept(action: ZeroAction, density: float) -> float:
    """Fraction of the MACs left when an operand of non-zero fraction ``density`` is gated or skipped (1 for none)."""
    return 1.0 if action is ZeroAction.NONE else density


def _rf_factors(actions: ZeroActions, layer: Layer, own: Mapping[Datum, float]) -> dict[Datum, float]:
    """Fraction of the dense register-file accesses made per datum, after zero gating/skipping, early termination
    and weight reuse. ``own[datum]`` is the fraction of the datum's own reads left (:func:`_own_factors`); a
    gated or skipped zero ifmap also saves its weight read, and psums are updated only by the MACs made.
    Eyeriss (gate, gate): ifmap 1, weight d_i, psum d_w d_i; (skip, skip): d_i, d_w d_i, d_w d_i."""
    d_mac, reuse = layer.mac_density, layer.mult_density
    by_ifmap = _kept(actions.ifmap, layer.i_density)
    return {
        Datum.IFMAP: own[Datum.IFMAP],
        Datum.WEIGHT: by_ifmap * own[Datum.WEIGHT] * d_mac * reuse,
        Datum.OFMAP: _kept(actions.weight, layer.w_density) * by_ifmap * d_mac * own[Datum.OFMAP],
    }


def _own_factors(layer: Layer, widths: dict[Datum, int], pricing: _Pricing) -> dict[Datum, float]:
    """Fraction of each datum's own register-file reads: its coded ratio when the RF stores it in a format (a
    compressed datum is read as stored, whatever the MAC does with its zeros), else its density when its zeros
    are skipped, else 1."""
    rf = pricing.levels.get(LevelKind.RF)
    density = {Datum.WEIGHT: layer.w_density, Datum.IFMAP: layer.i_density, Datum.OFMAP: layer.o_density}
    own = {}
    for datum in Datum:
        code = rf.format_of(datum) if rf is not None else None
        if code is not None:
            own[datum] = _format_ratio(code, layer, datum, widths[datum])
        else:
            own[datum] = density[datum] if pricing.actions.of(datum) is ZeroAction.SKIP else 1.0
    return own


def _format_ratio(code: DramCode, layer: Layer, datum: Datum, bits: int) -> float:
    """Coded / raw size of the layer's ``datum`` tensor at ``bits`` bits as a level stores it in ``code`` (:func:`code_ratio`)."""
    numel, density, stats = {
        Datum.WEIGHT: (layer.weights, layer.w_density, layer.w_stats),
        Datum.IFMAP: (layer.ifmap, layer.i_density, layer.i_stats),
        Datum.OFMAP: (layer.ofmap, layer.o_density, layer.o_stats),
    }[datum]
    return code_ratio(code, numel, bits, density, stats)


def _dram_ratio(code: DramCode, layer: Layer, datum: Datum, bits: int) -> float:
    """Coded / raw size of the layer's ``datum`` tensor at ``bits`` bits under ``code`` (:func:`code_ratio`)."""
    if datum is Datum.WEIGHT and layer.w_coded_bits is not None and layer.weights:
        return min(1.0, layer.w_coded_bits / (layer.weights * bits))  # the bits actually stored
    if datum is Datum.WEIGHT:
        return code_ratio(code, layer.weights, bits, layer.w_density, layer.w_stats)
    if datum is Datum.IFMAP:
        return code_ratio(code, layer.ifmap, bits, layer.i_density, layer.i_stats)
    return code_ratio(code, layer.ofmap, bits, layer.o_density, layer.o_stats)


def _access_records(layer: Layer, counts: AccessCounts, widths: dict[Datum, int], pricing: _Pricing) -> list[EnergyRecord]:
    """One record per (datum, level) the dataflow accesses: RF accesses scaled by the zero factors, DRAM
    accesses by the coding's ratio (the ``coding`` argument, else the level's declared format, else
    ``DEFAULT_CODING``), buffer and inter-PE accesses by the ratio of the format the level declares (if any);
    energy = accesses x ``level.energy`` x bits / ``level.ref_bits``."""
    rf = _rf_factors(pricing.actions, layer, _own_factors(layer, widths, pricing))
    records = []
    for (datum, kind), count in counts.accesses.items():
        if not count:
            continue
        level, bits = pricing.level(kind), widths[datum]
        if kind is LevelKind.RF:
            count *= rf[datum]
        elif kind is LevelKind.DRAM:
            code = pricing.code or level.format_of(datum) or get_code(DEFAULT_CODING)
            count *= _dram_ratio(code, layer, datum, bits)
        elif level.format_of(datum) is not None:
            count *= _format_ratio(level.format_of(datum), layer, datum, bits)
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
    zero_mode: ZeroMode | str | None = None,
    coding: str | DramCode | None = None,
    non_mac: NonMac | str = NonMac.PRICE,
) -> EnergyReport:
    """Energy of one pass of ``workload`` on ``hardware`` under ``dataflow``, in ``hardware.unit``.

    ``hardware`` is a :class:`Hardware`, a preset name or a YAML path; ``dataflow`` a
    registered name (:func:`list_dataflows`) or an instance; ``coding`` a registered DRAM
    code name (:func:`~dnnergy.energy.codes.list_codes`) or a code object such as
    ``RlcCode(RunLengthCode(run_bits=4))``; ``None`` uses each datum's format at the DRAM
    level, else ``"rlc"``. ``zero_mode`` (``"gate"``, ``"skip"``, ``"none"``) applies one
    zero action to both MAC operands; ``None`` uses ``hardware.zero_actions`` (gate, gate
    on the eyeriss and horowitz45 presets). Counting convention: one MAC = one multiply +
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
    actions = hw.zero_actions if zero_mode is None else ZeroActions.both(_enum(ZeroMode, zero_mode, "zero_mode"))
    pricing = _Pricing(hw, flow, actions, None if coding is None else get_code(coding), levels)
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
        batch=workload.batch,
    )

"""The Eyeriss row-stationary (RS) dataflow: word accesses per (datum, level) from reuse.

Chen, Emer & Sze, ISCA 2016, as used for energy estimation by Yang et al., CVPR 2017.
The mapping, for one group of a layer (letters as in :class:`~dnnergy.workload.Layer`,
``C``/``M`` per group), is the loop nest (outermost first)::

    for the DRAM tier, in `order` (a permutation of N1 M1 C1 E1):   # buffer tiles
        N1 = N/n images, M1 = M/m_b filters, C1 = C/c_b channels, E1 = E/e_b output rows
      for M2 = m_b/f, C2 = c_b/cc, K (filter-row folds), E2 = e_b/e:  # processing passes
        one pass on the array: n images x f = p*t filters x cc = q*r channels
          x a PE set of Rc filter rows by e output rows, replicated r x t times;
          each PE keeps p*q filter rows (p*q*S words) stationary in its RF, slides
          q ifmap rows (q*S words) through them and passes F psums down its column.

A datum's accesses follow from its reuse factors a, b, c, d at DRAM, buffer, array and
RF (REFERENCES.md, Chen et al. ISCA 2016): an input value costs ``a`` DRAM, ``a*b``
buffer, ``a*b*c`` array and ``a*b*c*d`` RF accesses; a partial sum ``2a-1``,
``2a(b-1)``, ``ab(c-1)`` and ``2abc(d-1)``. The derivation, the default mapping and a
worked AlexNet example are in ``docs/row-stationary.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from math import ceil
from typing import Any

import numpy as np

from ..errors import UserInputError
from ..hardware import Hardware, LevelKind, PEArray
from ..workload import MAC_KINDS, Datum, Layer, OpKind
from .dataflow import AccessCounts, register_dataflow

__all__ = [
    "ConvShape",
    "RSMapping",
    "RowStationary",
    "conv_shape",
    "rs_counts",
    "rs_energy",
    "default_mapping",
    "pass_defaults",
    "fits",
    "buffer_words",
    "level_energies",
    "buffer_capacity_words",
    "EYERISS_ARRAY",
]

#: The Eyeriss PE array, used when the hardware describes none (e.g. ``horowitz45``).
EYERISS_ARRAY = PEArray(rows=12, cols=14, filter_words=224, ifmap_words=12, psum_words=24)

#: The DRAM-tier loop letters; an order lists them outermost first.
DRAM_LOOPS = ("N", "M", "C", "E")
#: Which loops index each datum (a loop over another letter reuses the datum).
RELEVANT = {Datum.WEIGHT: frozenset("MCK"), Datum.IFMAP: frozenset("NCEK"), Datum.OFMAP: frozenset("NME")}
#: The default DRAM-tier order: channels innermost, so psums stay in the buffer (a = 1).
DEFAULT_ORDER = ("N", "M", "E", "C")


@dataclass(frozen=True, slots=True)
class ConvShape:
    """One group of a MAC layer as a 2-D convolution (FC and MATMUL as 1x1 on a 1x1 map).

    ``C``/``M`` are per group, ``G`` the number of groups; ``U``/``D``/``P`` are the
    (vertical, horizontal) stride, dilation and padding. Layers with the same shape share
    one cached mapping.
    """

    N: int
    C: int
    M: int
    H: int
    W: int
    R: int
    S: int
    E: int
    F: int
    U: tuple[int, int] = (1, 1)
    D: tuple[int, int] = (1, 1)
    P: tuple[int, int] = (0, 0)
    G: int = 1

    def __post_init__(self) -> None:
        for letter in ("N", "C", "M", "H", "W", "R", "S", "E", "F", "G"):
            value = getattr(self, letter)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ConvShape: {letter} must be a positive int (got {value!r})")

    @property
    def macs(self) -> int:
        """MACs of all groups: ``G*N*M*C*R*S*E*F``."""
        return self.G * self.N * self.M * self.C * self.R * self.S * self.E * self.F


def conv_shape(layer: Layer) -> ConvShape:
    """The per-group convolution a MAC layer maps as (Eyeriss letters; FC: R=S=E=F=H=W=1).

    NB: a transposed convolution is mapped as the direct convolution over its *input*
    grid that has the same MAC count (every input pixel times R*S taps); its ofmap is
    then counted at the input grid size.
    """
    if layer.kind not in MAC_KINDS:
        raise UserInputError(f"row_stationary: layer {layer.name!r} is a {layer.kind.value} layer; only conv, fc and matmul map onto the PE array")
    G = layer.groups
    if layer.kind is OpKind.CONV:
        if layer.transposed:
            pad = ((layer.R - 1) * layer.dilation[0] // 2, (layer.S - 1) * layer.dilation[1] // 2)
            return ConvShape(layer.N, layer.C // G, layer.M // G, layer.H, layer.W, layer.R, layer.S, layer.H, layer.W, (1, 1), layer.dilation, pad, G)
        return ConvShape(layer.N, layer.C // G, layer.M // G, layer.H, layer.W, layer.R, layer.S, layer.E, layer.F,
                         layer.stride, layer.dilation, layer.padding, G)
    return ConvShape(layer.N, layer.C // G, layer.M // G, 1, 1, 1, 1, 1, 1, G=G)


@dataclass(frozen=True, slots=True)
class RSMapping:
    """One row-stationary mapping of a :class:`ConvShape` (the loop nest in the module docstring).

    Pass (array and RF): ``e`` output rows per PE set, ``fold_s`` pieces each filter row
    is cut into when it is wider than the ifmap scratchpad, ``p`` filters and ``q``
    channels per PE, ``r`` (channels) x ``t`` (filters) replicated PE sets, ``n``
    images per pass. Buffer tile: ``m_b`` filters, ``c_b`` channels, ``e_b`` output rows
    (and the same ``n`` images). ``order``: DRAM-tier loops outermost first.
    """

    e: int
    p: int
    q: int
    r: int
    t: int
    n: int
    m_b: int
    c_b: int
    e_b: int
    order: tuple[str, ...] = DEFAULT_ORDER
    fold_s: int = 1

    def __post_init__(self) -> None:
        for name in ("e", "p", "q", "r", "t", "n", "m_b", "c_b", "e_b", "fold_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RSMapping: {name} must be a positive int (got {value!r})")
        if sorted(self.order) != sorted(DRAM_LOOPS):
            raise ValueError(f"RSMapping: order must be a permutation of {DRAM_LOOPS} (got {self.order!r})")


def geometry(s: ConvShape, array: PEArray, fold_s: int) -> tuple[int, int, int]:
    """(S', Rc, K): filter-row width after cutting into ``fold_s`` pieces, filter rows per set, row folds."""
    s_piece = ceil(s.S / fold_s)
    rows = s.R * fold_s
    k = ceil(rows / array.rows)
    return s_piece, ceil(rows / k), k


def _fetches(order: list[tuple[str, Any]], relevant: frozenset) -> Any:
    """Times a tile below ``order``'s loops is (re)loaded: the product of all trips down to the
    innermost loop that indexes it with more than one trip (works on floats and numpy arrays)."""
    total = 1.0
    later = 1.0  # product of relevant trips inside the current loop; > 1 means a reload follows
    for letter, trip in reversed(order):
        if letter in relevant:
            total = total * trip
            later = later * trip
        else:
            total = total * np.where(later > 1, trip, 1.0)
    return total


def rs_counts(s: ConvShape, m: RSMapping, array: PEArray) -> dict[tuple[Datum, LevelKind], Any]:
    """Word accesses (reads + writes, all groups) of shape ``s`` under mapping ``m``, by (datum, level).

    Trip counts are fractional (``N/n``...), so access counts are exact averages and
    fragmentation costs no energy (NB: it would cost time, which is not modelled).
    Tile fields of ``m`` may be numpy arrays (the mapper evaluates many at once).
    """
    Uh, Uw = s.U
    Dh, Dw = s.D
    s_piece, Rc, K = geometry(s, array, m.fold_s)
    f = np.minimum(m.p * m.t, s.M)  # filters per pass
    cc = np.minimum(m.q * m.r, s.C)  # channels per pass
    macs = s.N * s.M * s.C * s.R * s.S * s.E * s.F
    dram = [("N", s.N / m.n), ("M", s.M / m.m_b), ("C", s.C / m.c_b), ("E", s.E / m.e_b)]
    dram.sort(key=lambda loop: m.order.index(loop[0]))
    nest = dram + [("M", m.m_b / f), ("C", m.c_b / cc), ("K", K), ("E", m.e_b / m.e)]
    passes = s.N / m.n * s.M / f * s.C / cc * s.E / m.e * K
    trips = {letter: trip for letter, trip in dram}
    # Ifmap rows (height, width) one pass streams: e output rows need (e-1)*U + Rc' rows.
    rows_pass = np.minimum(s.H + 2 * s.P[0], (m.e - 1) * Uh + (Rc - 1) * Dh + 1)
    width = min(s.W + 2 * s.P[1], (s.F - 1) * Uw + (s_piece - 1) * Dw + 1)
    rows_tile = np.minimum(s.H, (m.e_b - 1) * Uh + (s.R - 1) * Dh + 1)
    t_eff = np.minimum(m.t, np.ceil(s.M / m.p))

    # Weights: DRAM -> buffer tile m_b x c_b x R x S; a pass reads f x cc x Rc x S' and
    # multicasts each filter row to the e PEs of its set row; each MAC reads one from the RF.
    w_dram = s.M * s.C * s.R * s.S / (trips["M"] * trips["C"]) * _fetches(dram, RELEVANT[Datum.WEIGHT])
    w_buf = f * cc * Rc * s_piece * _fetches(nest, RELEVANT[Datum.WEIGHT])
    # Ifmaps: re-streamed every pass (the RF holds only a q*S window); a row fetched from the
    # buffer reaches the Rc*e/rows PEs on its diagonal in each of the t filter sets.
    i_dram = m.n * m.c_b * rows_tile * s.W * _fetches(dram, RELEVANT[Datum.IFMAP])
    i_buf = m.n * cc * rows_pass * width * passes
    i_arr = i_buf * Rc * m.e * t_eff / rows_pass
    # Psums: d = q*S accumulations in a PE, c = Rc*r PEs down a column, a*b passes in total,
    # a of them as DRAM round trips (more than one when channels are not the innermost loop).
    o_unique = s.N * s.M * s.E * s.F
    a = _fetches(dram, RELEVANT[Datum.OFMAP]) / (trips["N"] * trips["M"] * trips["E"])
    ab = s.C / cc * K
    c = Rc * m.r
    d = cc * s_piece / m.r
    counts = {
        (Datum.WEIGHT, LevelKind.DRAM): w_dram,
        (Datum.WEIGHT, LevelKind.BUFFER): w_buf,
        (Datum.WEIGHT, LevelKind.ARRAY): w_buf * m.e,
        (Datum.WEIGHT, LevelKind.RF): macs,
        (Datum.IFMAP, LevelKind.DRAM): i_dram,
        (Datum.IFMAP, LevelKind.BUFFER): i_buf,
        (Datum.IFMAP, LevelKind.ARRAY): i_arr,
        (Datum.IFMAP, LevelKind.RF): macs,
        (Datum.OFMAP, LevelKind.DRAM): o_unique * (2 * a - 1),
        (Datum.OFMAP, LevelKind.BUFFER): o_unique * 2 * a * (ab / a - 1),
        (Datum.OFMAP, LevelKind.ARRAY): o_unique * ab * (c - 1),
        (Datum.OFMAP, LevelKind.RF): o_unique * 2 * ab * c * (d - 1),
    }
    return {key: value * s.G for key, value in counts.items()}


def buffer_words(s: ConvShape, m: RSMapping) -> Any:
    """Words the global buffer must hold for ``m``'s tile: weights + ifmap rows + psums."""
    rows_tile = np.minimum(s.H, (m.e_b - 1) * s.U[0] + (s.R - 1) * s.D[0] + 1)
    return m.m_b * m.c_b * s.R * s.S + m.n * m.c_b * rows_tile * s.W + m.n * m.m_b * m.e_b * s.F


def fits(s: ConvShape, m: RSMapping, array: PEArray, buffer_capacity: int | None) -> bool:
    """True when ``m`` respects the RF scratchpads, the array size and the buffer capacity (words)."""
    s_piece, Rc, _ = geometry(s, array, m.fold_s)
    rf_ok = m.p * m.q * s_piece <= array.filter_words and m.q * s_piece <= array.ifmap_words and m.p <= array.psum_words
    sets_ok = m.e <= array.cols and m.r * m.t <= (array.rows // Rc) * (array.cols // m.e)
    tiles_ok = m.n <= s.N and m.e_b <= s.E and m.e <= m.e_b and m.m_b <= s.M and m.c_b <= s.C and m.p <= s.M and m.q <= s.C
    buffer_ok = buffer_capacity is None or buffer_words(s, m) <= buffer_capacity
    return bool(rf_ok and sets_ok and tiles_ok and buffer_ok)


def rs_energy(counts: dict[tuple[Datum, LevelKind], Any], energies: dict[LevelKind, float]) -> Any:
    """Memory energy of ``counts`` at word energies ``energies`` (hardware unit, one word each)."""
    return sum(count * energies.get(kind, 0.0) for (_, kind), count in counts.items())


def level_energies(hardware: Hardware) -> dict[LevelKind, float]:
    """Per-word energy of each level present, at the hardware's word width; a missing array
    level is priced as an RF write (the receiving PE's register file)."""
    energies = {level.kind: level.access_energy(hardware.word_bits) for level in hardware.levels}
    if LevelKind.ARRAY not in energies and LevelKind.RF in energies:
        energies[LevelKind.ARRAY] = energies[LevelKind.RF]
    return energies


def buffer_capacity_words(hardware: Hardware) -> int | None:
    """Global-buffer capacity in words of ``hardware.word_bits`` (None when unbounded or absent)."""
    level = hardware.level(LevelKind.BUFFER)
    return None if level is None else level.capacity_words(hardware.word_bits)


def pass_defaults(s: ConvShape, array: PEArray) -> dict[str, int]:
    """Eyeriss's pass parameters: fold E into strips of at most ``cols`` rows, cut filter rows
    wider than the ifmap scratchpad, fill the RF (q channels, then p filters), replicate the
    PE set into the free array first over filters (t, they share ifmaps) then channels (r)."""
    fold_s = ceil(s.S / min(array.ifmap_words, array.filter_words))
    s_piece, Rc, _ = geometry(s, array, fold_s)
    e = ceil(s.E / ceil(s.E / array.cols))
    q = max(1, min(s.C, array.ifmap_words // s_piece))
    p = max(1, min(s.M, array.psum_words, array.filter_words // (q * s_piece)))
    sets = (array.rows // Rc) * (array.cols // e)
    t = max(1, min(sets, ceil(s.M / p)))
    r = max(1, min(sets // t, ceil(s.C / q)))
    return dict(e=e, p=p, q=q, r=r, t=t, fold_s=fold_s)


def halvings(value: int, floor: int) -> list[int]:
    """``value``, ``ceil(value/2)``, ``ceil(value/4)``, ... down to ``floor`` (distinct, descending)."""
    out = [value]
    while out[-1] > floor:
        out.append(max(floor, ceil(out[-1] / 2)))
    return out


def default_mapping(s: ConvShape, array: PEArray, capacity: int | None, energies: dict[LevelKind, float]) -> RSMapping:
    """The analytic default: :func:`pass_defaults` plus the buffer tile with order N, M, E, C
    (psums stay in the buffer while channels stream, c_b = one pass of channels) that, among
    halvings of n and e_b, takes the most filters m_b that fit (fewer filter sets t when not even
    one pass of filters fits) and costs least energy."""
    base = pass_defaults(s, array)
    f, cc = min(base["p"] * base["t"], s.M), min(base["q"] * base["r"], s.C)
    best, best_cost = None, float("inf")
    for n in halvings(s.N, 1):
        for e_b in halvings(s.E, base["e"]):
            m = RSMapping(**base, n=n, m_b=f, c_b=cc, e_b=e_b)
            if capacity is not None:
                per_filter = cc * s.R * s.S + n * e_b * s.F
                room = capacity - buffer_words(s, dataclasses.replace(m, m_b=1)) + per_filter
                m_b = min(s.M, room // per_filter)
                if m_b >= f:
                    m = dataclasses.replace(m, m_b=int(m_b // f * f))
                elif m_b >= base["p"]:  # fewer filter sets, so one pass of filters fits
                    m = dataclasses.replace(m, t=int(m_b // base["p"]), m_b=int(m_b // base["p"] * base["p"]))
                else:
                    continue
            else:
                m = dataclasses.replace(m, m_b=s.M)
            counts = rs_counts(s, m, array)
            cost = rs_energy(counts, energies)
            if cost < best_cost:
                best, best_cost = m, cost
    if best is None:  # nothing fits: the smallest tile, flagged by fits() in the mapping record
        best = RSMapping(**base, n=1, m_b=f, c_b=cc, e_b=base["e"])
    return best


def describe(s: ConvShape, m: RSMapping, array: PEArray, capacity: int | None, counts: dict, search: bool) -> dict[str, Any]:
    """The plain-data ``AccessCounts.mapping`` record of a mapping and its reuse factors."""
    s_piece, Rc, K = geometry(s, array, m.fold_s)
    reuse = {}
    for datum in (Datum.WEIGHT, Datum.IFMAP):
        unique = {Datum.WEIGHT: s.G * s.M * s.C * s.R * s.S, Datum.IFMAP: s.G * s.N * s.C * s.H * s.W}[datum]
        per = [float(counts[(datum, kind)]) / unique for kind in LevelKind]
        reuse[datum.value] = [per[0]] + [per[i] / per[i - 1] if per[i - 1] else 0.0 for i in range(1, 4)]
    ab = s.C / min(m.q * m.r, s.C) * K
    a = (float(counts[(Datum.OFMAP, LevelKind.DRAM)]) / (s.G * s.N * s.M * s.E * s.F) + 1) / 2
    reuse[Datum.OFMAP.value] = [a, ab / a, Rc * m.r, min(m.q * m.r, s.C) * s_piece / m.r]
    sets = m.r * m.t
    return {
        "dataflow": "row_stationary",
        "search": search,
        "groups": s.G,
        "pe_set": [Rc, m.e],
        "fold": {"E": ceil(s.E / m.e), "R": K, "S": m.fold_s},
        "replication": {"r": m.r, "t": m.t},
        "pe": {"p": m.p, "q": m.q, "filter_words": m.p * m.q * s_piece, "ifmap_words": m.q * s_piece, "psum_words": m.p},
        "n": m.n,
        "buffer_tile": {"m": m.m_b, "c": m.c_b, "e": m.e_b, "words": int(buffer_words(s, m))},
        "loop_order": [*m.order, "M2", "C2", "K", "E2"],
        "reuse": reuse,
        "array_utilization": Rc * m.e * sets / (array.rows * array.cols),
        "fits": fits(s, m, array, capacity),
    }


@lru_cache(maxsize=4096)
def _default_counts(s: ConvShape, hardware: Hardware) -> AccessCounts:
    array = hardware.pe_array or EYERISS_ARRAY
    capacity = buffer_capacity_words(hardware)
    energies = level_energies(hardware)
    m = default_mapping(s, array, capacity, energies)
    counts = rs_counts(s, m, array)
    return to_access_counts(s, m, array, capacity, counts, energies, search=False)


def to_access_counts(s, m, array, capacity, counts, energies, search: bool) -> AccessCounts:
    """Wrap counts as :class:`AccessCounts`, keeping only levels the hardware prices."""
    kept = {key: float(value) for key, value in counts.items() if key[1] in energies}
    return AccessCounts(s.macs, kept, describe(s, m, array, capacity, counts, search))


@register_dataflow("row_stationary")
class RowStationary:
    """Eyeriss row-stationary with the analytic default mapping (see module docstring).

    ``accesses(layer, hardware)`` returns dense word counts for every (datum, level) the
    hardware has, summed over groups, and the mapping chosen in ``mapping``; results are
    cached per (shape, hardware). Hardware without a PE array gets Eyeriss's 12x14.
    Example: a 1x1 FC with C=M=N=1 costs one access of each datum at each level up to the
    array and one RF read per MAC (see ``tests/energy/test_row_stationary.py``).
    """

    name = "row_stationary"

    def accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Dense word accesses of one CONV/FC/MATMUL layer on ``hardware`` (reads + writes, in words)."""
        return _default_counts(conv_shape(layer), hardware)

    @staticmethod
    def cache_clear() -> None:
        """Forget the cached mappings (for timing a cold run)."""
        _default_counts.cache_clear()

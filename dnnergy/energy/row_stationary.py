"""The Eyeriss row-stationary (RS) dataflow: word accesses per (datum, level) from reuse.

Chen, Emer & Sze, ISCA 2016, as used for energy estimation by Yang et al., CVPR 2017.
The mapping, for one group of a layer (letters as in :class:`~dnnergy.workload.Layer`,
``C``/``M`` per group), is the loop nest (outermost first)::

    for the DRAM tier, in `order` (a permutation of N1 M1 C1 E1):   # buffer tiles
        N1 = N/n images, M1 = M/m_b filters, C1 = C/c_b channels, E1 = E/e_b output rows
      for M2 = m_b/f, C2 = c_b/cc, K (filter-row folds), E2 = e_b/(e*v):  # processing passes
        one pass on the array: n images x f = p*t filters x cc = q*r channels x e*v rows
          x a PE set of Rc filter rows by e output rows, replicated r x t x v times;
          each PE keeps p*q filter rows (p*q*S words) stationary in its RF, slides
          q ifmap rows (q*S words) through them and passes F psums down its column.

A datum's accesses follow from its reuse factors a, b, c, d at DRAM, buffer, array and
RF (REFERENCES.md, Chen et al. ISCA 2016): an input value costs ``a`` DRAM, ``a*b``
buffer, ``a*b*c`` array and ``a*b*c*d`` RF accesses; a partial sum ``2a-1``,
``2a(b-1)``, ``ab(c-1)`` and ``2abc(d-1)``, or, when the mapping keeps psums in the PEs
across channel passes (``RSMapping.resident``, where they fit), ``1``, ``0``, ``c-1`` and
``2c(abd-1)``. The derivation, the default mapping and a
worked AlexNet example are in ``docs/row-stationary.md``, with the comparison against
nn_dataflow 2.1 (energy per MAC within 10% on AlexNet, VGG-16, GoogLeNet and ResNet-50).

Two buffer-tiling policies (``RowStationary(tiles=...)``): ``"fit"`` (the default) takes any
tile that fits, its last tile partial (64 filters in tiles of 3: 21 x 3 + 1); ``"divisors"``
takes only tiles whose trip counts divide the loop counts exactly, as nn_dataflow's loop
blocking does (64 filters in tiles of 2), for like-for-like comparisons with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
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
    "psum_words_free",
    "psum_words_resident",
    "psums_resident_fit",
    "rf_words",
    "buffer_words",
    "level_energies",
    "buffer_capacity_words",
    "EYERISS_ARRAY",
    "TILE_POLICIES",
]

#: The Eyeriss PE array, used when the hardware describes none (e.g. ``horowitz45``).
EYERISS_ARRAY = PEArray(rows=12, cols=14, filter_words=224, ifmap_words=12, psum_words=24)

#: The DRAM-tier loop letters; an order lists them outermost first.
DRAM_LOOPS = ("N", "M", "C", "E")
#: Which loops index each datum (a loop over another letter reuses the datum).
RELEVANT = {Datum.WEIGHT: frozenset("MCK"), Datum.IFMAP: frozenset("NCEK"), Datum.OFMAP: frozenset("NME")}
#: The default DRAM-tier order: channels innermost, so psums stay in the buffer (a = 1).
DEFAULT_ORDER = ("N", "M", "E", "C")
#: The orders the analytic default tries: channels innermost, filters outside or inside the
#: strips (the first refetches ifmaps per filter tile, the second weights per strip).
DEFAULT_ORDERS = (DEFAULT_ORDER, ("N", "E", "M", "C"))
#: Buffer-tiling policies of the analytic default: any tile that fits (the last one partial), or
#: only tiles whose trip counts divide the loop counts exactly (nn_dataflow's loop blocking).
TILE_POLICIES = ("fit", "divisors")


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
    channels per PE, ``r`` (channels) x ``t`` (filters) x ``v`` (strips of ``e`` output
    rows, Eyeriss JSSC'17 IV.A) replicated PE sets, ``n`` images per pass. Buffer tile:
    ``m_b`` filters, ``c_b`` channels, ``e_b`` output rows (at least the ``e*v`` rows of a
    pass, or all of E; the same ``n`` images). ``order``: DRAM-tier loops outermost first.
    ``resident``: psums stay in the PEs across channel passes and row folds (see
    :func:`psums_resident_fit`) instead of a buffer round trip after every pass.
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
    v: int = 1
    resident: bool = False

    def __post_init__(self) -> None:
        for name in ("e", "p", "q", "r", "t", "n", "m_b", "c_b", "e_b", "fold_s", "v"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RSMapping: {name} must be a positive int (got {value!r})")
        if not isinstance(self.resident, (bool, np.bool_)):
            raise ValueError(f"RSMapping: resident must be a bool (got {self.resident!r})")
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
    innermost loop that indexes it with more than one trip (works on floats and numpy arrays).

    A loop that indexes the datum contributes its fractional trip (its last, partial tile loads
    less: the product times the tile is the exact amount). A loop that does not index it
    contributes ``ceil(trip)``: its partial last iteration (e.g. the last 1 of 64 = 21 x 3 + 1
    filters) still reloads the whole tile of the other datum (the ifmaps)."""
    total = 1.0
    later = 1.0  # product of relevant trips inside the current loop; > 1 means a reload follows
    for letter, trip in reversed(order):
        if letter in relevant:
            total = total * trip
            later = later * trip
        else:
            total = total * np.where(later > 1, np.ceil(trip), 1.0)
    return total


def _pieces(total: Any, tile: Any, piece: Any) -> Any:
    """Pieces of at most ``piece`` when ``total`` is cut into tiles of ``tile`` and each tile into
    pieces (integers or integer arrays): e.g. the filter passes of f filters over all M filters
    in buffer tiles of m_b, counting the partial pass at the end of each tile."""
    full = np.floor_divide(total, tile)
    return full * -np.floor_divide(-tile, piece) - np.floor_divide(-(total - full * tile), piece)


def _psums_leave(s: ConvShape, m: RSMapping) -> Any:
    """True where psums make DRAM round trips: the channel loop of the DRAM tier encloses an
    output loop (N, M or E) with more than one trip (compared on integers, so exact)."""
    inner = np.zeros(np.shape(m.c_b), dtype=bool)  # an output loop inside C advances
    sizes = {"N": (s.N, m.n), "M": (s.M, m.m_b), "E": (s.E, m.e_b)}
    for letter in reversed(m.order):
        if letter == "C":
            return inner
        inner = inner | (np.asarray(sizes[letter][0]) > np.asarray(sizes[letter][1]))
    raise AssertionError("order has no C loop")  # RSMapping checks the permutation


def psum_words_free(array: PEArray, p: Any, q: Any, s_piece: int) -> Any:
    """Psum words one PE can hold: its psum scratchpad, or in a shared register file what its
    ``p*q`` filter rows and ``q``-row ifmap window leave of it. Example: a 19-word shared RF with
    4 filters x 2 channels of 1-word rows keeps 19 - 8 - 2 = 9:
    ``psum_words_free(PEArray(1, 2, 19, 19, 19, shared_rf_words=19), 4, 2, 1) == 9``."""
    if array.shared_rf_words is None:
        return array.psum_words
    return np.minimum(array.psum_words, array.shared_rf_words - p * q * s_piece - q * s_piece)


def psum_words_resident(s: ConvShape, m: RSMapping) -> Any:
    """Psum words one PE produces over a buffer tile: ``n*p`` output rows of F for each of the
    tile's filter passes and strips (what it must hold to keep its psums across channel passes).
    Example: 4 filters per PE, one filter pass and one strip per tile, 1 image, F = 2: 8 words."""
    f = np.minimum(m.p * m.t, s.M)
    return m.n * m.p * s.F * -np.floor_divide(-m.m_b, f) * -np.floor_divide(-m.e_b, m.e * m.v)


def psums_resident_fit(s: ConvShape, m: RSMapping, array: PEArray) -> Any:
    """True where ``m``'s psums can stay in the PEs across channel passes and filter-row folds:
    they make no DRAM round trip (the channel loop is inside every output loop that advances) and
    each PE can hold all it produces over a buffer tile (:func:`psum_words_resident` at most
    :func:`psum_words_free`). A resident PE accumulates its share of each output over all
    channels and the column sums the shares once, instead of a psum buffer round trip after every
    pass; each pass then reads and writes the psum in the RF once more (2c(ab-1) RF accesses per
    output for 2(ab-1) buffer and (ab-1)(c-1) array accesses saved), so it is a choice the
    mapping makes (``RSMapping.resident``), not a rule. Example: a PE with 4 filters on a 2-pixel
    row over one filter pass and strip produces 8 psums; they stay with an 8-word psum pad, not
    with a 7-word one (``tests/energy/test_row_stationary_resident.py``)."""
    s_piece = geometry(s, array, m.fold_s)[0]
    return ~_psums_leave(s, m) & (psum_words_resident(s, m) <= psum_words_free(array, m.p, m.q, s_piece))


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
    rows = m.e * m.v  # output rows of one pass: v strips of e rows
    nest = dram + [("M", m.m_b / f), ("C", m.c_b / cc), ("K", K), ("E", m.e_b / rows)]
    # Passes; the filter passes are whole (a partial pass of filters re-streams every ifmap row).
    passes = s.N / m.n * _pieces(s.M, m.m_b, f) * s.C / cc * s.E / rows * K
    trips = {letter: trip for letter, trip in dram}
    # Ifmap rows (height, width) one pass streams: its output rows need (rows-1)*U + Rc' rows.
    rows_pass = np.minimum(s.H + 2 * s.P[0], (rows - 1) * Uh + (Rc - 1) * Dh + 1)
    width = min(s.W + 2 * s.P[1], (s.F - 1) * Uw + (s_piece - 1) * Dw + 1)
    rows_tile = np.minimum(s.H, (m.e_b - 1) * Uh + (s.R - 1) * Dh + 1)
    t_eff = np.minimum(m.t, np.ceil(s.M / m.p))

    # Weights: DRAM -> buffer tile m_b x c_b x R x S; a pass reads f x cc x Rc x S' and
    # multicasts each filter row to the e*v PEs of its set rows; each MAC reads one from the RF.
    w_dram = s.M * s.C * s.R * s.S / (trips["M"] * trips["C"]) * _fetches(dram, RELEVANT[Datum.WEIGHT])
    w_buf = f * cc * Rc * s_piece * _fetches(nest, RELEVANT[Datum.WEIGHT])
    # Ifmaps: re-streamed every pass (the RF holds only a q*S window); each of the Rc*e*v*t PEs
    # of a channel set receives its q rows (one diagonal row per channel) of `width` words.
    i_dram = m.n * m.c_b * rows_tile * s.W * _fetches(dram, RELEVANT[Datum.IFMAP])
    i_buf = m.n * cc * rows_pass * width * passes
    i_arr = m.n * cc * width * passes * Rc * m.e * m.v * t_eff
    # Psums: d = cc*S'/r accumulations in a PE, c = Rc*r PEs down a column, ab = (C/cc)*K passes
    # per output, a of them DRAM round trips: C/c_b when the channel loop is outside an output
    # loop that advances, else 1. Differences are taken on integer numerators (exact, never < 0):
    # ab - a = (C*K*c_b - a_num*cc) / (cc*c_b) with a = a_num/c_b, and d - 1 = (cc*S' - r) / r.
    o_unique = s.N * s.M * s.E * s.F
    a_num = np.where(_psums_leave(s, m), s.C, m.c_b)
    ab = s.C * K / cc
    c = Rc * m.r
    # Resident psums (RSMapping.resident): each PE accumulates its share of an output over all
    # ab*d = C*K*S'/r MACs, and the column sums the c shares once at the end (b = 1).
    resident = np.asarray(m.resident, dtype=bool)
    counts = {
        (Datum.WEIGHT, LevelKind.DRAM): w_dram,
        (Datum.WEIGHT, LevelKind.BUFFER): w_buf,
        (Datum.WEIGHT, LevelKind.ARRAY): w_buf * m.e * m.v,
        (Datum.WEIGHT, LevelKind.RF): macs,
        (Datum.IFMAP, LevelKind.DRAM): i_dram,
        (Datum.IFMAP, LevelKind.BUFFER): i_buf,
        (Datum.IFMAP, LevelKind.ARRAY): i_arr,
        (Datum.IFMAP, LevelKind.RF): macs,
        (Datum.OFMAP, LevelKind.DRAM): o_unique * (2 * a_num - m.c_b) / m.c_b,
        (Datum.OFMAP, LevelKind.BUFFER): np.where(resident, 0.0, o_unique * 2 * (s.C * K * m.c_b - a_num * cc) / (cc * m.c_b)),
        (Datum.OFMAP, LevelKind.ARRAY): o_unique * np.where(resident, 1.0, ab) * (c - 1),
        (Datum.OFMAP, LevelKind.RF): o_unique * 2 * c * np.where(resident, (s.C * K * s_piece - m.r) / m.r,
                                                                  ab * (cc * s_piece - m.r) / m.r),
    }
    return {key: value * s.G for key, value in counts.items()}


def buffer_words(s: ConvShape, m: RSMapping) -> Any:
    """Words the global buffer must hold for ``m``'s tile: weights + ifmap rows + psums."""
    rows_tile = np.minimum(s.H, (m.e_b - 1) * s.U[0] + (s.R - 1) * s.D[0] + 1)
    return m.m_b * m.c_b * s.R * s.S + m.n * m.c_b * rows_tile * s.W + m.n * m.m_b * m.e_b * s.F


def rf_words(p: Any, q: Any, s_piece: int) -> Any:
    """Words one PE holds: ``p*q`` filter rows and a ``q``-row ifmap window of ``s_piece`` words
    each, and ``p`` psums (what a shared register file must hold, ``PEArray.shared_rf_words``)."""
    return p * q * s_piece + q * s_piece + p


def fits(s: ConvShape, m: RSMapping, array: PEArray, buffer_capacity: int | None) -> bool:
    """True when ``m`` respects the RF scratchpads (and their shared total, if any), the array
    size and the buffer capacity (words)."""
    s_piece, Rc, _ = geometry(s, array, m.fold_s)
    rf_ok = m.p * m.q * s_piece <= array.filter_words and m.q * s_piece <= array.ifmap_words and m.p <= array.psum_words
    rf_ok = rf_ok and (array.shared_rf_words is None or rf_words(m.p, m.q, s_piece) <= array.shared_rf_words)
    sets_ok = m.e <= array.cols and m.r * m.t * m.v <= (array.rows // Rc) * (array.cols // m.e)
    tiles_ok = m.n <= s.N and m.e_b <= s.E and min(s.E, m.e * m.v) <= m.e_b and m.m_b <= s.M and m.c_b <= s.C and m.p <= s.M and m.q <= s.C
    buffer_ok = buffer_capacity is None or buffer_words(s, m) <= buffer_capacity
    resident_ok = not m.resident or bool(psums_resident_fit(s, m, array))
    return bool(rf_ok and sets_ok and tiles_ok and buffer_ok and resident_ok)


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


def pass_defaults(s: ConvShape, array: PEArray, q: int | None = None, p: int | None = None) -> dict[str, int]:
    """Eyeriss's pass parameters: fold E into strips of at most ``cols`` rows, cut filter rows
    wider than the ifmap scratchpad, fill the RF (``q`` channels, by default as many as fit, then
    p filters; in a shared RF, :func:`rf_words` at most ``shared_rf_words``), place the strips on the free PE sets first (v, as Eyeriss JSSC'17 IV.A and
    nn_dataflow's MapStrategyEyeriss do; they share filters), then replicate over filters (t,
    they share ifmaps), then channels (r)."""
    fold_s = ceil(s.S / min(array.ifmap_words, array.filter_words))
    s_piece, Rc, _ = geometry(s, array, fold_s)
    e = ceil(s.E / ceil(s.E / array.cols))
    shared = array.shared_rf_words
    if q is None:  # the most channels with one filter (a shared RF holds 2q rows and a psum)
        q = max(1, min(s.C, array.ifmap_words // s_piece, (shared - 1) // (2 * s_piece) if shared else s.C))
    p = max(1, min(s.M, array.psum_words, array.filter_words // (q * s_piece),
                   (shared - q * s_piece) // (q * s_piece + 1) if shared else s.M, p or s.M))
    sets = (array.rows // Rc) * (array.cols // e)
    v = max(1, min(sets, ceil(s.E / e)))
    t = max(1, min(sets // v, ceil(s.M / p)))
    r = max(1, min(sets // (v * t), ceil(s.C / q)))
    return dict(e=e, p=p, q=q, r=r, t=t, v=v, fold_s=fold_s)


def halvings(value: int, floor: int) -> list[int]:
    """``value``, ``ceil(value/2)``, ``ceil(value/4)``, ... down to ``floor`` (distinct, descending)."""
    out = [value]
    while out[-1] > floor:
        out.append(max(floor, ceil(out[-1] / 2)))
    return out


def divisors(n: int) -> list[int]:
    """The positive divisors of ``n``, ascending: ``divisors(12) == [1, 2, 3, 4, 6, 12]``."""
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def tile_sizes(total: int, unit: int, tiles: str) -> list[int]:
    """Candidate tile sizes along a loop of ``total`` (images or output rows) built from ``unit``s
    (an image; the e*v rows of a pass): ``"fit"``: halvings of ``total`` down to ``unit``;
    ``"divisors"``: k units (at most ``total``) for every k dividing the loop count
    ``ceil(total / unit)``, so the tiles split the loop exactly (only the last unit may be partial,
    as in nn_dataflow, whose loop counts are in pass units too)."""
    if tiles == "fit":
        return halvings(total, unit)
    return [min(total, k * unit) for k in divisors(ceil(total / unit))]


def default_mapping(s: ConvShape, array: PEArray, capacity: int | None, energies: dict[LevelKind, float],
                    tiles: str = "fit") -> RSMapping:
    """The analytic default: :func:`pass_defaults` plus the buffer tile with order N, M, E, C
    (psums stay in the buffer while channels stream, c_b = one pass of channels) that, among
    halvings of n and e_b and of the channels per PE q (fewer channels leave more of the buffer
    to filters: the tile's ifmap rows shrink), takes the most filters m_b that fit and costs
    least energy. When not even one pass of filters fits, the pass shrinks: fewer filter sets t,
    then fewer filters per PE p; when no tile fits at all, fewer strips per pass (halvings of v),
    then narrower PE sets (halvings of e), whose psum strips are smaller.

    ``tiles="divisors"`` (see :data:`TILE_POLICIES`) restricts the tile to exact trip counts:
    m_b divides M, n divides N, e_b is k passes of rows with k dividing the number of passes
    (:func:`tile_sizes`); c_b stays one pass of channels (its loop count is the pass count). Among
    those it takes the cheapest, every dividing m_b that fits being a candidate."""
    base = pass_defaults(s, array)
    passes = [pass_defaults(s, array, q, p) for q in halvings(base["q"], 1)
              for p in halvings(pass_defaults(s, array, q)["p"], 1)]
    stages = [[dict(b, v=min(v, b["v"])) for b in passes] for v in halvings(base["v"], 1)]
    stages += [[dict(b, v=1, e=e) for b in passes] for e in halvings(base["e"], 1)[1:]]
    for stage in stages:
        best = _best_tile(s, array, stage, capacity, energies, tiles)
        if best is not None:
            return best
    # nothing fits: the smallest tile, flagged by fits() in the mapping record
    return RSMapping(**base, n=1, m_b=min(base["p"] * base["t"], s.M), c_b=min(base["q"] * base["r"], s.C),
                     e_b=min(s.E, base["e"] * base["v"]))


def _best_tile(s: ConvShape, array: PEArray, bases: list[dict[str, int]], capacity: int | None,
               energies: dict[LevelKind, float], tiles: str = "fit") -> RSMapping | None:
    """The cheapest default buffer tile over passes ``bases`` (see :func:`default_mapping`), or None
    if none fits; all (pass, n, e_b) candidates (``"divisors"``: x every m_b dividing M) are priced
    at once with numpy, per order."""
    fields = ("e", "p", "q", "r", "t", "v", "n", "e_b")
    rows = [(*(b[k] for k in fields[:6]), n, e_b) for b in bases
            for n in tile_sizes(s.N, 1, tiles) for e_b in tile_sizes(s.E, min(s.E, b["e"] * b["v"]), tiles)]
    exact = tiles == "divisors" and capacity is not None  # unbounded: all M filters, a divisor
    # psums resident or not (RSMapping.resident) x the filter tile: a divisor of M ("divisors"), or the most
    # that fit (0), and for resident psums also one pass of filters, whose psums a PE holds more easily (1)
    rows = [(*row, res, d) for row in rows for res in (0, 1) for d in (divisors(s.M) if exact else range(res + 1))]
    columns = np.array(rows, dtype=np.int64).T
    trial = SimpleNamespace(**dict(zip(fields, columns)), fold_s=bases[0]["fold_s"], resident=columns[-2] == 1)
    trial.c_b = np.minimum(trial.q * trial.r, s.C)
    f = np.minimum(trial.p * trial.t, s.M)
    ok = np.ones(f.shape, dtype=bool)
    if capacity is None:
        trial.m_b = np.full(f.shape, s.M)
    else:  # the most filters that fit; then fewer filter sets t, or fewer filters per PE p
        per_filter = trial.c_b * s.R * s.S + trial.n * trial.e_b * s.F
        trial.m_b = np.zeros(f.shape, dtype=np.int64)
        m_b = np.minimum(s.M, (capacity - buffer_words(s, trial)) // per_filter)
        if exact:  # the candidate divisor of M where it fits, else none
            m_b = np.where(columns[-1] <= m_b, columns[-1], 0)
        sets_fewer, pe_fewer = (m_b < f) & (m_b >= trial.p), (m_b < trial.p) & (m_b >= 1)
        trial.t = np.where(sets_fewer, m_b // trial.p, np.where(pe_fewer, 1, trial.t))
        trial.p = np.where(pe_fewer, m_b, trial.p)
        # whole passes of f filters, or all M filters when they fit (the last pass is then partial);
        # a divisor of M as it is (its last pass may be partial)
        trial.m_b = np.maximum(m_b, 1) if exact else np.where(m_b >= s.M, s.M, np.where(m_b >= f, m_b // f * f, trial.p * trial.t))
        ok = m_b >= 1
    if not exact:
        trial.m_b = np.where(columns[-1] == 1, np.minimum(trial.m_b, np.minimum(trial.p * trial.t, s.M)), trial.m_b)
    best, best_cost = None, float("inf")
    for order in DEFAULT_ORDERS:
        if order != DEFAULT_ORDER and not (ok & (trial.m_b < s.M) & (trial.e_b < s.E)).any():
            break  # with one filter tile or one strip tile, both orders cost the same
        trial.order = order
        valid = ok & (~trial.resident | psums_resident_fit(s, trial, array))
        cost = np.where(valid, rs_energy(rs_counts(s, trial, array), energies), np.inf)
        i = int(np.argmin(cost))
        if cost[i] < best_cost:
            best_cost = float(cost[i])
            best = RSMapping(**{k: int(getattr(trial, k)[i]) for k in (*fields, "m_b", "c_b")}, fold_s=trial.fold_s,
                             order=order, resident=bool(trial.resident[i]))
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
    d = min(m.q * m.r, s.C) * s_piece / m.r
    # resident psums: no buffer round trips (b = 1), every pass's MACs accumulate in the PE
    reuse[Datum.OFMAP.value] = [a, 1.0, Rc * m.r, ab * d] if m.resident else [a, ab / a, Rc * m.r, d]
    sets = m.r * m.t * m.v
    return {
        "dataflow": "row_stationary",
        "search": search,
        "groups": s.G,
        "pe_set": [Rc, m.e],
        "fold": {"E": ceil(s.E / m.e), "R": K, "S": m.fold_s},
        "replication": {"r": m.r, "t": m.t, "v": m.v},
        "pe": {"p": m.p, "q": m.q, "filter_words": m.p * m.q * s_piece, "ifmap_words": m.q * s_piece,
               "psum_words": int(psum_words_resident(s, m)) if m.resident else m.p},
        "psums": "resident" if m.resident else "per pass",
        "n": m.n,
        "buffer_tile": {"m": m.m_b, "c": m.c_b, "e": m.e_b, "words": int(buffer_words(s, m))},
        "loop_order": [*m.order, "M2", "C2", "K", "E2"],
        "reuse": reuse,
        "array_utilization": Rc * m.e * sets / (array.rows * array.cols),
        "fits": fits(s, m, array, capacity),
    }


@lru_cache(maxsize=4096)
def _default_counts(s: ConvShape, hardware: Hardware, tiles: str) -> AccessCounts:
    array = hardware.pe_array or EYERISS_ARRAY
    capacity = buffer_capacity_words(hardware)
    energies = level_energies(hardware)
    m = default_mapping(s, array, capacity, energies, tiles)
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
    cached per (shape, hardware, tiles). Hardware without a PE array gets Eyeriss's 12x14.
    Example: a 1x1 FC with C=M=N=1 costs one access of each datum at each level up to the
    array and one RF read per MAC (see ``tests/energy/test_row_stationary.py``); for ``nn.Linear(4, 2)``
    on ``eyeriss``, ``RowStationary().accesses(layer, hardware)`` counts 8 MACs, each of the 8 weights
    once at every level, and 12 psum RF accesses. ``RowStationary.cache_clear()`` empties the cache.

    ``tiles``: ``"fit"`` (default, registered as ``row_stationary``) takes any buffer tile that
    fits, the last one partial; ``"divisors"`` only tiles whose trip counts divide the loop counts
    exactly, as nn_dataflow's loop blocking requires (see :func:`default_mapping`), for comparing
    with it like for like: ``dnnergy.estimate(wl, "eyeriss", RowStationary(tiles="divisors"))``.
    It re-reads more (VGG-16 conv1_2: 64 filters in tiles of 2, not 3: 32 ifmap fetches, not 22).
    """

    name = "row_stationary"

    def __init__(self, tiles: str = "fit") -> None:
        if tiles not in TILE_POLICIES:
            raise UserInputError(f"{type(self).__name__}: tiles must be one of {', '.join(map(repr, TILE_POLICIES))} (got {tiles!r})")
        if tiles != "fit" and type(self).accesses is not RowStationary.accesses:
            raise UserInputError(f"{type(self).__name__}: tiles={tiles!r} applies to the analytic row_stationary only")
        self.tiles = tiles
        if tiles != "fit":
            self.name = f"{self.name} (divisor tiles)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tiles={self.tiles!r})"

    def accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Dense word accesses of one CONV/FC/MATMUL layer on ``hardware`` (reads + writes, in words)."""
        return _default_counts(conv_shape(layer), hardware, self.tiles)

    @staticmethod
    def cache_clear() -> None:
        """Forget the cached mappings (for timing a cold run)."""
        _default_counts.cache_clear()

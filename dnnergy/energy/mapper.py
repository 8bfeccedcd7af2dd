"""A mapper for the row-stationary dataflow: search tilings and loop orders, keep the cheapest.

The search space is that of :class:`~dnnergy.energy.row_stationary.RSMapping`, under
the capacity constraints of the hardware: per-PE scratchpads (``p*q*S' <= filter
words``, ``q*S' <= ifmap words``, ``p <= psum words``), the array (``r*t`` PE sets of
``Rc x e`` PEs fit in ``rows x cols``) and the global buffer (weights + ifmap rows +
psums of the buffer tile fit in its capacity). It runs in two stages:

1. **Pass**: every (e, p, q, r, t) on a grid of halvings (each value, its half, its
   quarter, ...) is priced with an unbounded buffer (every datum fetched from DRAM once),
   which ranks them by on-chip energy; the best few whose smallest tile fits the buffer,
   and the analytic default's pass, go on.
2. **Buffer tile**: for each of those, every (n, m_b, c_b, e_b) on halving grids, psums
   per pass or resident in the PEs (``RSMapping.resident``) and every order of the four
   DRAM-tier loops, vectorized with numpy; tiles that overflow the buffer, and resident
   psums that do not fit the PEs, are dropped.

The result is never worse than the analytic default (it is one of the candidates, and
the final answer is compared against it). NB: grids of halvings, not all divisors, so
this is a heuristic search; the energy it minimizes is memory energy at the hardware's
word width (MAC energy does not depend on the mapping).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from types import SimpleNamespace

import numpy as np

from ..hardware import Hardware, PEArray
from ..workload import Layer
from .dataflow import AccessCounts, register_dataflow
from .row_stationary import (
    DEFAULT_ORDER,
    DRAM_LOOPS,
    EYERISS_ARRAY,
    ConvShape,
    RowStationary,
    RSMapping,
    geometry,
    halvings,
    buffer_capacity_words,
    buffer_words,
    conv_shape,
    default_mapping,
    fits,
    level_energies,
    psums_resident_fit,
    rf_words,
    rs_counts,
    rs_energy,
    to_access_counts,
)

__all__ = ["search_mapping", "RowStationarySearch"]

#: Pass configurations carried from stage 1 to stage 2 (plus the analytic default's).
KEEP = 6
ORDERS = tuple(itertools.permutations(DRAM_LOOPS))


def _pass_grid(s: ConvShape, array: PEArray, fold_s: int) -> dict[str, np.ndarray]:
    """All (e, p, q, r, t) on halving grids that fit the RF scratchpads (and their shared total) and the array."""
    s_piece, Rc, _ = geometry(s, array, fold_s)
    rows = []
    for e in halvings(min(s.E, array.cols), 1)[:4]:
        sets = (array.rows // Rc) * (array.cols // e)
        for q in halvings(max(1, min(s.C, array.ifmap_words // s_piece)), 1):
            if q * s_piece > array.ifmap_words:
                continue
            for p in halvings(max(1, min(s.M, array.psum_words, array.filter_words // (q * s_piece))), 1):
                if p * q * s_piece > array.filter_words:
                    continue
                if array.shared_rf_words is not None and rf_words(p, q, s_piece) > array.shared_rf_words:
                    continue  # one register file shared by the three data (PEArray.shared_rf_words)
                for t in halvings(max(1, min(sets, -(-s.M // p))), 1):
                    for r in halvings(max(1, min(sets // t, -(-s.C // q))), 1):
                        rows.append((e, p, q, r, t))
    grid = np.array(rows, dtype=np.int64).T
    return dict(zip(("e", "p", "q", "r", "t"), grid))


def _stage_one(s: ConvShape, array: PEArray, fold_s: int, capacity: int | None, energies: dict) -> list[dict[str, int]]:
    """The ``KEEP`` cheapest pass configurations with every datum fetched from DRAM once, among
    those whose smallest buffer tile (one image, one pass of filters, channels and rows) fits."""
    grid = _pass_grid(s, array, fold_s)
    cc = np.minimum(grid["q"] * grid["r"], s.C)
    trial = SimpleNamespace(**grid, fold_s=fold_s, v=1, n=s.N, m_b=s.M, c_b=cc, e_b=s.E, order=DEFAULT_ORDER, resident=False)
    cost = rs_energy(rs_counts(s, trial, array), energies)
    if capacity is not None:
        smallest = SimpleNamespace(n=1, m_b=np.minimum(grid["p"] * grid["t"], s.M), c_b=cc, e_b=grid["e"])
        cost = np.where(buffer_words(s, smallest) <= capacity, cost, np.inf)
    best = np.argsort(cost, kind="stable")[:KEEP]
    return [{k: int(v[i]) for k, v in grid.items()} | {"v": 1} for i in best]


def _stage_two(s: ConvShape, array: PEArray, base: dict[str, int], fold_s: int, capacity: int | None, energies: dict):
    """(cost, RSMapping) of the cheapest buffer tile and DRAM order for one pass configuration."""
    f = min(base["p"] * base["t"], s.M)
    cc = min(base["q"] * base["r"], s.C)
    axes = [
        halvings(s.N, 1),
        sorted({min(s.M, f * k) for k in halvings(-(-s.M // f), 1)}),
        sorted({min(s.C, cc * k) for k in halvings(-(-s.C // cc), 1)}),
        halvings(s.E, min(s.E, base["e"] * base["v"])),
    ]
    n, m_b, c_b, e_b, resident = (a.ravel() for a in np.meshgrid(*axes, [False, True], indexing="ij"))
    trial = SimpleNamespace(**base, fold_s=fold_s, n=n, m_b=m_b, c_b=c_b, e_b=e_b, order=DRAM_LOOPS, resident=resident)
    ok = np.ones(n.shape, dtype=bool) if capacity is None else buffer_words(s, trial) <= capacity
    if not ok.any():
        return float("inf"), None
    best_cost, best = float("inf"), None
    for order in ORDERS:
        trial.order = order
        valid = ok & (~resident | psums_resident_fit(s, trial, array))
        cost = np.where(valid, rs_energy(rs_counts(s, trial, array), energies), np.inf)
        i = int(np.argmin(cost))
        if cost[i] < best_cost:
            best_cost = float(cost[i])
            best = RSMapping(**base, fold_s=fold_s, n=int(n[i]), m_b=int(m_b[i]), c_b=int(c_b[i]), e_b=int(e_b[i]), order=order,
                             resident=bool(resident[i]))
    return best_cost, best


def search_mapping(s: ConvShape, array: PEArray, capacity: int | None, energies: dict) -> RSMapping:
    """The cheapest row-stationary mapping found for ``s`` (memory energy, hardware unit) that fits
    ``capacity`` (words); never worse than :func:`~dnnergy.energy.row_stationary.default_mapping` when
    the default fits. (The default streams one pass of channels per buffer tile; when that alone
    overflows the buffer, the search's smaller channel tile can cost more than the infeasible default.)"""
    default = default_mapping(s, array, capacity, energies)
    best, best_cost = default, float(rs_energy(rs_counts(s, default, array), energies))
    if not fits(s, default, array, capacity):
        best_cost = float("inf")
    fold_s = default.fold_s
    keep = {"e": default.e, "p": default.p, "q": default.q, "r": default.r, "t": default.t, "v": default.v}
    candidates = _stage_one(s, array, fold_s, capacity, energies)
    for base in ([keep] if keep not in candidates else []) + candidates:
        cost, mapping = _stage_two(s, array, base, fold_s, capacity, energies)
        if mapping is not None and cost < best_cost:
            best, best_cost = mapping, cost
    return best


@lru_cache(maxsize=4096)
def _search_counts(s: ConvShape, hardware: Hardware) -> AccessCounts:
    array = hardware.pe_array or EYERISS_ARRAY
    capacity = buffer_capacity_words(hardware)
    energies = level_energies(hardware)
    m = search_mapping(s, array, capacity, energies)
    return to_access_counts(s, m, array, capacity, rs_counts(s, m, array), energies, search=True)


@register_dataflow("row_stationary_search")
class RowStationarySearch(RowStationary):
    """Row-stationary with the mapper: the cheapest mapping found by :func:`search_mapping`.

    Same contract as :class:`~dnnergy.energy.row_stationary.RowStationary`; the chosen
    mapping (tiles, loop order, reuse factors) is in ``AccessCounts.mapping`` with
    ``"search": True``. Cached per (shape, hardware); AlexNet takes well under 2 s.
    Example: ``dnnergy.estimate(workload, "eyeriss", "row_stationary_search")`` (or
    ``RowStationarySearch()``) of the zoo's ``lenet5`` totals 1.054e8 MAC-normalized, against
    1.060e8 with the default mapping.
    """

    name = "row_stationary_search"

    def accesses(self, layer: Layer, hardware: Hardware) -> AccessCounts:
        """Dense word accesses of one CONV/FC/MATMUL layer under the searched mapping (words)."""
        return _search_counts(conv_shape(layer), hardware)

    @staticmethod
    def cache_clear() -> None:
        """Forget the cached searched mappings (for timing a cold run)."""
        _search_counts.cache_clear()

"""dnnergy's row-stationary model against nn_dataflow 2.1's optimized Eyeriss mapping.

Configuration (nn_dataflow's own ``test_eyeriss_isscc16`` resource with the ISCA'16
normalized costs): one node, a 12 x 14 PE array, a 108 kB global buffer (55,296 16-bit
words), 261-word register files, costs MAC 1, DRAM 200, buffer 6, array 2, RF 1 per
16-bit word, no NoC-hop or static cost, ``Option()`` defaults (exhaustive loop blocking,
no bypass, no inter-layer pipelining), batch 1, ``MapStrategyEyeriss``.

Both tools price the *same layers*: the conv and FC layers of nn_dataflow's own network
definitions (``nn_dataflow.nns``: alex_net, vgg_net, googlenet, resnet50), stored with
nn_dataflow's results in ``benchmarks/nn_dataflow_reference.json``. Pooling and eltwise
layers are excluded on both sides (dnnergy: ``non_mac="exclude"``).

nn_dataflow's search is slow and needs ``sympy<1.12`` (its ``Tuple.subs`` use breaks on
1.14), which conflicts with torch in the main environment, so its results are cached:

    # once, in a separate environment (no dnnergy needed there):
    python3 -m venv /tmp/venv-nnd && /tmp/venv-nnd/bin/pip install "sympy<1.12" nn-dataflow==2.1
    nice /tmp/venv-nnd/bin/python benchmarks/nn_dataflow_compare.py --reference alex_net vgg_net googlenet resnet50

    # then, with dnnergy (reads the JSON; writes the "nn_dataflow comparison" section of results.md):
    python benchmarks/nn_dataflow_compare.py [--quick] [--no-write] [--out PATH]

dnnergy is run with both buffer-tiling policies of its analytic row-stationary default:
``row_stationary`` (any tile that fits, the last one partial) and ``row_stationary (divisor
tiles)`` (``RowStationary(tiles="divisors")``: trip counts that divide the loop counts exactly,
nn_dataflow's loop-blocking constraint), plus the mapper ``row_stationary_search``.
Targets: energy per MAC within 10% of nn_dataflow's and DRAM share of energy within 5 points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REFERENCE = Path(__file__).resolve().with_name("nn_dataflow_reference.json")
NETS = ("alex_net", "vgg_net", "googlenet", "resnet50")
LEVELS = ("DRAM", "buffer", "array", "RF")  # nn_dataflow's MemHierEnum order
DATA = ("weight", "ifmap", "ofmap")  # nn_dataflow's DataCategoryEnum order (FIL, IFM, OFM)
CONFIG = {
    "batch": 1,
    "dim_array": [12, 14],
    "size_gbuf_words": 108 * 1024 // 2,
    "size_regf_words": 261,
    "word_bits": 16,
    "cost": {"mac_op": 1, "mem_hier": [200, 6, 2, 1], "noc_hop": 0, "idl_unit": 0},
    "options": "Option() defaults: exhaustive loop blocking, no bypass, no partitioning, 1 process",
    "map_strategy": "MapStrategyEyeriss",
}
#: dnnergy's dataflows in the comparison; "row_stationary:divisors" is RowStationary(tiles="divisors").
DATAFLOWS = ("row_stationary", "row_stationary:divisors", "row_stationary_search")
#: Suffix of the rows priced on :func:`reference_hardware` (nn_dataflow's shared RF) rather than the
#: ``eyeriss`` preset; analytic dataflows only (the mapper's pass grid does not honour a shared RF yet).
SHARED_RF = " on nn_dataflow's shared RF"
#: Suffix of the rows priced on ``reference_hardware(psums_in_rf=False)``: nn_dataflow's psum accounting
#: expressed as hardware (psums held outside the 261-word RF, without a capacity limit).
PSUMS_OUTSIDE = " with nn_dataflow's psum accounting"
#: Psum words per PE standing for "no capacity limit" in that hardware.
UNBOUNDED_PSUM_WORDS = 10**6
#: (energy per MAC ratio, DRAM share points): the agreement targets of issue 11.
TARGETS = (0.10, 5.0)
INSTALL = ("nn_dataflow is not installed. It needs sympy<1.12 (torch's environment has 1.14), so use a separate venv:\n"
           "  python3 -m venv /tmp/venv-nnd && /tmp/venv-nnd/bin/pip install 'sympy<1.12' nn-dataflow==2.1\n"
           "  nice /tmp/venv-nnd/bin/python benchmarks/nn_dataflow_compare.py --reference alex_net\n")


# -- nn_dataflow side (runs in the nn_dataflow environment, without dnnergy) ----------------
def run_reference(net: str) -> dict:
    """nn_dataflow's best schedule for ``net`` under :data:`CONFIG`, per conv/FC layer (plain data)."""
    import sympy
    from nn_dataflow.core import (
        ConvLayer,
        Cost,
        MapStrategyEyeriss,
        NNDataflow,
        NodeRegion,
        Option,
        PhyDim2,
        Resource,
    )
    from nn_dataflow.nns import import_network
    from nn_dataflow.version import get_version

    one = {"origin": PhyDim2(0, 0), "dim": PhyDim2(1, 1)}
    resource = Resource(proc_region=NodeRegion(type=NodeRegion.PROC, **one),
                        dram_region=NodeRegion(type=NodeRegion.DRAM, **one),
                        src_data_region=NodeRegion(type=NodeRegion.DRAM, **one),
                        dst_data_region=NodeRegion(type=NodeRegion.DRAM, **one),
                        dim_array=PhyDim2(*CONFIG["dim_array"]), size_gbuf=CONFIG["size_gbuf_words"],
                        size_regf=CONFIG["size_regf_words"], array_bus_width=float("inf"),
                        dram_bandwidth=float("inf"), no_time_mux=False)
    c = CONFIG["cost"]
    cost = Cost(mac_op=c["mac_op"], mem_hier=tuple(c["mem_hier"]), noc_hop=c["noc_hop"], idl_unit=c["idl_unit"])
    network = import_network(net)
    start = time.perf_counter()
    tops, _ = NNDataflow(network, CONFIG["batch"], resource, cost, MapStrategyEyeriss).schedule_search(Option())
    elapsed = time.perf_counter() - start
    if not tops:
        raise RuntimeError(f"nn_dataflow found no schedule for {net}")
    layers = []
    for name in network:
        layer = network[name]
        if not isinstance(layer, ConvLayer):
            continue
        sr = tops[0][name]
        access = sr.scheme["access"]  # [level][datum], words
        layers.append({
            "name": name, "fc": type(layer).__name__ == "FCLayer",
            "C": layer.nifm, "M": layer.nofm, "H": layer.hifm, "W": layer.wifm, "R": layer.hfil, "S": layer.wfil,
            "E": layer.hofm, "F": layer.wofm, "U": layer.htrd,
            "macs": sr.total_ops, "cost": sr.total_cost,
            "access": {LEVELS[i]: {DATA[j]: access[i][j] for j in range(3)} for i in range(4)},
            "remote_gbuf_access": sum(sr.scheme["remote_gbuf_access"]),
            "noc_hops": sr.total_noc_hops,
            # the chosen loop blocking, to compare tilings layer by layer: blocking factors of the
            # channel (ti), filter (to) and batch (tb, E-folds merged into it) loops per level
            # (DRAM, GBUF, REGF), loop orders per level (position by loop, 0 = innermost), fetches
            # per level and datum, buffered words per level and datum, and the procpass unit sizes
            "blocking": {key: sr.scheme[key] for key in ("ti", "to", "tb", "orders", "fetch", "size", "unit_size")},
        })
    return {"net": net, "nn_dataflow_version": get_version(), "sympy_version": sympy.__version__, "seconds": elapsed,
            "layers": layers}


def write_reference(nets: list[str]) -> None:
    """Run nn_dataflow on ``nets`` and merge the results into :data:`REFERENCE`."""
    from dnnergy.io import atomic_write

    try:
        import nn_dataflow  # noqa: F401
    except ImportError:
        sys.stderr.write(INSTALL)
        raise SystemExit(2)
    data = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"config": CONFIG, "nets": {}}
    if data["config"] != CONFIG:
        raise SystemExit(f"{REFERENCE} was made with another configuration; move it away first")
    for net in nets:
        result = run_reference(net)
        print(f"{net}: {len(result['layers'])} conv/FC layers, {result['seconds']:.0f} s", flush=True)
        data["nets"][net] = result
        atomic_write(REFERENCE, json.dumps(data, indent=1) + "\n")  # a killed run keeps the nets written so far


# -- dnnergy side ---------------------------------------------------------------------------
def reference_hardware(psums_in_rf: bool = True):
    """dnnergy's :class:`Hardware` for :data:`CONFIG`, nn_dataflow's resource and costs: the Eyeriss
    array and buffer, but ONE register file of ``size_regf_words`` shared by filter, ifmap and psum
    words (``PEArray.shared_rf_words``), where the ``eyeriss`` preset has 224/12/24-word scratchpads.

    ``psums_in_rf=False`` expresses nn_dataflow's psum accounting as hardware: its REGF holds one
    psum word per filter (``MapStrategyEyeriss``) while its channel loops keep a pass's whole row of
    psums in the PE, so psums take no RF room and never run out of it. Here: filter and ifmap words
    up to ``size_regf_words`` each and :data:`UNBOUNDED_PSUM_WORDS` psum words per PE."""
    from dnnergy.hardware import hardware_from_dict

    words, bits = CONFIG["size_regf_words"], CONFIG["word_bits"]
    pe_array = {"rows": CONFIG["dim_array"][0], "cols": CONFIG["dim_array"][1], "filter_words": words,
                "ifmap_words": words, "psum_words": words, "shared_rf_words": words}
    if not psums_in_rf:
        pe_array |= {"psum_words": UNBOUNDED_PSUM_WORDS, "shared_rf_words": None}
    dram, gbuf, array, regf = CONFIG["cost"]["mem_hier"]
    return hardware_from_dict({
        "name": "nn_dataflow_isscc16", "unit": "MAC-normalized", "word_bits": bits,
        "levels": [{"name": "DRAM", "kind": "dram", "energy": dram, "ref_bits": bits},
                   {"name": "GBUF", "kind": "buffer", "energy": gbuf, "ref_bits": bits,
                    "capacity_bytes": CONFIG["size_gbuf_words"] * bits // 8},
                   {"name": "ITCN", "kind": "array", "energy": array, "ref_bits": bits},
                   {"name": "REGF", "kind": "rf", "energy": regf, "ref_bits": bits, "capacity_bytes": words * bits // 8,
                    "per_pe": True}],
        "mac": {"format": "int16", "formats": {"int16": {"bits": bits, "mult": 0.935 * CONFIG["cost"]["mac_op"],
                                                         "add": 0.065 * CONFIG["cost"]["mac_op"]}}},
        "pe_array": {k: v for k, v in pe_array.items() if v is not None},
    }, "nn_dataflow CONFIG")


def dnnergy_layer(layer: dict):
    """The dnnergy :class:`Layer` of one reference layer: nn_dataflow's ifmap sizes include the
    padding, so no padding here; FC layers are flattened to C*R*S inputs, as dnnergy traces them."""
    from dnnergy.workload import Layer, OpKind

    n = CONFIG["batch"]
    if layer["fc"]:
        C = layer["C"] * layer["R"] * layer["S"]
        return Layer(layer["name"], OpKind.FC, "linear", N=n, C=C, M=layer["M"], macs=n * C * layer["M"])
    U, macs = layer["U"], n * layer["M"] * layer["C"] * layer["R"] * layer["S"] * layer["E"] * layer["F"]
    return Layer(layer["name"], OpKind.CONV, "conv2d", N=n, C=layer["C"], M=layer["M"], H=layer["H"], W=layer["W"],
                 R=layer["R"], S=layer["S"], E=layer["E"], F=layer["F"], stride=(U, U), macs=macs)


def compare_net(result: dict, dataflows: tuple[str, ...], hw=None) -> dict[str, tuple[float, float, float, dict[str, float]]]:
    """(energy per MAC, DRAM share of energy, seconds, energy per MAC by level) of one net:
    nn_dataflow's and dnnergy's per dataflow, on ``hw`` (default the ``eyeriss`` preset; see
    :func:`reference_hardware` for nn_dataflow's shared register file).

    Energy is MAC-normalized (MAC 1, RF 1, array 2, buffer 6, DRAM 200 per 16-bit word) and
    covers the conv and FC layers; dnnergy's time is a cold run (mapping caches cleared).
    """
    from dnnergy.energy import get_dataflow
    from dnnergy.energy.row_stationary import RowStationary, level_energies, rs_energy
    from dnnergy.hardware import LevelKind, load_hardware

    hw = hw or load_hardware("eyeriss")
    energies = level_energies(hw)
    layers = [dnnergy_layer(layer) for layer in result["layers"]]
    macs = sum(layer["macs"] for layer in result["layers"])
    if abs(macs / sum(layer.macs for layer in layers) - 1) > 1e-9:
        raise RuntimeError(f"{result['net']}: nn_dataflow and dnnergy count different MACs")
    ref_total = sum(layer["cost"] for layer in result["layers"])
    ref_levels = {level: price * sum(sum(layer["access"][level].values()) for layer in result["layers"]) / macs
                  for level, price in zip(LEVELS, CONFIG["cost"]["mem_hier"])}
    rows = {"nn_dataflow": (ref_total / macs, ref_levels["DRAM"] * macs / ref_total, result["seconds"], ref_levels)}
    kinds = dict(zip(LEVELS, (LevelKind.DRAM, LevelKind.BUFFER, LevelKind.ARRAY, LevelKind.RF)))
    for name in dataflows:
        flow = RowStationary(tiles="divisors") if name == "row_stationary:divisors" else get_dataflow(name)
        flow.cache_clear()
        start = time.perf_counter()
        counts = [flow.accesses(layer, hw).accesses for layer in layers]
        seconds = time.perf_counter() - start
        total = macs * CONFIG["cost"]["mac_op"] + sum(float(rs_energy(c, energies)) for c in counts)
        levels = {level: sum(float(v) for c in counts for (_, k), v in c.items() if k is kind) * energies[kind] / macs
                  for level, kind in kinds.items()}
        rows[flow.name] = (total / macs, levels["DRAM"] * macs / total, seconds, levels)
    return rows


def meets(ratio: float, points: float) -> str:
    """Which targets (:data:`TARGETS`) an energy-per-MAC ratio and a DRAM-share difference meet."""
    missed = [what for what, ok in (("energy/MAC", abs(ratio - 1) <= TARGETS[0]), ("DRAM share", abs(points) <= TARGETS[1]))
              if not ok]
    return "yes" if not missed else "no (" + ", ".join(missed) + ")"


def table(nets: list[str], dataflows: tuple[str, ...]) -> str:
    """The comparison as a markdown table (one row per net and dnnergy dataflow), the energy per MAC
    by level, and per dataflow which nets meet the targets."""
    data = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {"nets": {}}
    missing = [net for net in nets if net not in data["nets"]]
    if missing:
        raise SystemExit(f"{REFERENCE.name} has no results for {', '.join(missing)}.\n" + INSTALL)
    levels = ["| net | tool | " + " | ".join(f"{level} /MAC" for level in LEVELS) + " |", "|" + "---|" * 6]
    header = ("| net | dnnergy dataflow | energy/MAC nn_dataflow | energy/MAC dnnergy | ratio "
              "| DRAM share nn_dataflow | DRAM share dnnergy | difference (points) | time nn_dataflow (s) "
              "| time dnnergy (s) | speed-up | meets targets |")
    lines, verdicts = [header, "|" + "---|" * 12], {}
    for net in nets:
        rows = compare_net(data["nets"][net], dataflows)
        analytic = tuple(d for d in dataflows if "search" not in d)
        for suffix, hw in ((SHARED_RF, reference_hardware()), (PSUMS_OUTSIDE, reference_hardware(psums_in_rf=False))):
            rows |= {name + suffix: row for name, row in compare_net(data["nets"][net], analytic, hw).items() if name != "nn_dataflow"}
        ref = rows.pop("nn_dataflow")
        levels += [f"| {net} | {name} | " + " | ".join(f"{row[3][level]:.2f}" for level in LEVELS) + " |"
                   for name, row in (("nn_dataflow", ref), *((n, r) for n, r in rows.items() if n.startswith("row_stationary")
                                                              and "search" not in n))]
        for name, (e, dram, seconds, _) in rows.items():
            verdict = meets(e / ref[0], 100 * (dram - ref[1]))
            verdicts.setdefault(name, []).append(f"{net} {verdict}")
            lines.append(f"| {net} | {name} | {ref[0]:.2f} | {e:.2f} | {e / ref[0]:.3f} | {100 * ref[1]:.1f}% "
                         f"| {100 * dram:.1f}% | {100 * (dram - ref[1]):+.1f} | {ref[2]:.0f} | {seconds:.3f} "
                         f"| {ref[2] / seconds:,.0f}x | {verdict} |")
    summary = [f"- {name}: {'meets both targets on every net' if all(v.endswith(' yes') for v in found) else 'misses'}"
               f" ({'; '.join(found)})" for name, found in verdicts.items()]
    return ("\n".join(lines) + f"\n\nTargets: energy per MAC within {100 * TARGETS[0]:.0f}% of nn_dataflow's, DRAM share "
            f"within {TARGETS[1]:.0f} points.\n\n" + "\n".join(summary)
            + "\n\nEnergy per MAC by level (the MAC itself is 1 in both):\n\n" + "\n".join(levels))


def reference_tile(layer: dict) -> tuple[int, int]:
    """(filters, channels) in nn_dataflow's global-buffer tile: a processing pass holds
    ceil(M / loop count) filters (the loop count is the product of the blocking factors, which
    nn_dataflow makes multiply *exactly* to it), and the tile holds the GBUF x REGF factors of passes."""
    b = layer["blocking"]
    per_pass = [-(-total // (t[0] * t[1] * t[2])) for total, t in ((layer["M"], b["to"]), (layer["C"], b["ti"]))]
    return per_pass[0] * b["to"][1] * b["to"][2], per_pass[1] * b["ti"][1] * b["ti"][2]


def drill_down(net: str, result: dict, worst: int = 4) -> tuple[str, float]:
    """The ``worst`` conv layers of ``net`` by |DRAM energy difference|: DRAM words per MAC by
    datum in both tools, the filters per buffer tile each chose, ifmap DRAM fetches per ifmap word,
    dnnergy's ifmap DRAM count under nn_dataflow's filter tile (same accounting check), and the
    filters per tile and ifmap DRAM count of dnnergy's divisor-tile policy. Also returns dnnergy's DRAM share if those layers used nn_dataflow's filter tiles."""
    from dataclasses import replace

    from dnnergy.energy.row_stationary import (
        EYERISS_ARRAY, buffer_capacity_words, conv_shape, default_mapping, fits, level_energies, rs_counts, rs_energy)
    from dnnergy.hardware import LevelKind, load_hardware
    from dnnergy.workload import Datum

    hw = load_hardware("eyeriss")
    array, capacity, energies = hw.pe_array or EYERISS_ARRAY, buffer_capacity_words(hw), level_energies(hw)
    dram_price, macs_all = CONFIG["cost"]["mem_hier"][0], sum(layer["macs"] for layer in result["layers"])
    rows, total, dram_total = [], 0.0, 0.0
    for layer in result["layers"]:
        s = conv_shape(dnnergy_layer(layer))
        m = default_mapping(s, array, capacity, energies)
        counts = rs_counts(s, m, array)
        energy, dram = float(rs_energy(counts, energies)), float(sum(v for (_, k), v in counts.items() if k is LevelKind.DRAM))
        total, dram_total = total + energy, dram_total + dram
        if layer["fc"]:
            continue
        ours = {d.value: float(counts[(d, LevelKind.DRAM)]) for d in (Datum.WEIGHT, Datum.IFMAP, Datum.OFMAP)}
        diff = dram_price * (dram - sum(layer["access"]["DRAM"].values()))
        rows.append((abs(diff), layer, s, m, ours, energy, dram))
    rows.sort(key=lambda row: -row[0])
    lines = ["| net | layer | C -> M, E x F, R | DRAM words/MAC nn_dataflow (w/i/o) | dnnergy (w/i/o) "
             "| filters per buffer tile nn_dataflow (`to`) | dnnergy m_b | ifmap DRAM fetches per word nn_dataflow "
             "| dnnergy | dnnergy with nn_dataflow's filter tile / nn_dataflow (ifmap DRAM) "
             "| divisor tiles: m_b | divisor tiles: ifmap DRAM / nn_dataflow |", "|" + "---|" * 12]
    swapped_total, swapped_dram = total, dram_total
    for _, layer, s, m, ours, energy, dram in rows[:worst]:
        ref, macs = layer["access"]["DRAM"], layer["macs"]
        unique = layer["C"] * layer["H"] * layer["W"]
        filters, _ = reference_tile(layer)
        p = min(m.p, filters)
        theirs = replace(m, m_b=filters, p=p, t=max(1, min(m.t, filters // p)))
        alt = rs_counts(s, theirs, array)
        same_order = layer["blocking"]["orders"][0][1] > layer["blocking"]["orders"][0][0] and m.order[-1] == "C"
        check = f"{float(alt[(Datum.IFMAP, LevelKind.DRAM)]) / ref['ifmap']:.3f}" if same_order else "n/a (other DRAM order)"
        exact = default_mapping(s, array, capacity, energies, "divisors")
        exact_ifmap = float(rs_counts(s, exact, array)[(Datum.IFMAP, LevelKind.DRAM)]) / ref["ifmap"]
        if same_order and fits(s, theirs, array, capacity):
            swapped_total += float(rs_energy(alt, energies)) - energy
            swapped_dram += float(sum(v for (_, k), v in alt.items() if k is LevelKind.DRAM)) - dram
        lines.append(f"| {net} | {layer['name']} | {layer['C']} -> {layer['M']}, {layer['E']} x {layer['F']}, {layer['R']} "
                     f"| {'/'.join(f'{ref[d] / macs:.4f}' for d in DATA)} | {'/'.join(f'{ours[d] / macs:.4f}' for d in DATA)} "
                     f"| {filters} ({'x'.join(map(str, layer['blocking']['to']))}) | {m.m_b} "
                     f"| {ref['ifmap'] / unique:.1f} | {ours['ifmap'] / unique:.1f} | {check} | {exact.m_b} | {exact_ifmap:.3f} |")
    share = dram_price * swapped_dram / (swapped_total + macs_all * CONFIG["cost"]["mac_op"])
    return "\n".join(lines), share


def drill_downs(nets: list[str]) -> str:
    """Per-layer drill-down (:func:`drill_down`) of ``nets`` as markdown."""
    data = json.loads(REFERENCE.read_text())
    tables, notes = [], []
    for net in nets:
        text, share = drill_down(net, data["nets"][net])
        tables.append(text if not tables else text.split("\n", 2)[2])
        notes.append(f"{net}: {100 * share:.1f}%")
    return ("Worst conv layers by DRAM energy difference (words per MAC; an ifmap word is fetched once when the "
            "ifmap fits the buffer tile):\n\n" + "\n".join(tables) + "\n\ndnnergy's DRAM share if these layers used "
            "nn_dataflow's filter tiles (same pass, same accounting): " + "; ".join(notes) + ".")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", nargs="+", metavar="NET", choices=NETS,
                    help="run nn_dataflow on these nets and cache them in nn_dataflow_reference.json")
    ap.add_argument("--quick", action="store_true",
                    help="AlexNet only, analytic row_stationary only (both tile policies); writes only with an explicit --out")
    ap.add_argument("--no-write", action="store_true", help="print the table only (do not update results.md)")
    ap.add_argument("--out", type=Path, default=None,
                    help="the results file whose 'nn_dataflow comparison' section is replaced (default benchmarks/results.md)")
    args = ap.parse_args(argv)
    if args.reference:
        write_reference(args.reference)
        return 0
    try:
        import dnnergy  # noqa: F401
    except ImportError:
        raise SystemExit("the comparison needs dnnergy (pip install -e .); nn_dataflow's side is cached in " + REFERENCE.name)
    start = time.perf_counter()
    nets, dataflows = (["alex_net"], DATAFLOWS[:2]) if args.quick else (list(NETS), DATAFLOWS)
    text = table(nets, dataflows)
    if not args.quick:  # the per-layer drill-down needs the blocking data of a regenerated reference
        text += "\n\n" + drill_downs(nets)
    print(text)
    if not args.no_write and (not args.quick or args.out is not None):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _results import RESULTS, run_line, write_section

        config = json.loads(REFERENCE.read_text())["config"]
        body = (run_line("nn_dataflow_compare.py", argv if argv is not None else sys.argv[1:], time.perf_counter() - start)
                + f" nn_dataflow 2.1 results cached in benchmarks/{REFERENCE.name}; configuration: {json.dumps(config)}. "
                "Energy is MAC-normalized and covers the conv and FC layers of nn_dataflow's own network definitions; "
                "dnnergy's time is a cold run (mapping caches cleared).\n\n" + text)
        write_section("nn_dataflow comparison", body, args.out or RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

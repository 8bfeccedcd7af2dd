"""Low-rank decomposition (issue 12): energy, MACs and CPU latency against rank, and against structured pruning.

For each model (LeNet-5 on ``--data``, pretrained; Caffe's cifar10_quick trained briefly on a
CIFAR-shaped synthetic task, ``load_dataset("synthetic", shape=(3, 32, 32))``, since no CIFAR
data ships): the method ``lowrank`` at each ``--keeps`` fraction with Tucker-2 and with CP
for the convs (SVD for the FC layers), each fine-tuned ``--ft-epochs``; and the method
``structured`` (L1 filters, one ratio for every layer) at the ratio whose energy is closest
to each low-rank model's, fine-tuned the same way. Reports validation and test accuracy,
weights, MACs, the energy of one image (eyeriss, row stationary, batch 1, densities on 32
validation images), the share of that energy spent moving feature maps (ifmap + ofmap),
and the median batch-1 CPU latency. A per-layer table (keep 0.9, Tucker-2) shows where the
decomposition cuts MACs and where its intermediate feature maps add traffic (the first conv decomposition
at the keep closest to 0.9). Prints the
tables and writes them as the "Low-rank decomposition" section of ``benchmarks/results.md``.

    python benchmarks/lowrank.py [--models lenet5,cifar10_quick] [--data mnist] [--keeps 0.95,0.9,0.8,0.6]
                                 [--convs tucker2,cp] [--ft-epochs 1] [--out FILE] [--quick]

``--quick`` runs a tiny CNN on scikit-learn's digits with two keeps (for the test suite).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dnnergy.compress import CompressionContext, Record, run
from dnnergy.data import Dataset, load_dataset
from dnnergy.metrics import energy_objective, model_latency
from dnnergy.train import FINE_TUNE, RECIPES, TrainConfig, pretrained, train_cached
from dnnergy.zoo import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish, run_line, standard_error_note

SECTION = "Low-rank decomposition"
RATIOS = tuple(round(0.1 * i, 1) for i in range(1, 10))  # structured: 10 % .. 90 % of every group's channels
QUICK_RATIOS = (0.25, 0.5, 0.75)
#: Models without a pretraining recipe for their data: trained here once and cached.
FALLBACK = {"cifar10_quick": TrainConfig(epochs=8, lr=1e-3, batch_size=64), "cnn": TrainConfig(epochs=8, lr=3e-3, batch_size=32)}


def tiny_cnn() -> nn.Module:
    """conv 3x3 (8) - pool - conv 3x3 (16) - pool - fc 64-32-10 for 8x8 digits (--quick)."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def model_and_data(name: str, data_name: str) -> tuple[nn.Module, Dataset]:
    """The trained model and its data: LeNet-5 pretrained on ``data_name``, cifar10_quick on a CIFAR-shaped synthetic
    task, or (--quick) the tiny CNN on digits."""
    if name == "cnn":
        data = load_dataset("digits")
        return train_cached("lowrank_quick_cnn", tiny_cnn, data, FALLBACK["cnn"]), data
    if name == "cifar10_quick":
        data = load_dataset("synthetic", n=2000, shape=(3, 32, 32))
        return train_cached(name, lambda: create_model(name), data, FALLBACK[name]), data
    data = load_dataset(data_name)
    if (name, data_name) in RECIPES:
        return pretrained(name, data_name), data
    return train_cached(name, lambda: create_model(name), data, RECIPES[(name, "mnist")]), data


@dataclass(frozen=True, slots=True)
class Line:
    """One row: what ran, its setting, its record's after-Point numbers, feature-map energy share and latency."""

    method: str
    setting: str
    detail: str
    val: float
    test: float
    weights: int
    macs: int
    energy: float
    fmap_share: float
    latency_ms: float


def fmap_share(context: CompressionContext, model: nn.Module) -> float:
    """Fraction of the model's energy spent reading input and writing output feature maps (ifmap + ofmap)."""
    by_datum = context.energy.report(model).by_datum()
    return (by_datum["ifmap"] + by_datum["ofmap"]) / sum(by_datum.values())


def line(method: str, setting: str, detail: str, record: Record, model: nn.Module, context: CompressionContext,
         example: torch.Tensor) -> Line:
    p = record.after
    return Line(method, setting, detail, p.val_accuracy, p.test_accuracy, p.weights, p.macs, p.energy,
                fmap_share(context, model), 1e3 * model_latency(model, example, repeats=50, warmup=5))


def ranks_text(record: Record) -> str:
    return ", ".join(f"{path} {'x'.join(map(str, v['ranks']))}" for path, v in record.info["layers"].items()) or "none"


def layer_table(record: Record) -> str:
    head = "| layer | factors | ranks | kept | weights | MACs | activation words | energy |"
    lines = [head, "|---|---|---|---:|---|---|---|---|"]
    for path, v in record.info["layers"].items():
        e = v["energy"]
        lines.append(f"| {path} | {v['kind']} | {'x'.join(map(str, v['ranks']))} | {v['kept']:.3f} "
                     f"| {v['weights'][0]:,} -> {v['weights'][1]:,} | {v['macs'][0]:,} -> {v['macs'][1]:,} "
                     f"| {v['activation_words'][0]:,} -> {v['activation_words'][1]:,} "
                     f"| {e[0]:.4g} -> {e[1]:.4g} |")
    for path, reason in record.info["skipped"].items():
        lines.append(f"| {path} | kept as is: {reason} | | | | | | |")
    before, after = record.info["energy_by_datum"]["before"], record.info["energy_by_datum"]["after"]
    fm = [d["ifmap"] + d["ofmap"] for d in (before, after)]
    return "\n".join(lines) + (
        f"\n\nWhole model: MACs {record.before.macs:,} -> {record.after.macs:,} ({record.after.macs / record.before.macs:.2f}x), "
        f"weight energy {before['weight']:.4g} -> {after['weight']:.4g}, feature-map (ifmap + ofmap) energy "
        f"{fm[0]:.4g} -> {fm[1]:.4g} ({fm[1] / fm[0]:.2f}x), compute {before['compute']:.4g} -> {after['compute']:.4g}; "
        f"total {record.before.energy:.4g} -> {record.after.energy:.4g} ({record.after.energy / record.before.energy:.2f}x).")


def table(base: Line, rows: list[Line]) -> str:
    head = ("| method | setting | ranks / channels | val acc | test acc | weights | MACs | energy/image | energy vs base "
            "| feature-map share | latency (ms) |")
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in [base, *rows]:
        lines.append(f"| {r.method} | {r.setting} | {r.detail} | {r.val:.3f} | {r.test:.3f} | {r.weights:,} | {r.macs:,} "
                     f"| {r.energy:.4g} | {r.energy / base.energy:.3f} | {r.fmap_share:.2f} | {r.latency_ms:.3f} |")
    return "\n".join(lines)


def run_model(name: str, data_name: str, keeps: list[float], convs: list[str], ratios: tuple[float, ...],
              ft_epochs: int, log: Callable[[str], None]) -> str:
    start = time.perf_counter()
    model, data = model_and_data(name, data_name)
    images = data.val.tensors[0][:32]
    context = CompressionContext(data, energy=energy_objective(images, "eyeriss", "row_stationary", per_image=True),
                                 max_accuracy_drop=None, fine_tuning=dataclasses.replace(FINE_TUNE, epochs=ft_epochs),
                                 example=images)
    x1 = images[:1]
    base_point = context.measure(model, label="base")
    base = Line("baseline", "-", "-", base_point.val_accuracy, base_point.test_accuracy, base_point.weights, base_point.macs,
                base_point.energy, fmap_share(context, model), 1e3 * model_latency(model, x1, repeats=50, warmup=5))
    log(f"[{name}] baseline test {base.test:.3f}, energy {base.energy:.4g}, {time.perf_counter() - start:.1f} s")
    untuned = context.replace(fine_tuning=None)
    energies = {}
    for ratio in ratios:  # structured pruning's energy at each ratio (energy does not depend on fine-tuning)
        energies[ratio] = run(model, "structured", untuned, ratio=ratio).record.after.energy
    rows, structured_rows, per_layer = [], {}, ""
    shown = min(keeps, key=lambda k: abs(k - 0.9))  # the setting whose per-layer table is shown
    for conv in convs:
        for keep in keeps:
            t0 = time.perf_counter()
            result = run(model, "lowrank", context, keep=keep, conv=conv)
            rows.append(line("lowrank", f"{conv}, keep {keep:g}", ranks_text(result.record), result.record, result.model,
                             context, x1))
            if conv == convs[0] and keep == shown:
                per_layer = f"Per layer, lowrank {conv} at keep {keep:g} (fine-tuned):\n\n" + layer_table(result.record)
            ratio = min(ratios, key=lambda r: abs(energies[r] - result.record.after.energy))
            if ratio not in structured_rows:
                pruned = run(model, "structured", context, ratio=ratio)
                removed = sum(pruned.record.info["removed"].values())
                structured_rows[ratio] = line("structured (L1)", f"ratio {ratio:g}", f"{removed} removed", pruned.record,
                                              pruned.model, context, x1)
            log(f"[{name}] lowrank {conv} keep {keep:g}: test {rows[-1].test:.3f}, energy x{rows[-1].energy / base.energy:.3f};"
                f" structured ratio {ratio:g}: test {structured_rows[ratio].test:.3f}, energy "
                f"x{structured_rows[ratio].energy / base.energy:.3f} ({time.perf_counter() - t0:.1f} s)")
    rows += sorted(structured_rows.values(), key=lambda r: -r.energy)
    return (f"### {name} on {data.name}\n\n" + table(base, rows) + "\n\n"
            + standard_error_note({data.name: len(data.test)}) + "\n\n" + per_layer
            + f"\n\n({time.perf_counter() - start:.0f} s for this model.)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="comma-separated (default lenet5,cifar10_quick; cnn with --quick)")
    parser.add_argument("--data", default="mnist", help="data set of LeNet-5 (mnist or fashion-mnist)")
    parser.add_argument("--keeps", default=None, help="comma-separated keep fractions (default 0.95,0.9,0.8,0.6)")
    parser.add_argument("--convs", default="tucker2,cp", help="conv decompositions: tucker2, cp")
    parser.add_argument("--ft-epochs", type=int, default=1, help="fine-tuning epochs after each compression")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="a tiny CNN on digits (seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = (args.models or ("cnn" if args.quick else "lenet5,cifar10_quick")).split(",")
    keeps = [float(k) for k in (args.keeps or ("0.9,0.6" if args.quick else "0.95,0.9,0.8,0.6")).split(",")]
    ratios = QUICK_RATIOS if args.quick else RATIOS
    start = time.perf_counter()
    blocks = [run_model(m, args.data, keeps, args.convs.split(","), ratios, args.ft_epochs,
                        lambda msg: print(msg, file=sys.stderr, flush=True)) for m in models]
    header = (run_line("lowrank.py", argv if argv is not None else sys.argv[1:], time.perf_counter() - start) + " "
              "Energy: one image at batch 1 on eyeriss / row stationary (MAC-normalized), densities on 32 "
              "validation images; feature-map share = (ifmap + ofmap energy) / total; latency: median of 50 batch-1 "
              "forward passes on this CPU. Structured pruning (L1, one ratio for every layer) is run at the ratio of "
              f"the grid {ratios[0]:g}..{ratios[-1]:g} whose energy is closest to each low-rank model's.")
    text = header + "\n\n" + "\n\n".join(blocks)
    publish(SECTION, text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

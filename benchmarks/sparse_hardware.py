"""Sparse-weight hardware (issue 11): energy of magnitude-pruned LeNets on eyeriss, eyeriss_v2 and horowitz45.

For each model and data set: the cached pretrained weights (``dnnergy.train.pretrained``),
and a copy whose every weight tensor is magnitude-pruned to ``--density`` (no
fine-tuning: energy only). Both are profiled on the first ``--samples`` test images
(measured weight and activation sparsity, exact coded sizes) and priced by
``estimate`` (``row_stationary``, default options) on each preset. The table gives the
totals, the reduction, and the weight energy per memory level, dense -> pruned: on
``eyeriss`` and ``horowitz45`` only DRAM weight traffic is coded, on ``eyeriss_v2``
weights are CSC on every on-chip level and zeros are skipped (docs/sparse-hardware.md).

    python benchmarks/sparse_hardware.py [--models lenet300,lenet5] [--data mnist,fashion-mnist]
                                         [--density 0.1] [--samples 1] [--out benchmarks/results.md] [--quick]

``--quick`` uses untrained networks on random inputs (for the test suite, seconds).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import sys
import time
from pathlib import Path

import torch

from dnnergy.compress.magnitude import magnitude_prune
from dnnergy.energy import estimate, profile
from dnnergy.train import pretrained
from dnnergy.zoo import create_model, model_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish  # noqa: E402

SECTION = "Sparse-weight hardware"
PRESETS = ("eyeriss", "eyeriss_v2", "horowitz45")


def weight_by_level(report) -> dict[str, float]:
    """Weight energy per memory level (hardware unit)."""
    return {level: e for (datum, level), e in report.by_datum_and_level().items() if datum == "weight"}


def rows(name: str, dense_wl, pruned_wl) -> list[list[str]]:
    """One table row per preset: totals, reduction, and each weight level dense -> pruned (x reduction)."""
    out = []
    for hw in PRESETS:
        dense, pruned = estimate(dense_wl, hw), estimate(pruned_wl, hw)
        d, p = weight_by_level(dense), weight_by_level(pruned)
        levels = "; ".join(f"{lvl} {d[lvl]:.3g} -> {p[lvl]:.3g} (x{d[lvl] / p[lvl]:.2f})" for lvl in d)
        out.append([name, hw, dense.unit, f"{dense.total:.4g}", f"{pruned.total:.4g}", f"x{dense.total / pruned.total:.2f}", levels])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lenet300,lenet5", help="comma-separated zoo models with a pretraining recipe")
    parser.add_argument("--data", default="mnist", help="comma-separated data sets: mnist, fashion-mnist")
    parser.add_argument("--density", type=float, default=0.1, help="weight density left by pruning (default 0.1)")
    parser.add_argument("--samples", type=int, default=1, help="test images profiled, i.e. the batch (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file whose section is replaced")
    parser.add_argument("--quick", action="store_true", help="untrained networks on random inputs (test suite)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "python benchmarks/sparse_hardware.py " + " ".join(argv if argv is not None else sys.argv[1:])
    start = time.perf_counter()
    table = []
    for data_name in ["random"] if args.quick else args.data.split(","):
        for name in args.models.split(","):
            if args.quick:
                torch.manual_seed(0)
                model, batch = create_model(name).eval(), torch.rand(args.samples, *model_info(name).input_shape[1:])
            else:
                model, batch = pretrained(name, data_name), data_name
            pruned = copy.deepcopy(model)
            magnitude_prune(pruned, 1.0 - args.density)
            workloads = [profile(m, batch, samples=args.samples, name=name) for m in (model, pruned)]
            table += rows(f"{name} ({data_name})", *workloads)
    columns = ("model", "hardware", "unit", "dense", "pruned", "reduction", "weight energy per level, dense -> pruned")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + ["| " + " | ".join(r) + " |" for r in table]
    body = "\n\n".join([
        f"`{command.strip()}` on {datetime.date.today().isoformat()}: {time.perf_counter() - start:.0f} s wall-clock. "
        f"Every weight tensor magnitude-pruned to {args.density:g} density (no fine-tuning), {args.samples} test "
        "image(s) profiled, `row_stationary`, default options (eyeriss/horowitz45: zero gating, DRAM run-length "
        "coded; eyeriss_v2: CSC weights and iacts on chip, zeros skipped).",
        "\n".join(lines),
    ])
    publish(SECTION, body, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Feature-map coding on real images (issue 10): Eyeriss RLC, zero-flag and delta codes against the entropy bound.

For each pretrained model and data set, every MAC layer's input feature map over the
first ``--samples`` test images is quantized to ``--bits``-bit dynamic fixed point and
really encoded (:func:`dnnergy.coding.fmap.measure_fmaps`): raw, Eyeriss run-length
(three 5-bit-run + level pairs per word), zero-flag (seed 001: 1 bit per zero, 1 + bits
per value) and delta (row-wise differences, then RLC) sizes in bytes, next to the
order-0 empirical entropy bound of the values and of their deltas. ``est.=enc.`` says
whether the estimator's ``"rlc"`` DRAM code, fed the profiled zero-run statistics,
charges exactly the encoder's bits. Seed 001 (Chen et al., ISSCC 2016): "simple RLC
within 5-10% of the theoretical entropy limit" on AlexNet conv layers.

    python benchmarks/fmap_coding.py [--models lenet5,lenet300] [--data mnist,fashion-mnist]
                                     [--samples 64] [--bits 16,8] [--out benchmarks/results.md] [--quick]

Writes one section per data set ("Feature-map coding", "Feature-map coding on
Fashion-MNIST"). ``--quick`` codes two tiny untrained networks on 16 scikit-learn digits
(for the test suite, seconds).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

from dnnergy.coding.fmap import FmapCoding, measure_fmaps
from dnnergy.data import load_dataset
from dnnergy.train import pretrained

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish  # noqa: E402

SECTION = "Feature-map coding"
COLUMNS = ("layer", "map shape", "density", "raw B", "RLC B", "zero-flag B", "delta B", "entropy B",
           "delta entropy B", "RLC/entropy", "zero-flag/entropy", "est.=enc.")


def quick_model(name: str) -> nn.Module:
    """Tiny untrained networks for digits (1 x 8 x 8): ``mlp`` and ``cnn``, seeded."""
    torch.manual_seed(0)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 10)).eval()


def _row(r: FmapCoding) -> list[str]:
    def nbytes(bits: float) -> str:
        return f"{-(-int(bits) // 8):,}"

    def entropy(bits: float) -> str:
        return f"{bits / 8:,.0f}"

    return [r.layer, "x".join(map(str, r.shape)), f"{r.density:.3f}", nbytes(r.raw_bits), nbytes(r.rlc_bits),
            nbytes(r.zero_flag_bits), nbytes(r.delta_bits), entropy(r.entropy_bits), entropy(r.delta_entropy_bits),
            f"{r.rlc_over_entropy:.2f}", f"{r.zero_flag_bits / r.entropy_bits:.2f}" if r.entropy_bits else "inf",
            "yes" if r.estimate_bits == r.rlc_bits else f"no ({r.estimate_bits / 8:,.0f} B)"]


def table(records: list[FmapCoding]) -> str:
    """A markdown table: one row per layer, then the whole network."""
    rows = [_row(r) for r in records]
    total = {f: sum(getattr(r, f) for r in records) for f in ("raw_bits", "rlc_bits", "zero_flag_bits", "delta_bits",
                                                              "entropy_bits", "delta_entropy_bits")}
    nonzeros, numel = sum(r.nonzeros for r in records), sum(r.numel for r in records)
    rows.append(["**all**", f"{numel:,} values", f"{nonzeros / numel:.3f}",
                 *(f"{-(-int(total[f]) // 8):,}" for f in ("raw_bits", "rlc_bits", "zero_flag_bits", "delta_bits")),
                 f"{total['entropy_bits'] / 8:,.0f}", f"{total['delta_entropy_bits'] / 8:,.0f}",
                 f"{total['rlc_bits'] / total['entropy_bits']:.2f}", f"{total['zero_flag_bits'] / total['entropy_bits']:.2f}",
                 ""])
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=None, help="comma-separated: lenet5,lenet300 (default), or mlp,cnn with --quick")
    parser.add_argument("--data", default="mnist", help="comma-separated data sets: mnist, fashion-mnist (--quick: digits)")
    parser.add_argument("--samples", type=int, default=64, help="test images per batch (default 64)")
    parser.add_argument("--bits", default="16", help="comma-separated activation widths (default 16, Eyeriss)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file whose sections are replaced")
    parser.add_argument("--quick", action="store_true", help="tiny untrained networks on 16 digits (test suite)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = (args.models or ("mlp,cnn" if args.quick else "lenet5,lenet300")).split(",")
    datasets = ["digits"] if args.quick else args.data.split(",")
    samples = 16 if args.quick else args.samples
    widths = [int(b) for b in args.bits.split(",")]
    command = "python benchmarks/fmap_coding.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for data_name in datasets:
        start = time.perf_counter()
        data = load_dataset(data_name)
        images = data.split("test").tensors[0][:samples]
        parts = []
        for name in names:
            model = quick_model(name) if args.quick else pretrained(name, data_name)
            for bits in widths:
                records = measure_fmaps(model, images, bits=bits)
                parts.append(f"### {name} on {data.name}, {bits}-bit activations\n\n{table(records)}")
        section = SECTION if data.name in ("mnist", "digits") else f"{SECTION} on Fashion-MNIST"
        body = "\n\n".join([
            (f"`{command.strip()}` on {datetime.date.today().isoformat()}: {time.perf_counter() - start:.0f} s "
            f"wall-clock ({os.cpu_count()} CPU(s), shared; torch {torch.__version__}, Python "
            f"{platform.python_version()}). Input feature map of every MAC layer over the first {len(images)} "
            f"{data.name} test images, quantized to dynamic fixed point (Ristretto fractional length), coded for "
            "real by `dnnergy.coding`: bytes of each code, the order-0 entropy bound of the values and of their "
            "row-wise deltas (a memoryless code that knows the batch's value frequencies needs at least this), "
            "and coded / bound. est.=enc.: the estimator's `rlc` DRAM code on the profiled float statistics "
            "charges exactly the encoder's bits (no only when quantization rounds a non-zero to zero)."),
            *parts,
        ])
        publish(section, body, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak test (issue 14): many estimates and compression cycles in one process, memory and files flat.

Traces ``--workloads`` random small networks (seeded: conv, pool and linear stacks of
random widths, kernels, strides and input sizes) and estimates each on a random hardware
preset, dataflow and bitwidth; then runs ``--cycles`` prune / quantize cycles
(``magnitude`` then ``quantize`` through :func:`dnnergy.run`, no fine-tuning) on a small
MLP for scikit-learn's digits. Resident memory (MiB, from ``/proc/self/statm``) and open
file descriptors are sampled after 10, 40, 70 and 100 % of each phase: a leak shows as
steady growth; the dataflows' mapping caches grow too, but only up to their bound.

    python benchmarks/soak.py [--workloads 10000] [--cycles 100] [--quick] [--out PATH]

``--quick`` runs 60 workloads and 4 cycles (seconds, for the test suite). Linux only
(``/proc``). Prints the table and writes the "Soak" section of ``benchmarks/results.md``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dnnergy
from dnnergy.compress import CompressionContext
from dnnergy.data import load_dataset
from dnnergy.hardware import list_presets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish, run_line  # noqa: E402
from _tiny import TinyMLP  # noqa: E402

SECTION = "Soak"
#: Allowed growth of resident memory over the last 60 % of a phase, MiB.
RSS_TOLERANCE_MIB = 32.0


@dataclass(frozen=True)
class Sample:
    """Process state at one moment: resident memory (MiB) and open file descriptors."""

    rss_mib: float
    open_files: int

    @classmethod
    def now(cls) -> "Sample":
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        return cls(resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, len(os.listdir("/proc/self/fd")))


def random_network(rng: np.random.Generator) -> tuple[nn.Module, tuple[int, ...]]:
    """A random conv / pool / linear stack and its input shape (batch 1 or 2)."""
    channels, size = int(rng.integers(1, 5)), int(rng.integers(6, 33))
    input_shape = (int(rng.integers(1, 3)), channels, size, size)
    layers: list[nn.Module] = []
    for _ in range(int(rng.integers(1, 4))):
        kernel = int(rng.integers(1, min(5, size) + 1))
        stride = int(rng.integers(1, 3))
        width = int(rng.integers(2, 17))
        layers += [nn.Conv2d(channels, width, kernel, stride=stride, padding=kernel // 2), nn.ReLU()]
        channels, size = width, (size + 2 * (kernel // 2) - kernel) // stride + 1
        if size >= 4 and rng.random() < 0.5:
            layers.append(nn.MaxPool2d(2))
            size //= 2
    layers += [nn.Flatten(), nn.Linear(channels * size * size, int(rng.integers(2, 33)))]
    return nn.Sequential(*layers).eval(), input_shape


def mapping_cache_entries() -> int:
    """Entries in the dataflows' bounded mapping caches (row stationary and its search: 4,096 each)."""
    from dnnergy.energy import mapper, row_stationary

    return row_stationary._default_counts.cache_info().currsize + mapper._search_counts.cache_info().currsize


def checkpoints(count: int) -> set[int]:
    """The runs after which the state is sampled: the end of warm-up (a tenth), 40 %, 70 % and the end."""
    return {max(1, round(count * share)) for share in (0.1, 0.4, 0.7, 1.0)}


def estimate_phase(count: int, seed: int) -> tuple[list[Sample], int]:
    """Trace and estimate ``count`` random networks; the samples at :func:`checkpoints`, and the estimates made."""
    rng = np.random.default_rng(seed)
    presets, dataflows = list_presets(), dnnergy.energy.list_dataflows()
    samples, estimates, marks = [], 0, checkpoints(count)
    for index in range(count):
        model, shape = random_network(rng)
        try:
            workload = dnnergy.trace(model, shape)
        except dnnergy.errors.DnnergyError:
            workload = None  # a random input too small for its kernels: refused clearly, not a leak
        if workload is not None:
            bits = (int(rng.choice([4, 8, 16])), int(rng.choice([4, 8, 16])))
            report = dnnergy.estimate(workload, str(rng.choice(presets)), str(rng.choice(dataflows)), bits=bits)
            if not np.isfinite(report.total) or report.total < 0:
                raise AssertionError(f"workload {index}: energy {report.total}")
            estimates += 1
        if index + 1 in marks:
            samples.append(Sample.now())
    return samples, estimates


def compression_phase(cycles: int, seed: int) -> list[Sample]:
    """``cycles`` magnitude-prune then quantize runs on a digits MLP (no fine-tuning); the samples at :func:`checkpoints`."""
    torch.manual_seed(seed)
    data = load_dataset("digits")
    context = CompressionContext.build(data, hardware="eyeriss", fine_tuning=None, max_accuracy_drop=None)
    model, samples, marks = TinyMLP().eval(), [], checkpoints(cycles)
    for cycle in range(cycles):
        pruned = dnnergy.run(model, "magnitude", context, sparsity=0.5 + 0.4 * (cycle % 5) / 4).model
        dnnergy.run(pruned, "quantize", context, bits=4 + cycle % 5)
        if cycle + 1 in marks:
            samples.append(Sample.now())
    return samples


def table(rows: list[tuple[str, int, float, list[Sample]]]) -> str:
    """Markdown: per phase, its size, seconds, resident memory and open files at each checkpoint."""
    lines = ["| phase | runs | seconds | RSS at 10 / 40 / 70 / 100 % (MiB) | growth in the last 60 % (MiB) | "
             "open files at 10 / 100 % | flat |", "|---|---|---|---|---|---|---|"]
    for name, runs, seconds, samples in rows:
        growth = samples[-1].rss_mib - samples[-3].rss_mib if len(samples) >= 3 else samples[-1].rss_mib - samples[0].rss_mib
        flat = growth <= RSS_TOLERANCE_MIB and samples[-1].open_files <= samples[0].open_files
        lines.append(f"| {name} | {runs:,} | {seconds:.0f} | {' / '.join(f'{s.rss_mib:.0f}' for s in samples)} | "
                     f"{growth:+.1f} | {samples[0].open_files} / {samples[-1].open_files} | {'yes' if flat else '**no**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="60 workloads and 4 cycles")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.workloads, args.cycles = 60, 4
    torch.set_num_threads(1)
    began = time.perf_counter()
    estimate_samples, estimates = estimate_phase(args.workloads, args.seed)
    estimated = time.perf_counter()
    cache_entries = mapping_cache_entries()
    compress_samples = compression_phase(args.cycles, args.seed)
    finished = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    body = "\n\n".join([
        run_line("soak.py", sys.argv[1:] if argv is None else argv, finished - began),
        table([("trace + estimate random networks", estimates, estimated - began, estimate_samples),
               ("magnitude + quantize cycles", args.cycles, finished - estimated, compress_samples)]),
        f"Peak RSS of the process: {peak:.0f} MiB. \"flat\": resident memory grew by at most "
        f"{RSS_TOLERANCE_MIB:.0f} MiB from the 40 % checkpoint to the end and no file descriptor stayed open. "
        f"Part of the growth is the dataflows' mapping caches, bounded at 4,096 shapes each "
        f"({cache_entries:,} entries after the estimates). {args.workloads - estimates} of {args.workloads:,} "
        "random networks were refused with a DnnergyError (input smaller than a kernel) and not estimated.",
    ])
    publish(SECTION, body, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

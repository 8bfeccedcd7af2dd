"""How long counting a network takes: ``dnnergy.trace`` against fvcore and ptflops.

Counts ResNet-50 (zoo ``resnet50``, input ``(1, 3, 224, 224)``) with each counter, keeps
the best of ``--repeats`` runs (wall-clock seconds), prints the table and the
fvcore/dnnergy ratio (target: dnnergy at least 5x faster), and writes it as the
"Trace speed" section of ``benchmarks/results.md``, leaving the other sections alone.
``--quick`` counts LeNet-5 (one timed run), for the test suite.

    python benchmarks/trace_speed.py [--repeats 3] [--threads 1] [--quick] [--results PATH]
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info

import dnnergy
from dnnergy import zoo

SECTION = "Trace speed"
TARGET_SPEEDUP = 5.0
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS as DEFAULT_RESULTS, write_section  # noqa: E402


def best_time(run: Callable[[], int], repeats: int, prepare: Callable[[], object] | None = None) -> tuple[float, float, int]:
    """(first-call seconds, best of ``repeats`` further calls, the count ``run`` returned).

    The first call is timed apart: it pays one-off imports (``torch._dynamo`` for a
    dispatch mode, TorchScript for fvcore). ``prepare`` (untimed) runs before each call,
    e.g. to copy a model that a counter modifies.
    """
    times, count = [], 0
    for _ in range(repeats + 1):
        if prepare is not None:
            prepare()
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return times[0], min(times[1:]), count


def measure(model_name: str, repeats: int) -> dict:
    """Seconds and MAC counts of each counter on one zoo model at its published input shape."""
    model = zoo.create_model(model_name).eval()
    shape = zoo.model_info(model_name).input_shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    fresh: dict[str, torch.nn.Module] = {}

    def copy_model() -> None:  # ptflops leaves hooks and attributes behind: count a copy
        fresh["model"] = copy.deepcopy(model)

    def ptflops(backend: str) -> int:
        macs, _ = get_model_complexity_info(
            fresh["model"], tuple(shape[1:]), as_strings=False, print_per_layer_stat=False,
            backend=backend, ost=io.StringIO(),
        )
        return int(macs)

    counters = {
        "dnnergy.trace(compute=False)": (lambda: dnnergy.trace(model, x, compute=False).macs, None),
        "dnnergy.trace (real forward)": (lambda: dnnergy.trace(model, x).macs, None),
        "fvcore FlopCountAnalysis.total()": (
            lambda: int(FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()),
            None,
        ),
        "ptflops (pytorch backend)": (lambda: ptflops("pytorch"), copy_model),
        "ptflops (aten backend)": (lambda: ptflops("aten"), copy_model),
    }
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (run, prepare) in counters.items():
            first, seconds, macs = best_time(run, repeats, prepare)
            rows.append({"counter": name, "seconds": seconds, "first": first, "macs": macs})
    dnnergy_s = rows[0]["seconds"]
    fvcore_s = rows[2]["seconds"]
    return {
        "model": model_name,
        "shape": shape,
        "repeats": repeats,
        "rows": rows,
        "speedup_vs_fvcore": fvcore_s / dnnergy_s,
        "speedup_real_vs_fvcore": fvcore_s / rows[1]["seconds"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def render(result: dict) -> str:
    """The Markdown body of the section (no heading)."""
    lines = [
        f"Counting `{result['model']}` at input {tuple(result['shape'])}: best of {result['repeats']} run(s) after a "
        f"first call that is shown apart (it pays one-off imports), wall-clock seconds (`{result['command']}`; "
        f"torch {result['torch']}, {result['threads']} threads, Python {result['python']}, {result['machine']}).",
        "",
        "| counter | seconds (best) | x dnnergy | first call | MACs reported |",
        "|---|---:|---:|---:|---:|",
    ]
    base = result["rows"][0]["seconds"]
    for row in result["rows"]:
        lines.append(f"| {row['counter']} | {row['seconds']:.3f} | {row['seconds'] / base:.2f} | {row['first']:.3f} | {row['macs']:,} |")
    verdict = "meets" if result["speedup_vs_fvcore"] >= TARGET_SPEEDUP else "does NOT meet"
    lines += [
        "",
        f"dnnergy is **{result['speedup_vs_fvcore']:.2f}x** faster than fvcore with `compute=False` ({verdict} the "
        f"{TARGET_SPEEDUP:g}x target) and {result['speedup_real_vs_fvcore']:.2f}x with a real forward pass (the default, "
        "which data-dependent control flow needs; `compute=False` runs convolutions and matmuls on shapes only). "
        "The totals differ by convention, not by error: fvcore's `total()` adds BatchNorm and adaptive-pooling "
        "flops, ptflops adds bias additions (and, with the pytorch backend, BatchNorm, pooling and ReLU); "
        "their convolution and matrix-multiply counts equal dnnergy's MACs module by module "
        "(`tests/workload/test_peer_agreement.py`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per counter; the best is kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="count lenet5 with one timed run (for the test suite)")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: on a shared machine more threads make timings noisy)",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="Markdown file whose section to replace")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    model_name, repeats = ("lenet5", 1) if args.quick else ("resnet50", args.repeats)
    result = measure(model_name, repeats)
    result["command"] = " ".join(["python benchmarks/trace_speed.py", *(sys.argv[1:] if argv is None else argv)])
    body = render(result)
    print(f"## {SECTION}\n\n{body}")
    write_section(SECTION, body, args.results)
    print(f"wrote the '{SECTION}' section of {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

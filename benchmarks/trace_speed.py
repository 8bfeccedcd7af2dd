"""How long counting a network takes: ``dnnergy.trace`` against fvcore and ptflops.

Counts ResNet-50 (zoo ``resnet50``, input ``(1, 3, 224, 224)``) with each counter, keeps
the best of ``--repeats`` runs (wall-clock seconds; the counters take turns, one run each
per round, so a burst of load on a shared machine slows them alike), prints the table and the
fvcore/dnnergy ratio (target: dnnergy's default trace at least 10x faster), and writes it as the
"Trace speed" section of ``benchmarks/results.md``, leaving the other sections alone.
``--quick`` counts LeNet-5 (one timed run), for the test suite.

    python benchmarks/trace_speed.py [--repeats 3] [--threads 1] [--quick] [--out PATH]
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
TARGET_SPEEDUP = 10.0
DEFAULT = "dnnergy.trace (default: shapes only)"
FRESH = "dnnergy.trace (default), a new copy of the model each run"
REAL = "dnnergy.trace(compute=True) (real forward)"
FVCORE = "fvcore FlopCountAnalysis.total()"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS as DEFAULT_RESULTS, write_section  # noqa: E402


Counter = tuple[Callable[[], int], Callable[[], object] | None]  #: (run returning the count, untimed preparation or None)


def best_times(counters: list[Counter], repeats: int) -> list[tuple[float, float, int]]:
    """(first-call seconds, best of ``repeats`` further calls, the count ``run`` returned) of each counter.

    The first calls are timed apart: they pay one-off imports (``torch._dynamo`` for a
    dispatch mode, TorchScript for fvcore). Then ``repeats`` rounds call every counter once,
    in turn. ``prepare`` (untimed) runs before each call, e.g. to copy a model that a
    counter modifies.
    """
    times: list[list[float]] = [[] for _ in counters]
    counts = [0] * len(counters)
    for _ in range(repeats + 1):
        for i, (run, prepare) in enumerate(counters):
            if prepare is not None:
                prepare()
            start = time.perf_counter()
            counts[i] = run()
            times[i].append(time.perf_counter() - start)
    return [(ts[0], min(ts[1:]), count) for ts, count in zip(times, counts)]


def _shapes_only(workload: dnnergy.Workload) -> dnnergy.Workload:
    """The workload, after checking the default trace did not fall back to a real forward pass (it would time that)."""
    if workload.traced_with != "shapes":
        raise RuntimeError(f"{workload.name}: the default trace ran a real forward pass ({workload.trace_note})")
    return workload


def measure(model_name: str, repeats: int) -> dict:
    """Seconds and MAC counts of each counter on one zoo model at its published input shape."""
    model = zoo.create_model(model_name).eval()
    shape = zoo.model_info(model_name).input_shape
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    fresh: dict[str, torch.nn.Module] = {}

    def copy_model() -> None:  # a model object not counted before (ptflops also leaves hooks and attributes behind)
        fresh["model"] = copy.deepcopy(model)

    def ptflops(backend: str) -> int:
        macs, _ = get_model_complexity_info(
            fresh["model"], tuple(shape[1:]), as_strings=False, print_per_layer_stat=False,
            backend=backend, ost=io.StringIO(),
        )
        return int(macs)

    counters = {
        DEFAULT: (lambda: _shapes_only(dnnergy.trace(model, x)).macs, None),
        FRESH: (lambda: _shapes_only(dnnergy.trace(fresh["model"], x)).macs, copy_model),
        REAL: (lambda: dnnergy.trace(model, x, compute=True).macs, None),
        FVCORE: (
            lambda: int(FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()),
            None,
        ),
        "ptflops (pytorch backend)": (lambda: ptflops("pytorch"), copy_model),
        "ptflops (aten backend)": (lambda: ptflops("aten"), copy_model),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        timings = best_times(list(counters.values()), repeats)
    rows = [{"counter": name, "seconds": seconds, "first": first, "macs": macs}
            for name, (first, seconds, macs) in zip(counters, timings)]
    seconds = {row["counter"]: row["seconds"] for row in rows}
    return {
        "model": model_name,
        "shape": shape,
        "repeats": repeats,
        "rows": rows,
        "speedup_vs_fvcore": seconds[FVCORE] / seconds[DEFAULT],
        "speedup_fresh_vs_fvcore": seconds[FVCORE] / seconds[FRESH],
        "speedup_real_vs_fvcore": seconds[FVCORE] / seconds[REAL],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def render(result: dict) -> str:
    """The Markdown body of the section (no heading)."""
    lines = [
        f"Counting `{result['model']}` at input {tuple(result['shape'])}: best of {result['repeats']} run(s) after a "
        f"first call that is shown apart (it pays one-off imports), wall-clock seconds; the counters take turns, "
        f"one run each per round (`{result['command']}`; "
        f"torch {result['torch']}, {result['threads']} threads, Python {result['python']}, {result['machine']}).",
        "",
        "| counter | seconds (best) | x dnnergy | first call | MACs reported |",
        "|---|---:|---:|---:|---:|",
    ]
    base = result["rows"][0]["seconds"]
    for row in result["rows"]:
        lines.append(f"| {row['counter']} | {row['seconds']:.4f} | {row['seconds'] / base:.2f} | {row['first']:.3f} | {row['macs']:,} |")
    verdict = "meets" if result["speedup_vs_fvcore"] >= TARGET_SPEEDUP else "does NOT meet"
    lines += [
        "",
        f"dnnergy's default trace is **{result['speedup_vs_fvcore']:.2f}x** faster than fvcore ({verdict} the "
        f"{TARGET_SPEEDUP:g}x target), {result['speedup_fresh_vs_fvcore']:.2f}x on a model object it has not traced "
        f"before, and {result['speedup_real_vs_fvcore']:.2f}x with a real forward pass (`compute=True`). "
        "The default runs the model on meta tensors (shapes, no arithmetic) and would rerun it on real values if the "
        "forward needed them (it does not here); both give the same records (`tests/workload/test_tracer_meta.py`). "
        "It remembers a model's meta parameters (rebuilt when a parameter, buffer or module changes) and the layouts "
        "torch's meta kernels returned for given shapes, which a copy of the model reuses; the first call pays for "
        "those and for one-off imports. "
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
    parser.add_argument("--out", "--results", dest="out", type=Path, default=DEFAULT_RESULTS,
                        help="Markdown file whose section to replace (default benchmarks/results.md)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    model_name, repeats = ("lenet5", 1) if args.quick else ("resnet50", args.repeats)
    result = measure(model_name, repeats)
    result["command"] = " ".join(["python benchmarks/trace_speed.py", *(sys.argv[1:] if argv is None else argv)])
    body = render(result)
    print(f"## {SECTION}\n\n{body}")
    write_section(SECTION, body, args.out)
    print(f"wrote the '{SECTION}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run every benchmark and rewrite ``benchmarks/results.md`` from scratch (machine, versions, date on top).

Each benchmark script writes its own ``## section`` of a results file. This script runs
the commands in :data:`RUNS` one after the other, each into a temporary file, and then
assembles the new ``results.md``: a header naming the machine, the versions and the date,
then every section in the order of :data:`RUNS`. A section written by several runs (the
distillation runs with different students) gets their bodies one after the other. The
old file is replaced atomically at the end, so an interrupted run leaves it untouched.

    python benchmarks/run_all.py [--only NAME,...] [--quick] [--out PATH] [--dry-run]

``--only`` runs the listed scripts (names without ``.py``) and keeps the other sections of
the existing file. ``--quick`` passes ``--quick`` to every script (minutes in all; the test
suite runs two). A full run takes several hours on 2 cores; the longest parts are the
pruning, quantization, distillation and low-rank sweeps.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import RESULTS, replace_section  # noqa: E402

#: (script, arguments) of every run that writes results.md, in the order of its sections.
RUNS: list[tuple[str, list[str]]] = [
    ("startup.py", []),
    ("trace_speed.py", ["--repeats", "9"]),
    ("estimate_speed.py", []),
    ("pruning.py", ["--models", "lenet300,lenet5"]),
    ("pruning.py", ["--data", "fashion-mnist", "--presets",
                    "eyeriss:row_stationary,eyeriss_v2:row_stationary,horowitz45:weights_once"]),
    ("quantization.py", ["--models", "lenet300,lenet5", "--data", "mnist", "--qat-epochs", "3"]),
    ("quantization.py", ["--models", "lenet300", "--data", "fashion-mnist", "--qat-epochs", "1"]),
    ("deep_compression.py", []),
    ("lowrank.py", ["--models", "lenet5,cifar10_quick"]),
    ("distill.py", ["--data", "mnist", "--seeds", "3"]),
    ("distill.py", ["--data", "mnist", "--students", "lenet100", "--teachers", "lenet300,lenet5", "--alpha", "0.5",
                    "--seeds", "3"]),
    ("distill.py", ["--data", "fashion-mnist", "--students", "lenet100", "--seeds", "2"]),
    ("netadapt.py", ["--data", "mnist"]),
    ("netadapt.py", ["--data", "fashion-mnist", "--models", "lenet5", "--executors", "local"]),
    ("fmap_coding.py", ["--data", "mnist", "--bits", "16,8"]),
    ("fmap_coding.py", ["--data", "fashion-mnist", "--bits", "16,8"]),
    ("sparse_hardware.py", []),
    ("nn_dataflow_compare.py", []),
    ("fuzz.py", ["--networks", "1000"]),
    ("soak.py", []),
]


def sections(text: str) -> list[tuple[str, str]]:
    """The ``(title, body)`` pairs of a results file's ``## `` sections, in order."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            out.append((line[3:].strip(), []))
        elif out:
            out[-1][1].append(line)
    return [(title, "\n".join(body).strip()) for title, body in out]


def merge(outputs: list[str]) -> list[tuple[str, str]]:
    """The sections of several runs' files, in first-seen order; a title seen again gets its bodies joined."""
    merged: dict[str, list[str]] = {}
    for text in outputs:
        for title, body in sections(text):
            merged.setdefault(title, []).append(body)
    return [(title, "\n\n".join(bodies)) for title, bodies in merged.items()]


def header(seconds: float) -> str:
    """The top of results.md: date, machine, Python and package versions, and how long the runs took."""
    versions = []
    for package in ("dnnergy", "torch", "numpy", "scipy", "nn-dataflow", "fvcore", "ptflops"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            continue
    return (f"# Benchmark results\n\nWritten by `python benchmarks/run_all.py` on {datetime.date.today()} in "
            f"{seconds / 60:.0f} min: {platform.machine()}, {os.cpu_count()} CPU(s), {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, {', '.join(versions)}. "
            "Each section starts with the command that reproduces it.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated script names (without .py) to run")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    args = parser.parse_args(argv)
    only = {name.strip().removesuffix(".py") for name in args.only.split(",") if name.strip()}
    unknown = only - {Path(script).stem for script, _ in RUNS}
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(sorted(unknown))}")
    runs = [(script, ["--quick"] if args.quick else extra) for script, extra in RUNS
            if not only or Path(script).stem in only]
    runs = list(dict.fromkeys((script, tuple(extra)) for script, extra in runs))  # --quick runs each script once
    began, outputs = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (script, extra) in enumerate(runs):
            target = Path(scratch) / f"{index}.md"
            command = [sys.executable, str(HERE / script), *extra, "--out", str(target)]
            print(f"[{index + 1}/{len(runs)}] {' '.join(command[1:])}", flush=True)
            if args.dry_run:
                continue
            subprocess.run(command, check=True, cwd=HERE.parent)
            outputs.append(target.read_text(encoding="utf-8"))
    if args.dry_run:
        return 0
    text = header(time.perf_counter() - began)
    if only and args.out.exists():  # keep the sections of the scripts not run
        text = args.out.read_text(encoding="utf-8")
    for title, body in merge(outputs):
        text = replace_section(text, title, body)
    from dnnergy.io import atomic_write

    atomic_write(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast dnnergy traces and estimates: ResNet-50 trace, analytic row-stationary estimate, mapper on AlexNet.

Targets (issue): analytic estimate of all ResNet-50 layers < 50 ms; the row-stationary
mapper on AlexNet < 2 s. Each estimate is timed cold (mapping caches cleared), since the
caches would otherwise make a second run free. ``--quick`` uses LeNet-5 for every row
(for the test suite). Results go to benchmarks/results.md under "Estimate speed".

    python benchmarks/estimate_speed.py [--quick] [--no-write] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

import dnnergy
from dnnergy.energy import estimate
from dnnergy.energy.mapper import RowStationarySearch
from dnnergy.energy.row_stationary import RowStationary
from dnnergy.zoo import create_model, model_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, run_line, write_section  # noqa: E402

SECTION = "Estimate speed"


def _trace(name: str):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dnnergy.trace(create_model(name), model_info(name).input_shape)


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def run(quick: bool) -> list[tuple[str, str, float, str]]:
    """Rows (what, model, seconds, target) of the benchmark."""
    big, small = ("lenet5", "lenet5") if quick else ("resnet50", "alexnet")
    t_trace, resnet = _timed(lambda: _trace(big))
    RowStationary.cache_clear()
    t_rs, _ = _timed(lambda: estimate(resnet, "eyeriss", "row_stationary"))
    alex = _trace(small)
    RowStationarySearch.cache_clear()
    t_search, _ = _timed(lambda: estimate(alex, "eyeriss", "row_stationary_search"))
    return [
        ("trace (dnnergy.trace)", big, t_trace, "-"),
        ("estimate, analytic row_stationary", big, t_rs, "< 0.05 s"),
        ("estimate, row_stationary_search (mapper)", small, t_search, "< 2 s"),
    ]


def table(rows) -> str:
    """A markdown table of the rows."""
    lines = ["| step | model | time (s) | target |", "|---|---|---|---|"]
    lines += [f"| {what} | {model} | {sec:.4f} | {target} |" for what, model, sec, target in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run on LeNet-5 (for tests)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results file whose section is replaced")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    body = table(run(args.quick))
    print(body)
    if not args.no_write:
        how = run_line("estimate_speed.py", sys.argv[1:] if argv is None else argv, time.perf_counter() - began)
        write_section(SECTION, f"{how} Mapping caches cleared before each estimate.\n\n{body}", args.out)


if __name__ == "__main__":
    main()

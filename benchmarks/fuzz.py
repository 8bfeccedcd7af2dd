"""Network fuzzing (issue 14): generated networks through trace, estimate and the ONNX round trip, failures by kind.

The generators and checks are the test suite's (``tests/fuzz/_networks.py``,
``tests/fuzz/_checks.py``), run here on many more networks and without stopping at the
first failure: each network is traced (its per-block MACs and pooling ops checked against
closed forms), estimated on every hardware preset and dataflow (plus once with non-MAC
layers excluded), exported with the TorchScript exporter and read back with
``from_onnx`` (MACs equal to the trace's, the import estimated too). A failure is
counted under its stage and exception type; a :class:`~dnnergy.DnnergyError` on these
valid networks counts as a failure too. Exports torch cannot do, and files whose ONNX
shapes differ from PyTorch's (pooling with ``ceil_mode`` dropping a last window), are
counted as skipped, not as failures.

    python benchmarks/fuzz.py [--networks 1000] [--seed 0] [--out benchmarks/results.md] [--quick]

Writes the "Fuzz" section. ``--quick`` runs 16 networks (for the test suite, seconds).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests" / "fuzz"))
from _results import RESULTS, run_line, write_section  # noqa: E402

SECTION = "Fuzz"
STAGES = ("model", "trace", "counts", "estimate", "export", "onnx", "onnx-estimate")


class Tally:
    """Counts per family and failures per (stage, exception type), with the first network of each failure."""

    def __init__(self) -> None:
        self.families: dict[str, Counter] = {}
        self.failures: Counter = Counter()
        self.examples: dict[tuple[str, str], str] = {}

    def run(self, net, workdir: Path) -> None:
        from _checks import check_counts, check_estimates, check_onnx, export_onnx, trace_net

        counts = self.families.setdefault(net.family, Counter())
        counts["networks"] += 1
        stage = "model"
        try:
            with torch.no_grad():
                net.model(*net.inputs)
            stage = "trace"
            workload = trace_net(net)
            counts["traced"] += 1
            stage = "counts"
            check_counts(net, workload)
            stage = "estimate"
            counts["estimates"] += check_estimates(workload, repr(net))
            if not net.onnx:
                counts["export skipped"] += 1
                return
            stage = "export"
            path = workdir / "net.onnx"
            if not export_onnx(net, path):
                counts["export skipped"] += 1
                return
            stage = "onnx"
            imported = check_onnx(net, workload, path)
            counts["ONNX round trips"] += 1
            stage = "onnx-estimate"
            counts["estimates"] += check_estimates(imported, f"{net} (ONNX)")
        except Exception as exc:  # counted by kind: the point is to see every failure, not the first
            key = (stage, type(exc).__name__)
            counts["failures"] += 1
            self.failures[key] += 1
            first_line = (str(exc).strip().splitlines() or [""])[0]
            self.examples.setdefault(key, f"{net!r}: {first_line}"[:300])


def fuzz(networks: int, seed: int) -> Tally:
    """Draw ``networks`` networks (hypothesis, no shrinking, reproducible for a ``seed``) and run every check on each."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    from _networks import networks as strategy

    tally = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        @hypothesis_seed(seed)
        @settings(max_examples=networks, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy())
        def one(net):
            tally.run(net, Path(tmp))

        one()
    return tally


COLUMNS = ("family", "networks", "traced", "estimates", "ONNX round trips", "export skipped", "failures")


def table(tally: Tally) -> list[str]:
    """Markdown lines: one row per family and a total row, then the failures by kind."""
    rows = [[name, *(str(counts[c]) for c in COLUMNS[1:])] for name, counts in sorted(tally.families.items())]
    total = Counter()
    for counts in tally.families.values():
        total.update(counts)
    rows.append(["**all**", *(f"**{total[c]}**" for c in COLUMNS[1:])])
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)] + ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "Failures by kind:", ""]
    if not tally.failures:
        return lines + ["none."]
    lines += ["| stage | exception | count | first network |", "|---|---|---|---|"]
    for (stage, kind), count in sorted(tally.failures.items(), key=lambda kv: (STAGES.index(kv[0][0]), kv[0][1])):
        example = tally.examples[(stage, kind)].replace("|", "\\|")
        lines.append(f"| {stage} | {kind} | {count} | {example} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=1000, help="networks to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (default 0)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file whose Fuzz section is replaced")
    parser.add_argument("--quick", action="store_true", help="16 networks (test suite)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    networks = 16 if args.quick else args.networks
    start = time.perf_counter()
    tally = fuzz(networks, args.seed)
    seconds = time.perf_counter() - start
    lines = table(tally)
    print("\n".join(lines))
    argv_used = sys.argv[1:] if argv is None else list(argv)
    body = "\n".join([
        run_line("fuzz.py", argv_used, seconds),
        "",
        "Generated networks (tests/fuzz/_networks.py; hypothesis seed "
        f"{args.seed}) traced, MACs and pooling ops checked against closed forms, estimated on every preset and "
        "dataflow (and once with non-MAC layers excluded), exported with the TorchScript exporter and read back "
        "with from_onnx (MACs equal to the trace's). `estimates` counts both the traced and the imported workloads'.",
        "",
        *lines,
    ])
    write_section(SECTION, body, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

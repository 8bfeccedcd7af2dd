"""NetAdapt (issue 12): energy and measured-latency budgets met, against uniform structured pruning; ray vs local.

For each model (LeNet-5, pretrained; a small BatchNorm CNN trained here and cached) and
each budget (50 % and 25 % of the original energy, and of the latency measured through
the per-layer table), NetAdapt (the registered method ``netadapt``) adapts the model
and is fine-tuned long-term; structured pruning by one uniform ratio (the smallest
ratio of every layer's lowest-L2 filters whose resource is within the same budget,
fine-tuned the same epochs) is the baseline. The table reports both resources as a
fraction of the original (budget met or not), test accuracies, NetAdapt's iterations and
run time, and for latency budgets the measured speed-up of the adapted model (whole
forward passes, medians of interleaved runs) next to the table's predicted one.

The executor comparison runs one NetAdapt search twice, on ``local`` (serial) and on
``ray`` (a local instance with 2 CPUs), and reports both wall times and whether the two
histories and the adapted weights are identical.

    python benchmarks/netadapt.py [--data mnist,fashion-mnist] [--models lenet5,cnn] [--budgets 0.5,0.25]
                                  [--metrics energy,latency] [--executors local,ray] [--out benchmarks/results.md] [--quick]

Energy: one image at batch 1 on eyeriss / row_stationary (the context's objective).
Latency: the whole batch of ``--latency-batch`` (default 32) images, so that the layers'
arithmetic, not Python's per-call overhead, dominates (at batch 1 a LeNet-5 with one
filter per layer still takes a third of the original time: a 25 % budget is below the
smallest network). ``--quick`` runs a tiny CNN on scikit-learn's digits (test suite).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish, standard_error_note

from dnnergy.compress import CompressionContext, get_method
from dnnergy.data import Dataset, load_dataset
from dnnergy.errors import UserInputError
from dnnergy.explore import Budget, History, RayExecutor, netadapt_search, resource_objective
from dnnergy.metrics import model_latency
from dnnergy.train import FINE_TUNE, TrainConfig, list_pretrained, pretrained, train, train_cached

SECTION = "NetAdapt"
#: Training images each fine-tuning epoch sees on Fashion-MNIST (the full 50,000 for pretraining only).
FASHION_FT_SAMPLES = 10_000


def cnn() -> nn.Module:
    """The Fashion-MNIST CNN: two 3x3 conv + BN + ReLU + pool stages (32, 64 filters), 128 hidden neurons."""
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def tiny_cnn() -> nn.Module:
    """--quick: a CNN for 8x8 digits."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


RECIPE = TrainConfig(epochs=8, lr=1e-3, batch_size=64, shift=1)


def load_model(name: str, data: Dataset) -> nn.Module:
    """The cached pretrained LeNet-5 (its recipe), or the CNN trained once here and cached; --quick: trained now."""
    if name == "tiny_cnn":
        torch.manual_seed(0)
        model = tiny_cnn()
        train(model, data, epochs=30, lr=3e-3, batch_size=32)
        return model.eval()
    if (name, data.name) in list_pretrained():
        return pretrained(name, data.name)
    from dnnergy.zoo import create_model

    factory = cnn if name == "cnn" else (lambda: create_model(name))
    return train_cached(f"netadapt_bench_{name}", factory, data, RECIPE).eval()


def fine_tuning_data(data: Dataset) -> Dataset:
    """``data`` with its train split cut to :data:`FASHION_FT_SAMPLES` on Fashion-MNIST (every fine-tuning epoch)."""
    if data.name != "fashion-mnist":
        return data
    x, y = data.train.tensors
    return dataclasses.replace(data, train=TensorDataset(x[:FASHION_FT_SAMPLES], y[:FASHION_FT_SAMPLES]))


def measured_speedup(original: nn.Module, adapted: nn.Module, x: torch.Tensor, rounds: int = 7) -> float:
    """Median over ``rounds`` interleaved measurements of original / adapted whole-model latency on ``x``."""
    ratios = []
    for _ in range(rounds):
        a = model_latency(original, x, repeats=10, warmup=2)
        b = model_latency(adapted, x, repeats=10, warmup=2)
        ratios.append(a / b)
    return statistics.median(ratios)


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    budget: float
    netadapt: float  # resource after long-term fine-tuning, fraction of the original
    iterations: int
    netadapt_test: float
    seconds: float
    ratio: float | None  # uniform ratio at the budget (None: none within it)
    uniform: float | None
    uniform_test: float | None
    predicted: float | None = None  # latency only: speed-ups
    measured: float | None = None
    table_error: float | None = None
    note: str = ""  # why NetAdapt did not run (a budget below the smallest network)


def uniform_at_budget(model: nn.Module, context: CompressionContext, objective, target: float) -> tuple[float, nn.Module] | None:
    """The smallest uniform l2 ratio (steps of 1/64) whose pruned model's resource is <= ``target``, fine-tuned."""
    method, search = get_method("structured"), context.replace(fine_tuning=None)
    cache: dict[int, nn.Module] = {}

    def pruned(k: int) -> nn.Module:
        if k not in cache:
            cache[k] = method(model, search, criterion="l2", ratio=k / 64).model
        return cache[k]

    if objective(pruned(63)) > target:
        return None
    low, high = 0, 63
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if objective(pruned(middle)) <= target else (middle, high)
    chosen = pruned(high)
    context.fine_tune(chosen)
    return high / 64, chosen


def run_budget(name: str, model: nn.Module, context: CompressionContext, metric: str, budget: float, args) -> Row:
    objective = resource_objective(metric, context, latency_batch=args.latency_batch, table=args.table)
    original = objective(model)
    start = time.perf_counter()
    try:
        result = get_method("netadapt")(model, context, metric=metric, budget=budget, step=args.step,
                                        short_term=args.short_term, latency_batch=args.latency_batch,
                                        latency_table=args.table)
    except UserInputError as exc:  # a budget below the smallest network: said in the table
        return Row(metric, budget, math.nan, 0, math.nan, time.perf_counter() - start, None, None, None, note=str(exc))
    seconds = time.perf_counter() - start
    history = History.from_dict(result.record.info["history"])
    adapted = result.model
    uniform = uniform_at_budget(model, context, objective, budget * original)
    row = Row(metric, budget, history.final["resource"] / history.original, len(history.iterations),
              context.evaluate(adapted, "test"), seconds, uniform and uniform[0],
              uniform and objective(uniform[1]) / original, uniform and context.evaluate(uniform[1], "test"))
    if metric == "latency":
        x = objective.inputs[0]
        check = objective.check(adapted)
        row = dataclasses.replace(row, predicted=original / objective(adapted), measured=measured_speedup(model, adapted, x),
                                  table_error=check.error)
    return row


def executors_compare(model: nn.Module, context: CompressionContext, args) -> list[str]:
    """One NetAdapt search (MACs budget 50 %) on local and on ray: wall times, identical results or not."""
    out, runs = [], {}
    for name in args.executors:
        start = time.perf_counter()
        if name == "ray":
            with RayExecutor(num_cpus=2) as executor:
                executor.start()
                started = time.perf_counter()
                adapted = netadapt_search(model, context, Budget("macs", 0.5), step=args.step, short_term=args.short_term,
                                          executor=executor)
                end = time.perf_counter()
            out.append(f"- ray (local instance, 2 CPUs): {end - start:.1f} s wall, of which {started - start:.1f} s "
                       "starting Ray")
        else:
            adapted = netadapt_search(model, context, Budget("macs", 0.5), step=args.step, short_term=args.short_term)
            end = time.perf_counter()
            out.append(f"- local (serial): {end - start:.1f} s wall")
        runs[name] = adapted
    if len(runs) == 2:
        a, b = runs.values()
        same_history = a.history.to_dict() == b.history.to_dict()
        same_weights = all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
        out.append(f"- same history (every proposal's resource and accuracy, every choice): **{same_history}**; "
                   f"identical adapted weights: **{same_weights}** ({len(a.history.iterations)} iterations, "
                   f"{sum(len(it.proposals) for it in a.history.iterations)} proposals)")
    return out


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(rows: list[Row]) -> list[str]:
    lines = ["| budget | NetAdapt resource | iterations | NetAdapt test acc | uniform ratio | uniform resource | "
             "uniform test acc | NetAdapt - uniform (points) | speed-up predicted / measured (table error) | NetAdapt s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.note:
            lines.append(f"| {r.metric} {r.budget:.0%} | not run: {r.note} |" + " |" * 8)
            continue
        met = "met" if r.netadapt <= r.budget + 1e-12 else "NOT met"
        gap = "-" if r.uniform_test is None else f"{100 * (r.netadapt_test - r.uniform_test):+.1f}"
        speed = "-" if r.predicted is None else f"{r.predicted:.2f}x / {r.measured:.2f}x ({100 * r.table_error:+.0f}%)"
        lines.append(f"| {r.metric} {r.budget:.0%} | {pct(r.netadapt)} ({met}) | {r.iterations} | {r.netadapt_test:.3f} | "
                     f"{'-' if r.ratio is None else f'{r.ratio:.3f}'} | {pct(r.uniform)} | "
                     f"{'-' if r.uniform_test is None else f'{r.uniform_test:.3f}'} | {gap} | {speed} | {r.seconds:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="mnist", help="comma-separated data sets: mnist, fashion-mnist (digits with --quick)")
    parser.add_argument("--models", default=None, help="comma-separated: lenet5,cnn (default; tiny_cnn with --quick)")
    parser.add_argument("--budgets", default="0.5,0.25", help="fractions of the original resource")
    parser.add_argument("--metrics", default="energy,latency", help="energy, latency, macs, weights")
    parser.add_argument("--executors", default="local,ray", help="executors to compare (one NetAdapt search each)")
    parser.add_argument("--step", type=float, default=0.1, help="resource cut per iteration (fraction of the original)")
    parser.add_argument("--short-term", type=int, default=4096, help="training images per short-term fine-tuning")
    parser.add_argument("--epochs", type=int, default=3, help="long-term fine-tuning epochs (NetAdapt and uniform)")
    parser.add_argument("--latency-batch", type=int, default=32, help="batch size whose latency is budgeted")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file whose 'NetAdapt' section is replaced")
    parser.add_argument("--quick", action="store_true", help="a tiny CNN on digits, one budget (test suite)")
    args = parser.parse_args(argv)
    # one fresh latency table per run: entries timed minutes apart on a busy machine disagree less than entries
    # cached from another day's load (the library's default table is the cache's, reused across runs)
    args.table = str(Path(tempfile.mkdtemp(prefix="netadapt-latency-")) / "table.json")
    torch.set_num_threads(1)
    datasets = ["digits"] if args.quick else [d.strip() for d in args.data.split(",") if d.strip()]
    models = (args.models or ("tiny_cnn" if args.quick else "lenet5,cnn")).split(",")
    budgets = [float(b) for b in args.budgets.split(",")]
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    if args.quick:
        args.short_term, args.step, args.latency_batch, args.epochs = 256, 0.25, 256, 1
        budgets, args.executors = [0.5], [e for e in args.executors if e != "ray"]
    started = time.perf_counter()
    body = [f"`python benchmarks/netadapt.py {' '.join(argv if argv is not None else sys.argv[1:])}` on "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
            f"{datetime.date.today().isoformat()}. NetAdapt: step {args.step:g} of the original per iteration, "
            f"short-term fine-tuning 1 epoch on {args.short_term} training images per proposal, choices on the "
            f"selection split; NetAdapt and the uniform baseline then fine-tune {args.epochs} epoch(s) (Adam 3e-4). "
            f"Energy: one image, eyeriss/row_stationary; latency: batch {args.latency_batch}, per-layer table on "
            "this machine (shared by other jobs: measured speed-ups are noisy). Resources are fractions of the "
            "original after long-term fine-tuning."]
    tested = {}
    for data_name in datasets:
        data = load_dataset(data_name)
        tested[data_name] = len(data.test)
        tuning = dataclasses.replace(FINE_TUNE, epochs=args.epochs)
        for name in models:
            model = load_model(name, data)
            context = CompressionContext.build(fine_tuning_data(data), fine_tuning=tuning, max_accuracy_drop=None)
            base = context.evaluate(model, "test")
            rows = []
            for metric in metrics:
                for budget in budgets:
                    rows.append(run_budget(name, model, context, metric, budget, args))
                    print(f"{name} on {data_name}: {table(rows[-1:])[-1]} ({time.perf_counter() - started:.0f} s)",
                          file=sys.stderr)
            body += ["", f"### {name} on {data_name} (test accuracy before: {base:.3f})", "", *table(rows)]
            wins = sum(not r.note and (r.uniform_test is None or r.netadapt_test >= r.uniform_test) for r in rows)
            body += ["", f"NetAdapt at least as accurate as uniform pruning at the same budget: {wins} of {len(rows)}; "
                         f"budgets met: {sum(r.netadapt <= r.budget + 1e-12 for r in rows)} of {len(rows)}."]
        if args.executors:
            model = load_model(models[0], data)
            context = CompressionContext.build(fine_tuning_data(data), fine_tuning=tuning, max_accuracy_drop=None)
            body += ["", f"### Executors: one NetAdapt search ({models[0]} on {data_name}, MACs budget 50 %)", "",
                     *executors_compare(model, context, args)]
    body += ["", f"Total run time {time.perf_counter() - started:.0f} s."]
    body[0] += " " + standard_error_note(tested)
    text = "\n".join(body)
    publish(SECTION, text, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())

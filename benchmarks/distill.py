"""Knowledge distillation (issue 12): small students trained with and without a teacher's soft targets.

For each data set: the teachers (LeNet-300-100 and LeNet-5, ``dnnergy.train.pretrained``)
and, for each student smaller than LeNet-300-100 (``lenet100`` = 784-100-10, ``lenet64`` =
784-64-32-10), ``--seeds`` runs of the same training recipe with plain cross-entropy and
with Hinton's loss from each teacher (``DistillationLoss``: T = ``--temperature``, alpha =
``--alpha``). Reports the test accuracy (mean over seeds, with the standard error of that
mean over seeds, and the binomial standard error of one run on the test split), the
weights and the energy of classifying one image (eyeriss, row stationary, batch 1,
densities measured on 64 test images) relative to each teacher. Prints the table and
writes it as the "Distillation" section of ``benchmarks/results.md``.

    python benchmarks/distill.py [--data mnist,fashion-mnist] [--students lenet100,lenet64]
                                 [--teachers lenet300,lenet5] [--seeds 3] [--epochs N] [--out FILE] [--quick]

``--quick`` distills a 64-48-24-10 MLP into a 64-16-10 one on scikit-learn's digits (for the
test suite: seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dnnergy.data import Dataset, load_dataset
from dnnergy.metrics import energy_objective
from dnnergy.train import (
    DistillationLoss,
    TrainConfig,
    evaluate,
    pretrained,
    train,
    train_cached,
)
from dnnergy.zoo import create_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import RESULTS, publish, run_line

SECTION = "Distillation"

#: Student training per data set (the same for plain and distilled runs): the MNIST subset uses
#: LeNet-300-100's recipe; full Fashion-MNIST (50,000 images) needs fewer epochs.
STUDENT_RECIPE = {"mnist": TrainConfig(epochs=15, lr=1e-3, batch_size=64, shift=1),
                  "fashion-mnist": TrainConfig(epochs=3, lr=1e-3, batch_size=128),
                  "digits": TrainConfig(epochs=6, lr=3e-3, batch_size=32)}


def _mlp(*sizes: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (c, m) in enumerate(itertools.pairwise(sizes)):
            layers += [nn.Linear(c, m)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
        return nn.Sequential(*layers)
    return build


#: --quick: tiny teacher and student for 8x8 digits.
QUICK = {"teacher": _mlp(64, 48, 24, 10), "student": _mlp(64, 16, 10)}


def teacher_of(name: str, data: Dataset) -> nn.Module:
    """A trained teacher: the pretrained zoo model (``dnnergy.train.RECIPES``), or (--quick) a tiny MLP."""
    if data.name == "digits":
        return train_cached("quick_teacher", QUICK["teacher"], data, STUDENT_RECIPE["digits"])
    return pretrained(name, data.name)


def fresh_student(name: str, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return QUICK["student"]() if name == "quick_student" else create_model(name)


@dataclass(frozen=True, slots=True)
class Row:
    """One line: a student trained with ``teacher``'s soft targets (``None``: plain cross-entropy), over seeds."""

    data: str
    student: str
    teacher: str | None
    accuracies: tuple[float, ...]  # test, one per seed
    test_samples: int
    weights: int
    energy: float
    seconds: float

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def seed_se(self) -> float:
        """Standard error of the mean over seeds (0 with one seed)."""
        n = len(self.accuracies)
        return statistics.stdev(self.accuracies) / math.sqrt(n) if n > 1 else 0.0

    @property
    def binomial_se(self) -> float:
        """Binomial standard error of one run's accuracy on the test split, ``sqrt(p (1 - p) / n)``."""
        return math.sqrt(self.mean * (1 - self.mean) / self.test_samples)


def weights_of(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))


def run_student(data: Dataset, student: str, teacher_name: str | None, teacher: nn.Module | None, seeds: int,
                temperature: float, alpha: float, energy: Callable[[nn.Module], float]) -> Row:
    start, accuracies, model = time.perf_counter(), [], None
    recipe = STUDENT_RECIPE[data.name]
    for seed in range(seeds):
        model = fresh_student(student, seed)
        loss = DistillationLoss(teacher, temperature, alpha) if teacher is not None else None
        train(model, data, recipe, seed=seed, loss_fn=loss)
        accuracies.append(evaluate(model, data.test))
    return Row(data.name, student, teacher_name, tuple(accuracies), len(data.test), weights_of(model), float(energy(model)),
               time.perf_counter() - start)


def table(rows: list[Row], teachers: dict[str, tuple[float, int, float]], seeds: int) -> str:
    head = ("| data | student | trained on | test acc, mean of seeds (%) | SE over seeds (pts) | binomial SE (pts) "
            "| weights | energy/image (eyeriss) | energy vs " + " / ".join(teachers) + " |")
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, (acc, weights, energy) in teachers.items():
        lines.append(f"| {rows[0].data if rows else ''} | {name} (teacher) | labels | {100 * acc:.2f} | - | - | {weights:,} "
                     f"| {energy:.4g} | " + " / ".join(f"{energy / e:.3f}" for _, _, e in teachers.values()) + " |")
    for r in rows:
        how = "labels (cross-entropy)" if r.teacher is None else f"soft targets of {r.teacher}"
        lines.append(f"| {r.data} | {r.student} | {how} | {100 * r.mean:.2f} | {100 * r.seed_se:.2f} | "
                     f"{100 * r.binomial_se:.2f} | {r.weights:,} | {r.energy:.4g} | "
                     + " / ".join(f"{r.energy / e:.3f}" for _, _, e in teachers.values()) + " |")
    return "\n".join(lines)


def run_data(name: str, students: list[str], teacher_names: list[str], seeds: int, temperature: float, alpha: float,
             log: Callable[[str], None]) -> str:
    data = load_dataset(name)
    energy = energy_objective(data.test.tensors[0][:64], "eyeriss", "row_stationary", per_image=True)
    teachers, summary = {}, {}
    for t in teacher_names:
        start = time.perf_counter()
        teachers[t] = teacher_of(t, data)
        summary[t] = (evaluate(teachers[t], data.test), weights_of(teachers[t]), float(energy(teachers[t])))
        log(f"[{name}] teacher {t}: test {summary[t][0]:.4f}, {time.perf_counter() - start:.1f} s")
    rows = []
    for s in students:
        for t in [None, *teacher_names]:
            row = run_student(data, s, t, teachers.get(t), seeds, temperature, alpha, energy)
            rows.append(row)
            log(f"[{name}] {s} <- {t or 'labels'}: test {row.mean:.4f} +- {row.seed_se:.4f} ({row.seconds:.1f} s)")
    recipe = STUDENT_RECIPE[name]
    return (f"### {name}\n\n{len(data.train):,} / {len(data.val):,} / {len(data.test):,} train / val / test images. "
            f"Students: {recipe.epochs} epochs, Adam lr {recipe.lr:g}, batch {recipe.batch_size}"
            f"{f', shift {recipe.shift}' if recipe.shift else ''}, seeds 0..{seeds - 1} (initial weights and shuffles); "
            f"distilled with T = {temperature:g}, alpha = {alpha:g}.\n\n" + table(rows, summary, seeds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="comma-separated data sets (default mnist,fashion-mnist; digits with --quick)")
    parser.add_argument("--students", default=None, help="comma-separated zoo students (default lenet100,lenet64)")
    parser.add_argument("--teachers", default=None, help="comma-separated zoo teachers (default lenet300,lenet5)")
    parser.add_argument("--seeds", type=int, default=None, help="runs per row (default 3; 2 with --quick)")
    parser.add_argument("--epochs", type=int, default=None, help="student training epochs (default: the data set's recipe)")
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="tiny MLPs on digits (seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    datas = (args.data or ("digits" if args.quick else "mnist,fashion-mnist")).split(",")
    students = (args.students or ("quick_student" if args.quick else "lenet100,lenet64")).split(",")
    teachers = (args.teachers or ("quick_teacher" if args.quick else "lenet300,lenet5")).split(",")
    seeds = args.seeds or (2 if args.quick else 3)
    start, blocks = time.perf_counter(), []
    for name in datas:
        if args.epochs:
            STUDENT_RECIPE[name] = dataclasses.replace(STUDENT_RECIPE[name], epochs=args.epochs)
        blocks.append(run_data(name, students, teachers, seeds, args.temperature, args.alpha,
                               lambda m: print(m, file=sys.stderr, flush=True)))
    header = (run_line("distill.py", argv if argv is not None else sys.argv[1:], time.perf_counter() - start) + " "
              "Energy: one image at batch 1 on eyeriss / row stationary (MAC-normalized), densities measured on 64 "
              "test images; 'energy vs' is the ratio to each teacher's.")
    text = header + "\n\n" + "\n\n".join(blocks)
    publish(SECTION, text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Quantization side by side (issue 10): the seeds' summary table re-measured, a peer, and pruning + quantization.

For each model and data set: load the pretrained float model (``dnnergy.train.pretrained``),
then run the registered method ``quantize`` once per row of the seeds' summary table
(seed 004, after Sze et al.): dynamic fixed point without and with fine-tuning, TWN, TTQ,
BinaryConnect, BWN, BNN, XNOR-Net, LogNet, plus uniform 8-bit, a mixed-precision width
search, and torch's own int8 post-training quantization (``torch.ao.quantization``,
FX graph mode, x86 qconfig) as the peer. Then pruning + quantization: the method
``magnitude`` followed by ``quantize`` on its model with the budget measured from the
float model (what ``dnnergy compress MODEL --method magnitude,quantize`` runs).

Reported per row: weight and activation widths (``*``: first and last layers in float),
test accuracy, its loss against the float model in points with the paired standard error
(``sd(correct_q - correct_f) / sqrt(n)`` over the test images), energy reduction of one
image (batch 1) on ``eyeriss`` + ``row_stationary`` and ``horowitz45`` + ``weights_once``
(densities measured on 64 test images, CONV/FC layers only, zero gating and run-length
coded DRAM traffic, as the pruning benchmark), model bytes (each weight at its width) and
run time. The peer's int8 model cannot be traced, so its energy is the float model's priced
at 8-bit weights and activations (``estimate(bits=(8, 8))``) and its bytes those of its
saved ``state_dict``.

    python benchmarks/quantization.py [--models lenet300,lenet5] [--data mnist[,fashion-mnist]] [--qat-epochs 3]
                                      [--max-drop 0.01] [--out benchmarks/results.md] [--quick] [--threads 1]

Prints the tables and writes one section per data set of ``benchmarks/results.md``
("Quantization (mnist)"). ``--quick`` runs two tiny networks on scikit-learn's digits
(for the test suite, seconds).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import io
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from dnnergy.compress import CompressionContext, Record, run
from dnnergy.compress.quantize import execution_order
from dnnergy.data import Dataset, load_dataset
from dnnergy.metrics import EnergyObjective, energy_objective
from dnnergy.metrics.point import model_bytes
from dnnergy.train import FINE_TUNE, TrainConfig, evaluate, pretrained, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny import QUICK_MODELS  # noqa: E402
from _results import RESULTS, write_section  # noqa: E402

SECTION = "Quantization"
PRESETS = (("eyeriss", "row_stationary"), ("horowitz45", "weights_once"))
TARGETS = {"lenet300": 60.0, "lenet5": 40.0}  # issue 10: pruning + quantization, horowitz45, <= 1 point test loss


@dataclass(frozen=True)
class Row:
    """One row: its label, the seed's numbers (weight bits, activation bits, ImageNet loss in %) and the
    ``quantize`` parameters as a function of the model's layer order (``None`` params: the peer)."""

    label: str
    seed: tuple[str, str, str]
    params: Callable[[list[str]], dict[str, Any]] | None


def _lognet(order: list[str]) -> dict[str, Any]:
    """LogNet: 5-bit conv and 4-bit fc weights (seed table), 4-bit activations, every layer."""
    return {"scheme": "log", "bits": {p: 5 if p.startswith("conv") else 4 for p in order}, "activation_bits": 4,
            "keep_ends": False}


ROWS = (
    Row("uniform affine, PTQ", ("-", "-", "-"), lambda o: {"scheme": "uniform", "bits": 8}),
    Row("dynamic fixed point, w/o fine-tuning", ("8", "10", "0.4"), lambda o: {"scheme": "dfp", "bits": 8}),
    Row("dynamic fixed point, w/ fine-tuning", ("8", "8", "0.6"), lambda o: {"scheme": "dfp", "bits": 8, "qat": True}),
    Row("TWN (QAT)", ("2*", "32", "3.7"), lambda o: {"scheme": "ternary", "qat": True}),
    Row("TTQ (QAT)", ("2*", "32", "0.6"), lambda o: {"scheme": "ttq", "qat": True}),
    Row("BinaryConnect (QAT)", ("1", "32", "19.2"), lambda o: {"scheme": "binary", "qat": True}),
    Row("BWN (QAT)", ("1*", "32", "0.8"), lambda o: {"scheme": "bwn", "qat": True}),
    Row("BNN (QAT)", ("1", "1", "29.8"), lambda o: {"scheme": "bnn", "qat": True}),
    Row("XNOR-Net (QAT)", ("1*", "1", "11"), lambda o: {"scheme": "xnor", "qat": True}),
    Row("LogNet, PTQ", ("5 conv, 4 fc", "4", "3.2"), _lognet),
    Row("LogNet (QAT)", ("5 conv, 4 fc", "4", "3.2"), lambda o: {**_lognet(o), "qat": True}),
    Row("uniform, mixed-precision search (PTQ)", ("-", "-", "-"), lambda o: {"scheme": "uniform", "bits": 8, "search": True}),
    Row("torch.ao int8 PTQ (peer)", ("8", "8", "-"), None),
)

#: Pruning + quantization: the magnitude schedule (global threshold, fine-tuning after each step) and the
#: quantize stage run on the pruned model.
SPARSITIES = (0.5, 0.75, 0.9, 0.93, 0.95, 0.96, 0.97, 0.98)
CHAIN_QUANTIZE = ({"scheme": "uniform", "bits": 4, "keep_ends": False, "qat": True},
                  {"scheme": "ternary", "keep_ends": False, "qat": True})


# -- measuring ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """Test predictions (correct or not per image), energies per preset, bytes."""

    correct: Tensor
    energy: tuple[float, ...]
    bytes: int

    @property
    def accuracy(self) -> float:
        return float(self.correct.float().mean())


def correct(model: nn.Module, data: Dataset) -> Tensor:
    """Per test image: was the prediction right (bool)."""
    x, y = data.test.tensors
    model.eval()
    with torch.no_grad():
        return torch.cat([model(part).argmax(1) for part in x.split(1000)]) == y


def loss_points(base: Measured, point: Measured) -> tuple[float, float]:
    """Test accuracy loss in points and its paired standard error (same images for both models)."""
    d = (point.correct.float() - base.correct.float())
    return -100 * float(d.mean()), 100 * float(d.std(unbiased=True)) / math.sqrt(len(d))


@dataclass(eq=False)
class Setup:
    """One model on one data set: the float model, the context (horowitz45 steers the search; budget 1 point of
    validation accuracy measured from the float model) and the reported energy objectives."""

    name: str
    model: nn.Module
    data: Dataset
    energies: tuple[EnergyObjective, ...]
    context: CompressionContext

    def measure(self, model: nn.Module, *, bits: int | None = None, size: int | None = None) -> Measured:
        energies = tuple(e(model) if bits is None else energy_objective(e.example_input, *preset, per_image=True,
                                                                         non_mac="exclude", bits=bits)(model)
                         for e, preset in zip(self.energies, PRESETS))
        return Measured(correct(model, self.data), energies, model_bytes(model) if size is None else size)


def setup(name: str, data: Dataset, model: nn.Module, qat_epochs: int, max_drop: float) -> Setup:
    images = data.test.tensors[0][:64]
    energies = tuple(energy_objective(images, hw, df, per_image=True, non_mac="exclude") for hw, df in PRESETS)
    steer = energy_objective(data.val.tensors[0][:64], *PRESETS[1], per_image=True, non_mac="exclude")
    context = CompressionContext(data, energy=steer, max_accuracy_drop=max_drop, example=data.val.tensors[0][:64],
                                 fine_tuning=dataclasses.replace(FINE_TUNE, epochs=qat_epochs),
                                 reference_accuracy=evaluate(model, data.val))
    return Setup(name, model, data, energies, context)


# -- rows ------------------------------------------------------------------------------------------------------

def widths(record: Record, order: list[str]) -> tuple[str, str]:
    """Weight and activation widths of a quantize record, as the seed's table writes them (``*``: ends in float)."""
    w, a = record.info["weight_bits"], record.info["activation_bits"]
    star = "*" if len(w) < len(order) else ""
    if len(set(w.values())) == 1:
        weights = f"{next(iter(w.values()))}{star}"
    else:
        weights = ", ".join(f"{p} {b}" for p, b in w.items()) + star
    if not a:
        return weights, "32"
    rest = {b for p, b in a.items() if p != order[0]}
    if order[0] in a and rest and rest != {a[order[0]]}:
        acts = f"{'/'.join(map(str, sorted(rest)))} (first layer {a[order[0]]})"
    else:
        acts = "/".join(map(str, sorted(set(a.values()))))
    return weights, acts + ("*" if len(a) < len(order) else "")


def torch_int8(s: Setup, calibration: int = 256) -> tuple[nn.Module, int]:
    """torch.ao.quantization FX post-training static int8 (x86 qconfig), calibrated on training images."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    x = s.data.train.tensors[0][:calibration]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare_fx(copy.deepcopy(s.model).eval(), get_default_qconfig_mapping("x86"), (x[:1],))
        with torch.no_grad():
            prepared(x)
        quantized = convert_fx(prepared)
    buffer = io.BytesIO()
    torch.save(quantized.state_dict(), buffer)
    return quantized, len(buffer.getvalue())


@dataclass(frozen=True)
class Line:
    label: str
    seed: tuple[str, str, str]
    bits: tuple[str, str]
    point: Measured
    seconds: float
    note: str = ""


def run_rows(s: Setup) -> list[Line]:
    order = execution_order(s.model, s.data.val.tensors[0][:1])
    lines = []
    for row in ROWS:
        start = time.perf_counter()
        if row.params is None:
            quantized, size = torch_int8(s)
            point = Measured(correct(quantized, s.data), s.measure(s.model, bits=8).energy, size)
            lines.append(Line(row.label, row.seed, ("8", "8"), point, time.perf_counter() - start, "energy: float model at 8/8 bits"))
            continue
        result = run(s.model, "quantize", s.context, **row.params(order))
        note = "" if result.record.info["within_budget"] else "outside the validation budget"
        lines.append(Line(row.label, row.seed, widths(result.record, order), s.measure(result.model),
                          time.perf_counter() - start, note))
    return lines


def run_chain(s: Setup) -> list[Line]:
    """Magnitude pruning alone, then its model quantized (the budget stays the float model's)."""
    order = execution_order(s.model, s.data.val.tensors[0][:1])
    start = time.perf_counter()
    pruned = run(s.model, "magnitude", s.context, sparsity=SPARSITIES, scope="global")
    mid = time.perf_counter()
    lines = [Line(f"magnitude alone ({pruned.record.summary})", ("-", "-", "-"), ("32", "32"), s.measure(pruned.model), mid - start)]
    for config in CHAIN_QUANTIZE:
        begin = time.perf_counter()
        chained = run(pruned.model, "quantize", s.context, **config)
        params = ", ".join(f"{k}={v}" for k, v in config.items())
        note = "" if chained.record.info["within_budget"] else "outside the validation budget"
        lines.append(Line(f"magnitude,quantize ({params})", ("-", "-", "-"), widths(chained.record, order),
                          s.measure(chained.model), mid - start + time.perf_counter() - begin, note))
    return lines


# -- tables ----------------------------------------------------------------------------------------------------

def table(s: Setup, base: Measured, lines: list[Line]) -> str:
    head = ("| row | seed w / a bits | seed loss % (ImageNet) | weight bits | activation bits | test accuracy | "
            "loss (points) ± SE | energy reduction eyeriss | energy reduction horowitz45 | model kB | s |")
    out = [head, "|" + "---|" * 11,
           f"| float 32-bit | 32 / 32 | 0 | 32 | 32 | {base.accuracy:.2%} | 0 | 1.00x | 1.00x | {base.bytes / 1000:.1f} | - |"]
    for line in lines:
        loss, se = loss_points(base, line.point)
        reductions = " | ".join(f"{b / p:.2f}x" for b, p in zip(base.energy, line.point.energy))
        note = f" ({line.note})" if line.note else ""
        out.append(f"| {line.label}{note} | {line.seed[0]} / {line.seed[1]} | {line.seed[2]} | {line.bits[0]} | {line.bits[1]} | "
                   f"{line.point.accuracy:.2%} | {loss:+.2f} ± {se:.2f} | {reductions} | {line.point.bytes / 1000:.1f} | "
                   f"{line.seconds:.1f} |")
    return "\n".join(out)


def targets(s: Setup, base: Measured, chain: list[Line]) -> str:
    if s.name not in TARGETS:
        return ""
    pruned, *chained = chain
    alone = base.energy[1] / pruned.point.energy[1]
    parts = []
    for line, config in zip(chained, CHAIN_QUANTIZE):
        loss, se = loss_points(base, line.point)
        reduction = base.energy[1] / line.point.energy[1]
        met = reduction >= TARGETS[s.name] and loss <= 1.0
        parts.append(f"then {config['scheme']} {line.bits[0]}-bit: **{'met' if met else 'not met'}** "
                     f"({reduction:.1f}x at {loss:+.2f} ± {se:.2f} points)")
    return (f"Target (issue 10): pruning + quantization >= {TARGETS[s.name]:.0f}x horowitz45 energy at <= 1 point test loss. "
            f"Pruning alone {alone:.1f}x; " + "; ".join(parts) + ".")


# -- models and data ------------------------------------------------------------------------------------------

def load_model(name: str, data_name: str, data: Dataset) -> nn.Module:
    if name in QUICK_MODELS:
        torch.manual_seed(0)
        model = QUICK_MODELS[name]()
        train(model, data, TrainConfig(epochs=8, lr=3e-3, batch_size=32))
        return model.eval()
    return pretrained(name, data_name).eval()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet300,lenet5")
    parser.add_argument("--data", default="mnist", help="comma-separated data sets: mnist, fashion-mnist")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--quick", action="store_true", help="tiny networks on digits, one QAT epoch (seconds)")
    parser.add_argument("--qat-epochs", type=int, default=None, help="fine-tuning epochs of QAT and pruning (default 3; 1 with --quick)")
    parser.add_argument("--max-drop", type=float, default=0.01, help="validation accuracy budget, a fraction")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    models = ["mlp", "cnn"] if args.quick else [m.strip() for m in args.models.split(",") if m.strip()]
    datasets = ["digits"] if args.quick else [d.strip() for d in args.data.split(",") if d.strip()]
    epochs = args.qat_epochs if args.qat_epochs is not None else (1 if args.quick else 3)
    bodies = []
    for data_name in datasets:
        data, sections, started = load_dataset(data_name), [], time.perf_counter()
        for name in models:
            s = setup(name, data, load_model(name, data_name, data), epochs, args.max_drop)
            base = s.measure(s.model)
            lines = run_rows(s)
            chain = run_chain(s)
            text = f"### {name} on {data_name}\n\n{table(s, base, lines + chain)}\n"
            goal = targets(s, base, chain)
            sections.append(text + (f"\n{goal}\n" if goal else ""))
            print(sections[-1], flush=True)
        command = "--quick" if args.quick else f"--models {','.join(models)} --data {data_name} --qat-epochs {epochs}"
        body = (
            f"Produced by `python benchmarks/quantization.py {command}` ({time.perf_counter() - started:.0f} s, "
            f"{args.threads} thread(s)). Every dnnergy row is the registered method `quantize` (QAT rows: {epochs} "
            "epoch(s) of straight-through fine-tuning, Adam lr 3e-4); the seed columns are the seeds' summary table "
            "(seed 004, ImageNet, `*` = first and last layers in float). Loss: test accuracy of the float model minus "
            "the row's, in points, ± the paired standard error over the test images. Energy: one image at batch 1, "
            "CONV/FC layers, densities on 64 test images. Model kB: each weight at its width, everything else float32.\n\n"
            + "\n".join(sections))
        write_section(f"{SECTION} ({data_name})", body, Path(args.out))
        bodies.append(body)
    return "\n".join(bodies)


if __name__ == "__main__":
    main()

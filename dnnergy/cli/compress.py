"""``dnnergy compress`` and ``dnnergy tradeoff``: run a method on a trained model and report what it saved."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..errors import UserInputError

__all__ = ["METHODS", "Job", "prepare", "watched", "watched_job", "progress_display", "run_compress", "run_tradeoff", "save_compressed", "FORMAT"]

METHODS = ("eap", "magnitude", "structured", "eliminate")
TRADEOFF_METHODS = ("magnitude", "structured")
FORMAT = "dnnergy.compressed/1"


@dataclass
class Job:
    """A trained model, its data and the energy function every method is judged by."""

    spec: str
    model: nn.Module
    dataset: Any
    example: torch.Tensor
    energy_fn: Callable[[nn.Module], float]
    evaluate_val: Callable[[nn.Module], float]


def prepare(spec: str, data: str, hardware: str, dataflow: str, weights: str | None, progress: bool) -> Job:
    """Load (or train once and cache) the model on ``data`` and build the evaluation and energy functions."""
    from functools import partial

    from .. import data as data_pkg
    from ..compress import energy_objective
    from ._resolve import load_model

    dataset = data_pkg.load_dataset(data)
    model, shape, _ = load_model(spec)
    images = dataset.val.tensors[0]
    if tuple(images.shape[1:]) != tuple(shape[1:]):
        raise UserInputError(f"--data {data}: its images are {tuple(images.shape[1:])} but {spec} takes {tuple(shape[1:])}")
    if weights:
        _load_weights(model, weights)
    elif (spec, data) in data_pkg.list_pretrained():
        model = data_pkg.pretrained(spec, data, progress=progress)
    else:
        data_pkg.train(model, dataset, progress=progress)
    example = images[:32]
    return Job(spec, model.eval(), dataset, example, energy_objective(example, hardware, dataflow, per_image=True),
               partial(data_pkg.evaluate, data=(images, dataset.val.tensors[1])))


def _load_weights(model: nn.Module, path: str) -> None:
    if not Path(path).is_file():
        raise UserInputError(f"file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserInputError(f"{path}: not a readable PyTorch state_dict ({exc.__class__.__name__})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserInputError(f"{path}: weights do not fit the architecture: {first}") from None


def watched(job: Job, label: str, progress: Any) -> Job:
    """The job with an evaluation function that reports each trial to a rich ``progress`` display.

    Every method evaluates once per trial (a pruning step, a sweep point, a channel
    choice), so this shows live progress without the methods knowing about the display.
    """
    from dataclasses import replace

    task = progress.add_task(label, total=None)
    trials = [0]

    def evaluate(model: nn.Module) -> float:
        accuracy = job.evaluate_val(model)
        trials[0] += 1
        progress.update(task, description=f"{label}: trial {trials[0]}, validation accuracy {accuracy:.2%}")
        return accuracy

    return replace(job, evaluate_val=evaluate)


def progress_display():
    """A rich progress display on stderr (``--json`` on stdout stays clean), shown only on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


@contextmanager
def watched_job(spec: str, data: str, hardware: str, dataflow: str, weights: str | None, label: str) -> Iterator[Job]:
    """:func:`prepare` the job under a live progress display and yield it :func:`watched` as ``label``."""
    with progress_display() as progress:
        setup = progress.add_task(f"preparing {spec} on {data} (training once if not cached)", total=None)
        job = prepare(spec, data, hardware, dataflow, weights, progress=False)
        progress.remove_task(setup)
        yield watched(job, label, progress)


def _nonzero_weights(model: nn.Module) -> tuple[int, int]:
    from ..compress import prunable_parameters

    params = dict(prunable_parameters(model))
    return sum(p.numel() for p in params.values()), sum(int(p.count_nonzero()) for p in params.values())


def run_compress(job: Job, method: str, max_drop: float, options: dict) -> tuple[nn.Module, dict]:
    """Run ``method`` allowing ``max_drop`` (a fraction) of validation accuracy; return the model and a record."""
    from .. import data as data_pkg
    from .. import compress as C

    model, dataset = job.model, job.dataset
    fine_tune = lambda m, masks: data_pkg.fine_tune(m, dataset, masks, epochs=options.get("epochs", 3))  # noqa: E731
    if method == "magnitude":
        result, record = C.iterative_magnitude_prune(model, options["schedule"], fine_tune=fine_tune, evaluate=job.evaluate_val,
                                                     scope=options.get("scope", "layer"), min_accuracy=job.evaluate_val(model) - max_drop)
        details = record.to_dict()
    elif method == "eap":
        calibration = dataset.train.tensors[0][: options.get("calibration", 2000)]
        config = C.EAPConfig(accuracy_drop=max_drop, rounds=options.get("rounds", 2))
        result, record = C.energy_aware_prune(model, evaluate=job.evaluate_val, calibration=calibration, energy_fn=job.energy_fn, fine_tune=fine_tune, config=config)
        details = record.to_dict()
    elif method == "structured":
        result, record = C.prune_structured(model, job.example, criterion=options.get("criterion", "energy"), ratio=options.get("ratio", 0.5),
                                            data=dataset.train.tensors[0][:512], energy_fn=job.energy_fn, evaluate_fn=job.evaluate_val, max_drop=max_drop)
        data_pkg.fine_tune(result, dataset, None, epochs=options.get("epochs", 3))
        details = record.to_dict()
    elif method == "eliminate":
        layers = [n.strip() for n in (options.get("layer") or "").split(",") if n.strip()] or [_first_hidden_linear(model)]
        if len(layers) > 1:
            search = C.elimination_search(model, dataset.train, job.evaluate_val, job.energy_fn, layers=layers, threshold=max_drop)
            if not search.accepted:
                raise UserInputError(f"eliminate: no plan over {', '.join(layers)} keeps the accuracy within {max_drop:.1%}")
            result, record = C.eliminate_plan(model, dataset.train, search.plan)
            details = {**record.to_dict(), "search": search.to_records()}
        else:
            layer = layers[0]
            sweep = C.elimination_sweep(model, layer, dataset.train, job.evaluate_val, job.energy_fn, threshold=max_drop, step=options.get("step", 5))
            best = sweep.best(max_drop)
            if best is None:
                raise UserInputError(f"eliminate: no number of neurons in {layer!r} keeps the accuracy within {max_drop:.1%}")
            result, record = C.eliminate_neurons(model, layer, dataset.train, best.p)
            details = {**record.to_dict(), "sweep": sweep.to_records()}
    else:
        raise UserInputError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    return result, details


def _first_hidden_linear(model: nn.Module) -> str:
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if len(linears) < 2:
        raise UserInputError("eliminate needs --layer NAME: the model has no hidden fully connected layer")
    return linears[0]


def summarize(job: Job, before: nn.Module, after: nn.Module, method: str, seconds: float, details: dict) -> dict:
    """Plain-data record: accuracy (test), weights, energy before/after in the energy function's unit."""
    from .. import data as data_pkg

    weights_before, nonzero_before = _nonzero_weights(before)
    weights_after, nonzero_after = _nonzero_weights(after)
    energy_before, energy_after = job.energy_fn(before), job.energy_fn(after)
    return {
        "model": job.spec,
        "method": method,
        "seconds": round(seconds, 2),
        "unit": getattr(job.energy_fn, "unit", ""),
        "accuracy_before": data_pkg.evaluate(before, job.dataset),
        "accuracy_after": data_pkg.evaluate(after, job.dataset),
        "weights_before": weights_before,
        "nonzero_weights_before": nonzero_before,
        "weights_after": weights_after,
        "nonzero_weights_after": nonzero_after,
        "energy_before": energy_before,
        "energy_after": energy_after,
        "energy_reduction": energy_before / energy_after if energy_after else float("inf"),
        "details": details,
    }


def save_compressed(path: str, model: nn.Module, summary: dict) -> list[Path]:
    """Write the model (state_dict + plain-data record, loadable with ``weights_only=True``) and ``PATH.json``, atomically."""
    target = Path(path)
    if not target.parent.is_dir():
        raise UserInputError(f"cannot write {target}: folder {target.parent} does not exist")
    payload = {"format": FORMAT, "record": json.loads(json.dumps(summary, default=str)), "state_dict": model.state_dict()}
    written = []
    for destination, writer in ((target, lambda f: torch.save(payload, f)),
                                (target.with_name(target.name + ".json"), lambda f: Path(f).write_text(json.dumps(summary, indent=1, default=str)))):
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        os.close(fd)
        try:
            writer(tmp)
            os.replace(tmp, destination)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(destination)
    return written


def run_tradeoff(job: Job, method: str, strengths: list[float]) -> list:
    """Sweep ``method``'s strength (sparsity for magnitude, channel ratio for structured) into trade-off points."""
    from ..compress import magnitude_prune, prune_structured
    from ..explore import tradeoff

    if method == "magnitude":
        fn = magnitude_prune
    elif method == "structured":
        example = job.example

        def fn(model: nn.Module, strength: float) -> nn.Module:
            return prune_structured(model, example, ratio=strength)[0] if strength > 0 else model
    else:
        raise UserInputError(f"tradeoff supports --method {' or '.join(TRADEOFF_METHODS)} (got {method!r})")
    return tradeoff(job.model, fn, strengths, job.evaluate_val, job.energy_fn, example_input=job.example[:1])

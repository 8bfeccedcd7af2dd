"""What ``dnnergy compress`` and ``dnnergy tradeoff`` set up before a method runs: a trained model and a context.

Nothing here knows a method: methods are looked up by name in the registry and given
their parameters by :mod:`~dnnergy.cli._params`.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import UserInputError
from ._progress import progress_display, reporter

__all__ = ["Job", "RESUMABLE", "checkpoint_file", "finish_checkpoint", "interruptible", "prepare",
           "progress_display", "watched_job", "write_outputs"]

#: Methods that save a checkpoint after each finished step (``dnnergy compress --resume``).
RESUMABLE = ("eap", "eliminate", "netadapt")


@dataclass(frozen=True, eq=False)
class Job:
    """A trained model, the architecture it rebuilds from, and the context every method runs in."""

    model: nn.Module
    architecture: Any
    context: Any


def prepare(spec: str, data: str, hardware: str, dataflow: str, weights: str | None, *, epochs: int,
            max_accuracy_drop: float | None, seed: int = 0, checkpoint: Path | None = None) -> Job:
    """Load (or train once and cache) the model on ``data`` and build its :class:`~dnnergy.compress.CompressionContext`.

    ``spec`` is a zoo name, ``module.path:factory`` or a saved ``.dnnergy`` model (which
    is already trained); the context's energy is one image's on ``hardware``/``dataflow``,
    its fine-tuning ``epochs`` of the default recipe (0: never fine-tune) and its budget
    ``max_accuracy_drop`` (a fraction; ``None``: none) and its ``checkpoint`` file (``None``: none).
    """
    from .. import train
    from ..compress import CompressionContext
    from ..data import load_dataset
    from ._resolve import load_model

    dataset = load_dataset(data)
    fine_tuning = dataclasses.replace(train.FINE_TUNE, epochs=epochs) if epochs else None
    context = CompressionContext.build(dataset, hardware=hardware, dataflow=dataflow, max_accuracy_drop=max_accuracy_drop,
                                       fine_tuning=fine_tuning, seed=seed, checkpoint=checkpoint)  # checks hardware and dataflow first
    resolved = load_model(spec)
    model, shape = resolved.model, resolved.shape
    if tuple(dataset.input_shape) != tuple(shape[1:]):
        raise UserInputError(f"--data {data}: its images are {tuple(dataset.input_shape)} but {spec} takes {tuple(shape[1:])}")
    architecture = getattr(model, "dnnergy_architecture", None)
    if weights:
        _load_weights(model, weights)
    elif resolved.trained:
        pass  # a saved dnnergy model: its weights are the ones to compress
    elif (spec, data) in train.list_pretrained():
        model = train.pretrained(spec, data)
    else:
        train.train(model, dataset)
    return Job(model.eval(), architecture, context)


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


@contextmanager
def watched_job(spec: str, label: str, *, steps: int | None = None, quiet: bool = False, **options: Any) -> Iterator[Job]:
    """:func:`prepare` under a progress display on stderr (:func:`~dnnergy.cli._progress.progress_display`; none when
    ``quiet``); the job's context reports every evaluation to it.

    Every method evaluates once per trial (a pruning step, a sweep point, a channel
    choice), so this shows live progress without the methods knowing about the display.
    With ``steps`` known (a sweep's points), ``"step"`` events (:func:`~dnnergy.cli._progress.stepping`)
    advance the task, and the display estimates the time left.
    """
    with progress_display(quiet) as progress:
        setup = progress.add_task(f"preparing {spec} on {options['data']} (training once if not cached)", total=None)
        job = prepare(spec, **options)
        progress.remove_task(setup)
        task = progress.add_task(label, total=steps)
        yield dataclasses.replace(job, context=job.context.replace(progress=reporter(progress, task, label)))


def write_outputs(path: str, job: Job, result) -> list[Path]:
    """Save the compressed model to ``path`` (a ``dnnergy.load``-able container) and its record to ``PATH.json``."""
    from ..compress.artifact import save
    from ..io import atomic_write

    target = Path(path)
    written = [save(target, result.model, result.record, architecture=job.architecture, example=job.context.examples)]
    written.append(atomic_write(target.with_name(target.name + ".json"), result.record.to_json()))
    return written


def checkpoint_file(out: str | None, checkpoint: str | None, resume: bool, method: str | None = None) -> Path | None:
    """The checkpoint file of a command: ``--checkpoint``, else ``OUT.checkpoint`` next to the output (``None``: none).

    ``method`` (``dnnergy compress``): only one of :data:`RESUMABLE` saves checkpoints; any
    other method or chain takes no ``--resume``. Refuses ``--resume`` with nowhere to look,
    and a checkpoint left by an interrupted run when ``--resume`` is not given (it would be
    overwritten). ``--resume`` with no checkpoint yet starts from the beginning, with a note.
    """
    import typer

    from ._paths import check_output

    if method is not None and method.strip() not in RESUMABLE:
        if resume or checkpoint:
            raise UserInputError(f"--resume/--checkpoint: {method} saves no checkpoints (one of {', '.join(RESUMABLE)} alone does)")
        return None
    if not checkpoint and not out:
        if resume:
            raise UserInputError("--resume needs to know where the checkpoint is: give the same --out or --checkpoint FILE")
        return None
    path = check_output(checkpoint or f"{out}.checkpoint", "--checkpoint")
    if path.exists() and not resume:
        raise UserInputError(f"{path} holds an interrupted run: add --resume to continue it, or delete the file to start over")
    if resume and not path.exists():
        typer.echo(f"note: no checkpoint at {path}; starting from the beginning", err=True)
    return path


@contextmanager
def interruptible(checkpoint: Path | None) -> Iterator[None]:
    """Turn Ctrl-C (SIGINT) into one line on stderr and exit status 130, without a traceback.

    The checkpoint of the last finished step stays where it is (it is written atomically,
    so an interrupted write leaves the previous one).
    """
    import typer

    try:
        yield
    except KeyboardInterrupt:
        if checkpoint is None:
            line = "interrupted"
        elif checkpoint.exists():
            line = f"interrupted: progress up to the last finished step is in {checkpoint}; run the same command with --resume to continue"
        else:
            line = "interrupted before the first step finished: nothing saved to resume"
        typer.echo(line, err=True)
        raise typer.Exit(130) from None


def finish_checkpoint(checkpoint: Path | None) -> None:
    """Delete the checkpoint once the run's outputs are written: the outputs hold its result."""
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)

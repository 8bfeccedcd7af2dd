"""Knowledge distillation as a compression method (Hinton et al. 2015; seed 001): train with a teacher's soft targets.

Registered as the method ``distill``. Two uses:

* **Recovering accuracy after another method** (``--method structured,distill``): the
  compressed model is fine-tuned with :class:`~dnnergy.train.DistillationLoss` instead of
  plain cross-entropy, through its weight transforms (masks stay in force).
* **Training a small zoo student** (``student="lenet100"``): the named zoo architecture is
  built fresh (seeded with the context's seed) and trained from scratch on the teacher's
  soft targets; the result is that student, not the input model.

The teacher: ``teacher=""`` (default) is a frozen copy of the model the method receives.
NB: the contract hands a method only its own input model and the context (whose
``reference_accuracy`` is the chain's starting accuracy, not its model), so in a chain
``structured,distill`` the default teacher is the *pruned* model (self-distillation). To
distill from the chain's original model, save it and pass its file (``teacher=
"original.dnnergy"``), or name a zoo model with a pretraining recipe for the context's data
(``teacher="lenet300"``, :func:`dnnergy.train.pretrained`).

Training uses the context's fine-tuning policy (``context.fine_tuning``, seeded with the
context's seed; on the command line ``--epochs``). A student trained from scratch needs a
longer policy than a fine-tuning, e.g. ``context.replace(fine_tuning=TrainConfig(epochs=15,
lr=1e-3))``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..errors import UserInputError
from ..train import DistillationLoss, list_pretrained, pretrained
from ..zoo import create_model, list_models, model_info
from .context import CompressionContext
from .contract import Outcome, register_method
from .record import Step

__all__ = ["distill", "resolve_teacher"]


def _check(temperature: float, alpha: float, teacher: str, student: str) -> None:
    DistillationLoss(nn.Identity(), temperature, alpha)  # checks temperature and alpha with their messages
    if not isinstance(student, str):
        raise UserInputError(f"distill: student must be a zoo model name or '' (got {student!r})")
    if student:
        model_info(student)  # an unknown name raises, listing the close zoo names
    if not isinstance(teacher, str):
        raise UserInputError(f"distill: teacher must be '', a .dnnergy file or a zoo model name (got {teacher!r})")
    if teacher and teacher not in list_models() and not Path(teacher).is_file():
        raise UserInputError(f"distill: teacher {teacher!r} is neither a file nor a zoo model name "
                             f"(pretrained: {', '.join(f'{m} on {d}' for m, d in list_pretrained())})")


def resolve_teacher(teacher: str, model: nn.Module, context: CompressionContext) -> tuple[nn.Module, str]:
    """The frozen teacher network and a description: for ``""`` a copy of the model the compression started from
    (``context.origin``; ``model`` itself when called outside ``compress.run``), else a saved file or a pretrained
    zoo model."""
    if not teacher and context.origin is not None:
        found, what = copy.deepcopy(context.origin), "a copy of the model the compression started from"
    elif not teacher:
        found, what = copy.deepcopy(model), "a copy of the input model"
    elif Path(teacher).is_file():
        from .artifact import load

        found, what = load(teacher).model, f"file {teacher}"
    else:
        found, what = pretrained(teacher, context.data.name), f"pretrained {teacher} on {context.data.name}"
    for p in found.parameters():
        p.requires_grad_(False)
    return found.eval(), what


def _output_shape(net: nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    """Shape of ``net``'s output on ``x`` in eval mode (its mode restored: no batch-norm statistics move)."""
    training = net.training
    try:
        with torch.no_grad():
            return tuple(net.eval()(x).shape)
    finally:
        net.train(training)


def _student(name: str, context: CompressionContext, teacher: nn.Module) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        student = create_model(name, num_classes=context.data.num_classes)
    x = context.examples[:1]
    try:
        shape = _output_shape(student, x)
    except RuntimeError as exc:
        raise UserInputError(f"distill: student {name!r} does not accept inputs of shape {tuple(x.shape)} ({exc})") from None
    if shape != _output_shape(teacher, x):
        raise UserInputError(f"distill: student {name!r} gives outputs {shape}, the teacher {_output_shape(teacher, x)}")
    return student


@register_method("distill", strength="alpha", check=_check)
def distill(model: nn.Module, context: CompressionContext, *, temperature: float = 4.0, alpha: float = 0.9,
            teacher: str = "", student: str = "") -> Outcome:
    """Knowledge distillation (Hinton et al. 2015): train on a teacher's soft targets and the labels.

    Loss: ``alpha * temperature^2 * KL(soft teacher || soft student) + (1 - alpha) * CE``.
    ``teacher``: ``""`` = a frozen copy of the model the compression started from (in a chain
    such as ``structured,distill``, the chain's original: distillation recovers what the
    earlier stages lost), a ``.dnnergy`` file, or a zoo name pretrained on the context's data. ``student``: ``""`` fine-tunes the input model; a zoo name trains that
    architecture from scratch instead. Training follows the context's fine-tuning policy.
    """
    _check(temperature, alpha, teacher, student)
    if context.fine_tuning is None:
        raise UserInputError("distill trains the model: it needs a fine-tuning policy (context.fine_tuning is None)")
    frozen, what = resolve_teacher(teacher, model, context)
    target = _student(student, context, frozen) if student else model
    if not student and _output_shape(model, context.examples[:1]) != _output_shape(frozen, context.examples[:1]):
        raise UserInputError(f"distill: the teacher ({what}) and the model give outputs of different shapes")
    config = context.fine_tuning
    context.replace(loss_fn=DistillationLoss(frozen, temperature, alpha)).fine_tune(target)
    accuracy = context.evaluate(target)
    info = {"teacher": what, "teacher_val_accuracy": context.evaluate(frozen), "student": student or "(input model)",
            "epochs": config.epochs, "lr": config.lr}
    summary = (f"{'trained ' + student + ' from scratch' if student else 'fine-tuned'} {config.epochs} epoch(s) on the "
               f"soft targets of {what} (T={temperature:g}, alpha={alpha:g})")
    return Outcome(target, summary, (Step(0, "", float(alpha), accuracy, True, True),), info)

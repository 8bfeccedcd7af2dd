"""Knowledge distillation (Hinton, Vinyals and Dean, arXiv 2015; seed 001): a teacher's soft targets as the loss.

The student is trained on a mix of the teacher's class probabilities softened by a
temperature ``T`` and the true labels::

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

The ``T^2`` keeps the soft term's gradients the same size as ``T`` changes (Hinton et al.,
Section 2.1: for large ``T`` and zero-mean logits the KL's gradient per logit tends to
``(z_i - v_i) / (N T^2)`` with ``N`` classes, so the scaled term's tends to ``(z_i - v_i) / N``). :class:`DistillationLoss` is a ``loss_fn`` for
:func:`~dnnergy.train.train` (``train(student, data, loss_fn=DistillationLoss(teacher))``):
the teacher sees the same (augmented) minibatch as the student, in eval mode, without
gradients.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserInputError

__all__ = ["DistillationLoss", "distillation_loss"]


def _check(temperature: float, alpha: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature > 0):
        raise UserInputError(f"distillation: temperature must be a finite number > 0 (got {temperature!r})")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise UserInputError(f"distillation: alpha must be a fraction in [0, 1] (got {alpha!r})")


def distillation_loss(student: Tensor, teacher: Tensor, targets: Tensor, temperature: float = 4.0,
                      alpha: float = 0.9) -> Tensor:
    """Hinton's loss for one minibatch of logits ``(N, classes)``, averaged over the batch (nats).

    ``alpha * T^2 * KL(p_T(teacher) || p_T(student)) + (1 - alpha) * cross_entropy(student, targets)``,
    with ``p_T(z) = softmax(z / T)``. Example: identical student and teacher logits make the
    KL term 0, so ``alpha=1`` gives 0.
    """
    _check(temperature, alpha)
    if student.shape != teacher.shape:
        raise UserInputError(f"distillation: student logits {tuple(student.shape)} and teacher logits "
                             f"{tuple(teacher.shape)} must have the same shape (same classes)")
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.log_softmax(teacher.detach() / temperature, dim=1),
                    reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1.0 - alpha) * F.cross_entropy(student, targets)


class DistillationLoss:
    """A ``loss_fn(outputs, targets, inputs)`` that distills ``teacher`` into the model being trained.

    ``temperature`` (> 0) softens both distributions; ``alpha`` in [0, 1] weighs the soft
    term (0: plain cross-entropy, the teacher is still run). The teacher is put in eval mode
    and run under ``torch.no_grad`` on each minibatch's inputs. Example::

        train(create_model("lenet100"), data, loss_fn=DistillationLoss(pretrained("lenet300"), 4.0, 0.9))
    """

    def __init__(self, teacher: nn.Module, temperature: float = 4.0, alpha: float = 0.9):
        if not isinstance(teacher, nn.Module):
            raise UserInputError(f"DistillationLoss: teacher must be a torch.nn.Module (got {type(teacher).__name__})")
        _check(temperature, alpha)
        self.teacher, self.temperature, self.alpha = teacher.eval(), float(temperature), float(alpha)

    def __call__(self, outputs: Tensor, targets: Tensor, inputs: Tensor) -> Tensor:
        self.teacher.eval()
        with torch.no_grad():
            soft_targets = self.teacher(inputs)
        return distillation_loss(outputs, soft_targets, targets, self.temperature, self.alpha)

    def __repr__(self) -> str:
        return f"DistillationLoss({type(self.teacher).__name__}, temperature={self.temperature:g}, alpha={self.alpha:g})"

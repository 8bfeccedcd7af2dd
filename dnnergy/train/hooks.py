"""Per-step training hooks: how compression state rides through :func:`dnnergy.train.train`.

A hook sees the model at five points of every training run::

    on_start(model)                      once, before the first step
    for each minibatch:
        before_forward(model)            e.g. write quantized weights in (straight-through)
        loss = loss_fn(model(x), y, x); loss.backward()
        after_backward(model)            e.g. mask gradients, sum gradients per codebook cluster
        optimizer.step()
        after_step(model)                e.g. re-apply masks, snap weights back to centroids
    on_end(model)                        once, after the last step

Subclass :class:`TrainHook` and override what you need (every method is a no-op by
default). Weight transforms (:mod:`dnnergy.compress.transforms`) are hooks, so a masked
or quantized model is fine-tuned *through* its transforms. The training loss is a
separate argument of ``train`` (``loss_fn(outputs, targets, inputs)``), which is where a
distillation teacher's soft targets plug in. Example, a hook that clips weights::

    class Clip(TrainHook):
        def after_step(self, model):
            with torch.no_grad():
                for p in model.parameters():
                    p.clamp_(-1, 1)
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TrainHook", "Loss", "cross_entropy"]

#: ``loss_fn(outputs, targets, inputs) -> scalar tensor``: the mean training loss of a minibatch.
Loss = Callable[[Tensor, Tensor, Tensor], Tensor]


def cross_entropy(outputs: Tensor, targets: Tensor, inputs: Tensor) -> Tensor:
    """The default training loss: mean cross-entropy of the logits ``outputs`` against class ``targets`` (nats).

    Example: ``cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]), inputs)`` is ln 4 = 1.386 (uniform logits
    over 4 classes); ``inputs`` is unused.
    """
    return F.cross_entropy(outputs, targets)


class TrainHook:
    """A no-op at every point of a training run; subclasses override the points they need.

    Example (counting optimizer steps; the loop calls ``hook.on_start(model)``, then per minibatch
    ``hook.before_forward(model)``, ``hook.after_backward(model)`` and ``hook.after_step(model)``, and
    ``hook.on_end(model)`` last):

    >>> import torch, torch.nn as nn
    >>> from dnnergy.data import load_dataset
    >>> from dnnergy.train import TrainConfig, train
    >>> class Steps(TrainHook):
    ...     def on_start(self, model): self.count = 0
    ...     def after_step(self, model): self.count += 1
    >>> steps = Steps()
    >>> _ = train(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), load_dataset("digits"), TrainConfig(epochs=1),
    ...           hooks=[steps])
    >>> steps.count  # 1,257 training images in minibatches of 64
    20
    """

    def on_start(self, model: nn.Module) -> None:
        """Before the first minibatch."""

    def before_forward(self, model: nn.Module) -> None:
        """Before each minibatch's forward pass."""

    def after_backward(self, model: nn.Module) -> None:
        """After ``loss.backward()``, before the optimizer step (gradients are in ``.grad``)."""

    def after_step(self, model: nn.Module) -> None:
        """After each optimizer step."""

    def on_end(self, model: nn.Module) -> None:
        """After the last minibatch (also when training stops with an error)."""


def check_hooks(hooks: Iterable[TrainHook]) -> tuple[TrainHook, ...]:
    """``hooks`` as a tuple, each checked to be a :class:`TrainHook` (a clear error otherwise)."""
    from ..errors import UserInputError

    out = tuple(hooks)
    for hook in out:
        if not isinstance(hook, TrainHook):
            raise UserInputError(f"train: hooks must be TrainHook instances (got {type(hook).__name__})")
    return out


def call(hooks: tuple[TrainHook, ...], point: str, model: nn.Module) -> None:
    """Run ``point`` (e.g. ``"after_step"``) of every hook in order, without autograd."""
    with torch.no_grad():
        for hook in hooks:
            getattr(hook, point)(model)

"""Shared by the explore tests: fitting tiny models quickly."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def _descend(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float = 0.5) -> nn.Module:
    """``steps`` of plain full-batch gradient descent on the cross-entropy; returns the model in eval mode.

    Not ``torch.optim``: its first use imports ``torch._dynamo``, which costs seconds.
    """
    for _ in range(steps):
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad
    return model.eval()


@pytest.fixture(scope="session")
def descend():
    """:func:`_descend`: fit a tiny model by full-batch gradient descent."""
    return _descend

"""The one latency timer: median wall-clock seconds of repeated calls (a model's forward pass, a layer, any callable)."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch
from torch import nn

from ..errors import UserInputError
from ..workload.tracer import example_inputs

__all__ = ["measure_latency", "model_latency"]


def measure_latency(fn: Callable[..., Any], *args: Any, repeats: int = 50, warmup: int = 5) -> float:
    """Median wall-clock seconds of ``fn(*args)`` over ``repeats`` calls after ``warmup`` untimed calls.

    Runs under ``torch.inference_mode``. The median resists the outliers of a shared
    machine. Example: ``measure_latency(layer, torch.randn(1, 4096))`` times one
    batch-1 forward pass.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1 or not isinstance(warmup, int) or warmup < 0:
        raise UserInputError(f"measure_latency: repeats must be >= 1 and warmup >= 0 (got {repeats}, {warmup})")
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn(*args)
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_latency(model: nn.Module, example: Any, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``model``'s forward pass in eval mode on ``example`` (a batch, a tuple of them, or a shape).

    The model's training flag is restored afterwards. Example: ``model_latency(lenet300,
    (1, 1, 28, 28))`` is the batch-1 latency of LeNet-300-100 on this CPU.
    """
    inputs = example_inputs(example)
    training = model.training
    model.eval()
    try:
        return measure_latency(model, *inputs, repeats=repeats, warmup=warmup)
    finally:
        model.train(training)

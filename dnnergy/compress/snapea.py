"""ReLU early termination, exact mode (SnaPEA, Akhlaghi et al., ISCA 2018; seed 001).

When a layer's inputs are non-negative (they come out of a ReLU) and its output goes
straight into a ReLU (possibly through a BatchNorm, folded in here), each output's
weights can be reordered positive-first: once every positive weight has been used, the
partial sum can only fall, so as soon as it is negative the ReLU output is known to be 0
and the remaining MACs are skipped. The result is exact.

Convention used here, per output neuron/filter: the accumulator starts at the (folded)
bias; the positive weights run first in their index order, then the negative weights
from the largest magnitude to the smallest (the order that terminates earliest), then the
zero weights. The sign is checked after the positive phase and after every negative MAC;
the first negative partial sum stops the accumulation. The count of executed MACs is
exact and computed on real data with cumulative sums (one row per output position).

How it reaches the energy estimate: :func:`with_early_termination` sets each layer's
``mac_density`` to the fraction of non-zero-operand MACs SnaPEA still executes, so the
estimator's MAC energy and the RF reads that go with it count only executed MACs, while
the stored weights (and their DRAM coding) are unchanged. The registered method
``snapea`` leaves that fraction on each layer's module as a ``mac_density`` energy hint
(:mod:`dnnergy.workload.hints`), so every later trace and estimate of the model prices it.
NB: the fraction is measured on the calibration images and for the weights the model
has then; run ``snapea`` last in a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..errors import UserInputError
from ..workload import Workload
from ..workload.hints import HINTS_ATTRIBUTE
from .context import CompressionContext
from .contract import Outcome, register_method, require_positive
from .reconstruct import input_rows
from .removal import calibration_inputs

__all__ = ["EarlyTermination", "simulate_early_termination", "early_termination", "with_early_termination", "snapea"]


@dataclass(frozen=True, slots=True)
class EarlyTermination:
    """Measured early termination of one layer over a batch (counts are MACs, summed over the batch)."""

    name: str
    macs: int
    executed: int
    nonzero_macs: int
    executed_nonzero: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"EarlyTermination: name must be a non-empty string (got {self.name!r})")
        if not 0 <= self.executed <= self.macs:
            raise ValueError(f"EarlyTermination {self.name!r}: need 0 <= executed <= macs (got {self.executed}, {self.macs})")
        if not 0 <= self.executed_nonzero <= self.nonzero_macs <= self.macs or self.executed_nonzero > self.executed:
            raise ValueError(f"EarlyTermination {self.name!r}: need executed_nonzero <= nonzero_macs <= macs and <= executed "
                             f"(got {self.executed_nonzero}, {self.nonzero_macs}, {self.macs}, {self.executed})")

    @property
    def skipped(self) -> int:
        """MACs not executed."""
        return self.macs - self.executed

    @property
    def executed_fraction(self) -> float:
        """Executed MACs / all MACs."""
        return self.executed / self.macs if self.macs else 1.0

    @property
    def nonzero_fraction(self) -> float:
        """Executed non-zero-operand MACs / all non-zero-operand MACs (the factor applied to ``mac_density``)."""
        return self.executed_nonzero / self.nonzero_macs if self.nonzero_macs else 1.0


def _folded(module: nn.Module, bn: nn.Module | None) -> tuple[Tensor, Tensor]:
    weight = module.weight.detach().to(torch.float64).reshape(module.weight.shape[0], -1)
    bias = module.bias.detach().to(torch.float64) if module.bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    if bn is not None:  # y = gamma * (z - mean) / sqrt(var + eps) + beta = a * z + c
        a = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
        weight, bias = weight * a[:, None], a * (bias - bn.running_mean.double()) + bn.bias.detach().double()
    return weight, bias


def simulate_early_termination(module: nn.Module, x: Tensor, bn: nn.BatchNorm2d | nn.BatchNorm1d | None = None,
                               chunk: int = 4096) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``relu(bn(module(x)))`` with SnaPEA's exact early termination, in float64.

    Returns ``(outputs, executed, nonzero_executed)``, each of shape ``(rows, M)``: the
    ReLU outputs (0 where terminated), the MACs executed and those of them whose two
    operands were non-zero, for every output position (rows = batch x output pixels,
    in :func:`~dnnergy.compress.reconstruct.input_rows` order). ``x`` must be
    non-negative. Supports Linear and ungrouped Conv1d/Conv2d. Example: weights ``[2,
    -3, -1]``, input ``[1, 1, 1]``, bias 0: partial sums 2, -1 -> stops after 2 of 3 MACs.
    """
    if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) or getattr(module, "groups", 1) != 1:
        raise UserInputError(f"early termination supports Linear and ungrouped Conv layers (got {module!r})")
    if bool((x < 0).any()):
        raise UserInputError(f"early termination needs non-negative inputs (after a ReLU); min input {float(x.min()):.3g}")
    rows = input_rows(module, x.detach().to(torch.float64))[0]
    weight, bias = _folded(module, bn)
    outputs = torch.empty(rows.shape[0], weight.shape[0], dtype=torch.float64)
    executed = torch.empty(rows.shape[0], weight.shape[0], dtype=torch.long)
    nonzero = torch.empty_like(executed)
    for m in range(weight.shape[0]):
        w = weight[m]
        pos = torch.nonzero(w > 0).flatten()
        neg = torch.nonzero(w < 0).flatten()
        neg = neg[torch.argsort(w[neg], stable=True)]  # most negative first
        for start in range(0, rows.shape[0], chunk):
            r = rows[start:start + chunk]
            partial = bias[m] + r[:, pos] @ w[pos]
            terms = r[:, neg] * w[neg]
            sums = torch.cat([partial[:, None], partial[:, None] + torch.cumsum(terms, dim=1)], dim=1)  # after 0..n_neg negatives
            negative = sums < 0
            stopped = negative.any(dim=1)
            j = torch.where(stopped, torch.argmax(negative.to(torch.int8), dim=1), torch.full_like(partial, len(neg), dtype=torch.long))
            executed[start:start + chunk, m] = torch.where(stopped, len(pos) + j, torch.full_like(j, w.numel()))
            nz_pos = (r[:, pos] != 0).sum(dim=1)
            nz_neg = torch.cat([torch.zeros(len(r), 1, dtype=torch.long), torch.cumsum(r[:, neg] != 0, dim=1)], dim=1)
            nonzero[start:start + chunk, m] = nz_pos + nz_neg.gather(1, j[:, None]).squeeze(1)
            outputs[start:start + chunk, m] = torch.where(stopped, torch.zeros_like(partial), sums[:, -1].clamp_min(0))
    return outputs, executed, nonzero


def _chains(model: nn.Module, x: Tensor) -> tuple[dict[str, tuple[nn.Module, nn.Module | None]], dict[str, Tensor]]:
    """Layers whose output reaches an ``nn.ReLU`` directly or through one BatchNorm, and their inputs on ``x``."""
    calls: list[tuple[str, nn.Module, Tensor, Tensor]] = []
    handles = [m.register_forward_hook(lambda mod, args, out, _n=n: calls.append((_n, mod, args[0], out)))
               for n, m in model.named_modules() if next(m.children(), None) is None and n]
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(training)
    chains, inputs = {}, {}
    for i, (name, module, inp, out) in enumerate(calls):
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) or getattr(module, "groups", 1) != 1:
            continue
        following = calls[i + 1:i + 3]
        bn = None
        if following and isinstance(following[0][1], (nn.BatchNorm1d, nn.BatchNorm2d)) and following[0][2] is out:
            bn, out, following = following[0][1], following[0][3], following[1:]
        if following and isinstance(following[0][1], nn.ReLU) and following[0][2] is out and name not in chains:
            chains[name] = (module, bn)
            inputs[name] = inp
    return chains, inputs


def early_termination(model: nn.Module, data: Any, samples: int | None = 64) -> dict[str, EarlyTermination]:
    """Measure SnaPEA exact-mode early termination for every eligible layer of ``model`` on ``data``.

    Eligible: a Linear/ungrouped Conv module whose output goes into an ``nn.ReLU``
    module (optionally through a BatchNorm) and whose input on ``data`` is non-negative.
    Keys are module paths (= the layer names of ``dnnergy.trace``). Units: MACs over
    the first ``samples`` inputs.
    """
    x = calibration_inputs(data, samples)
    chains, inputs = _chains(model, x)
    out = {}
    for name, (module, bn) in chains.items():
        if bool((inputs[name] < 0).any()):
            continue
        _, executed, nonzero = simulate_early_termination(module, inputs[name], bn)
        rows = input_rows(module, inputs[name].to(torch.float64))[0]
        weight = module.weight.detach().reshape(module.weight.shape[0], -1)
        all_nonzero = int(((rows != 0).to(torch.float64) @ (weight != 0).to(torch.float64).T).sum())
        out[name] = EarlyTermination(name, int(executed.numel() * weight.shape[1]), int(executed.sum()), all_nonzero, int(nonzero.sum()))
    return out


def with_early_termination(workload: Workload, stats: Mapping[str, EarlyTermination]) -> Workload:
    """``workload`` with each measured layer's ``mac_density`` scaled by :attr:`EarlyTermination.nonzero_fraction`.

    The estimator then performs ``macs * w_density * i_density * mac_density`` MACs,
    i.e. the non-zero MACs SnaPEA executes. Layers missing from ``workload`` raise
    :class:`UserInputError`.
    """
    names = {layer.name for layer in workload.layers}
    missing = set(stats) - names
    if missing:
        raise UserInputError(f"with_early_termination: workload {workload.name!r} has no layers {sorted(missing)}")
    return workload.replace_layers({n: {"mac_density": workload[n].mac_density * s.nonzero_fraction} for n, s in stats.items()})


@register_method("snapea", check=lambda *, samples: require_positive("snapea", samples=samples))
def snapea(model: nn.Module, context: CompressionContext, *, samples: int = 64) -> Outcome:
    """Akhlaghi et al. 2018 (SnaPEA, exact mode): stop a ReLU layer's accumulation once its output must be zero.

    Measured on the first ``samples`` training images; each eligible layer (Linear or
    ungrouped Conv into a ReLU, non-negative inputs) gets the fraction of its non-zero
    MACs still executed as a ``mac_density`` energy hint. Outputs are exact: accuracy is unchanged.
    """
    stats = early_termination(model, context.calibration(samples), samples=None)
    for name, stat in stats.items():
        module = model.get_submodule(name)
        hints = dict(getattr(module, HINTS_ATTRIBUTE, None) or {})
        hints["mac_density"] = stat.nonzero_fraction
        object.__setattr__(module, HINTS_ATTRIBUTE, hints)
    executed = sum(s.executed_nonzero for s in stats.values())
    total = sum(s.nonzero_macs for s in stats.values())
    summary = (f"{len(stats)} layer(s) terminate early: {executed / total:.1%} of their non-zero MACs run" if total
               else "no layer can terminate early")
    return Outcome(model, summary, (), {"executed_fraction": {n: s.nonzero_fraction for n, s in stats.items()}})

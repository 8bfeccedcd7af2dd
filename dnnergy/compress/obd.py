"""Optimal Brain Damage (LeCun, Denker and Solla, NeurIPS 1989).

The saliency of weight ``w_i`` is the loss increase predicted by a diagonal second-order
Taylor expansion around a trained minimum (gradient ~ 0)::

    s_i = 0.5 * h_ii * w_i^2,      h_ii = d^2 L / d w_i^2

and the weights with the smallest saliency are removed. Two ways to get ``h_ii``:

* ``"gauss_newton"`` (default, what LeCun et al. did with their "Levenberg-Marquardt
  approximation"): ``h_ii ~ sum_n J_ni^T H_n J_ni``, the diagonal of ``J^T H_out J`` with
  ``H_out`` the Hessian of the loss w.r.t. the network outputs of sample ``n``. Computed
  exactly (no sampling) with one vector-Jacobian product per sample and output, so it
  costs ``outputs`` backward passes per sample. It drops ``sum_c dL/dz_c * d^2 z_c / dw_i^2``;
  that term is zero for piecewise-linear networks (ReLU, max-pool, linear and conv
  layers: the output is piecewise linear in any single weight), where the Gauss-Newton
  diagonal **is** the exact Hessian diagonal.
* ``"exact"``: the true diagonal from one Hessian-vector product per weight
  (forward-over-reverse ``torch.func``); exact for any network, cost ``O(weights)``
  backward passes, so only for small layers.

Units: ``h_ii`` in loss units per squared weight unit; saliency in loss units (nats for
cross-entropy) for the mean loss over the given samples.

The registered method ``obd`` prunes the lowest-saliency weights along a sparsity
schedule with fine-tuning after each step (LeCun et al.'s "iterate to step 2"),
re-computing the saliencies on the current model at every step.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp, vjp, vmap

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method
from .schedule import prune_on_schedule, schedule_check, schedule_of
from .selection import lowest_score_masks, prunable_parameters
from .transforms import Masks

__all__ = ["hessian_diagonal", "obd_saliency", "obd_prune", "obd"]

Loss = Callable[[Tensor, Tensor], Tensor]
Method = Literal["gauss_newton", "exact"]


def hessian_diagonal(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    loss_fn: Loss = F.cross_entropy,
    layers: Sequence[str] | None = None,
    method: Method = "gauss_newton",
    batch_size: int = 128,
) -> dict[str, Tensor]:
    """Diagonal of the Hessian of the mean ``loss_fn(model(inputs), targets)`` w.r.t. prunable weights.

    ``loss_fn`` takes ``(outputs, targets)`` and returns the *mean* loss over the batch
    (``F.cross_entropy`` by default). ``method`` is ``"gauss_newton"`` (exact for ReLU
    networks, see module docstring) or ``"exact"``. The model runs in eval mode (its flag
    is restored). Returns ``{parameter name: tensor of the parameter's shape}``.
    Example: for a linear model with squared loss ``mean((w x - y)^2)``, ``h = 2 mean(x^2)``.
    """
    if method not in ("gauss_newton", "exact"):
        raise UserInputError(f"hessian_diagonal: method must be 'gauss_newton' or 'exact' (got {method!r})")
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise UserInputError(f"hessian_diagonal: need as many targets as inputs, at least one (got {len(inputs)}, {len(targets)})")
    chosen = {name: p.detach() for name, p in prunable_parameters(model, layers).items()}
    fixed = {name: t.detach() for name, t in [*model.named_parameters(), *model.named_buffers()] if name not in chosen}
    total = {name: torch.zeros_like(p) for name, p in chosen.items()}
    training = model.training
    model.eval()
    try:
        for xb, yb in zip(inputs.split(batch_size), targets.split(batch_size)):
            part = _gauss_newton(model, chosen, fixed, xb, yb, loss_fn) if method == "gauss_newton" else _exact(
                model, chosen, fixed, xb, yb, loss_fn)
            for name in total:
                total[name] += part[name] * (len(xb) / len(inputs))
    finally:
        model.train(training)
    return total


def _gauss_newton(model, chosen, fixed, x, y, loss_fn) -> dict[str, Tensor]:
    """Mean over the batch of ``sum_c (J_n^T f_nc)^2`` where ``H_out,n = sum_c f_nc f_nc^T``."""

    def out_hessian(z, t):  # Hessian of the per-sample loss w.r.t. the sample's outputs
        return torch.func.hessian(lambda zz: loss_fn(zz.unsqueeze(0), t.unsqueeze(0)))(z)

    def per_sample(xn, tn):
        def f(params):
            return functional_call(model, {**fixed, **params}, (xn.unsqueeze(0),)).squeeze(0)

        z, pullback = vjp(f, chosen)
        h = out_hessian(z.detach(), tn).reshape(z.numel(), z.numel())
        values, vectors = torch.linalg.eigh(h)
        factors = (vectors * values.clamp_min(0).sqrt()).T.reshape(z.numel(), *z.shape)  # rows f_c
        grads = vmap(pullback)(factors)[0]
        return {name: g.square().sum(0) for name, g in grads.items()}

    per = vmap(per_sample)(x, y)
    return {name: v.mean(0) for name, v in per.items()}


def _exact(model, chosen, fixed, x, y, loss_fn, chunk: int = 256) -> dict[str, Tensor]:
    """One Hessian-vector product per weight (basis vectors in chunks), keeping the diagonal entry."""

    def loss(params):
        return loss_fn(functional_call(model, {**fixed, **params}, (x,)), y)

    grad_fn = grad(loss)
    out = {}
    for name, p in chosen.items():
        diag = torch.empty(p.numel(), dtype=p.dtype)
        for start in range(0, p.numel(), chunk):
            idx = torch.arange(start, min(start + chunk, p.numel()))
            basis = torch.zeros(len(idx), p.numel(), dtype=p.dtype)
            basis[torch.arange(len(idx)), idx] = 1.0

            def hvp(v, _name=name):
                tangents = {k: (v.reshape(t.shape) if k == _name else torch.zeros_like(t)) for k, t in chosen.items()}
                return jvp(grad_fn, (chosen,), (tangents,))[1][_name].reshape(-1)

            diag[idx] = vmap(hvp)(basis)[torch.arange(len(idx)), idx]
        out[name] = diag.reshape(p.shape)
    return out


def obd_saliency(
    model: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    loss_fn: Loss = F.cross_entropy,
    layers: Sequence[str] | None = None,
    method: Method = "gauss_newton",
) -> dict[str, Tensor]:
    """OBD saliency ``s_i = 0.5 * h_ii * w_i^2`` (LeCun et al. 1989, Eq. 5) per prunable weight.

    Arguments as :func:`hessian_diagonal`. Units: loss units (nats for cross-entropy).
    Example: ``w = 0.5`` with ``h = 2`` has saliency ``0.5 * 2 * 0.25 = 0.25``.
    """
    diag = hessian_diagonal(model, inputs, targets, loss_fn=loss_fn, layers=layers, method=method)
    params = prunable_parameters(model, layers)
    return {name: 0.5 * h * params[name].detach().square() for name, h in diag.items()}


def obd_prune(
    model: nn.Module,
    sparsity: float,
    inputs: Tensor,
    targets: Tensor,
    *,
    scope: Literal["layer", "global"] = "layer",
    loss_fn: Loss = F.cross_entropy,
    layers: Sequence[str] | None = None,
    method: Method = "gauss_newton",
    masks: Masks | None = None,
) -> Masks:
    """Zero the ``round(sparsity * n)`` lowest-saliency weights in place and return the :class:`Masks`.

    ``inputs``/``targets`` are the samples the Hessian diagonal is averaged over (a few
    hundred training images suffice); ``scope`` as in magnitude pruning. LeCun et al.
    retrain after each deletion round: follow with ``dnnergy.train.fine_tune(model, data, hooks=[masks])``,
    or use the method ``obd``, which does both along a schedule.
    """
    saliency = obd_saliency(model, inputs, targets, loss_fn=loss_fn, layers=layers, method=method)
    masks = masks if masks is not None else Masks(model)
    masks.update(lowest_score_masks(saliency, sparsity, scope))
    return masks


@register_method("obd", strength="sparsity", check=schedule_check("obd", "samples"))
def obd(model: nn.Module, context: CompressionContext, *, sparsity: float | tuple[float, ...] = (0.5, 0.75, 0.9),
        scope: Literal["layer", "global"] = "layer", layers: tuple[str, ...] = (), samples: int = 256,
        hessian: Method = "gauss_newton") -> Outcome:
    """LeCun et al. 1989: remove the weights of least saliency 0.5 h_ii w_i^2, fine-tuning after each step.

    ``sparsity`` and ``scope`` as in ``magnitude``; the Hessian diagonal is averaged over
    the first ``samples`` training images with their labels (``hessian``:
    ``"gauss_newton"``, exact for ReLU networks, or ``"exact"``, small layers only).
    """
    selected = list(layers) or None
    schedule = schedule_of(sparsity, "obd")
    x = context.calibration(samples)
    y = context.data.train.tensors[1][: len(x)]

    def keep(m: nn.Module, s: float):
        return lowest_score_masks(obd_saliency(m, x, y, layers=selected, method=hessian), s, scope)

    return prune_on_schedule(model, context, schedule, keep, selected)

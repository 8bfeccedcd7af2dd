"""Low-rank decomposition (seed 001, "Decompose trained filters"): layers become chains of smaller layers.

Registered as the method ``lowrank``. Every ``nn.Linear`` is factorized by truncated SVD and
every ``nn.Conv2d`` (``groups == 1``) by Tucker-2 (Kim et al., ICLR 2016) or CP (Lebedev et
al., ICLR 2015), see :mod:`~dnnergy.compress.factorize`; each layer is swapped for its
factors with ``replace_module``, so the result is a physically smaller model that
``dnnergy.save``/``dnnergy.load`` rebuild, fine-tuned afterwards with the context's policy.

Ranks, per layer:

* ``criterion="keep"``: the smallest rank keeping ``keep`` of the squared singular values
  (SVD; Tucker-2: of each channel mode's unfolding, as a truncated HOSVD) or, for CP,
  the smallest rank (bisection) whose ALS fit keeps ``keep`` of the kernel's squared norm.
* ``criterion="energy"``: greedy on the context's energy objective, like structured
  pruning's energy criterion: each round tries lowering every layer to its next ``levels``
  entry (a keep fraction) and takes the trial with the most energy saved per accuracy
  lost on the selection split, within the budget, until ``energy_target`` of the original
  energy.

A layer whose factors would not have fewer weights than it (or that carries a weight
transform, or is grouped) stays as it is, with the reason in ``info["skipped"]``.
Decomposition cuts MACs but adds intermediate feature maps (the chain writes and reads
``R`` channels between its layers); ``info["layers"]`` gives, per decomposed layer,
weights, MACs, activation words (ifmap + ofmap of its layers) and energy before and after,
``info["energy_by_datum"]`` the energy split by datum and ``info["latency_s"]`` the
measured batch-1 CPU latency before and after, so a report shows which effect wins.
NB: Kim et al. choose Tucker ranks with variational Bayesian matrix factorization; the
energy threshold here is the simpler, common substitute.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from torch import nn

from ..errors import UserInputError
from ..metrics import LayerwiseObjective, model_latency
from ..workload import trace
from .context import CompressionContext
from .contract import Outcome, register_method
from .edits import replace_module
from .factorize import (
    CPConv2d,
    Factorization,
    SVDLinear,
    Tucker2Conv2d,
    conv_geometry,
    cp_conv,
    energy_rank,
    singular_values,
    svd_linear,
    tucker2_conv,
)
from .record import Step
from .transforms import Transforms

__all__ = ["LowRankConfig", "decompose", "lowrank"]

_FACTORS = (SVDLinear, Tucker2Conv2d, CPConv2d)
_CONVS = ("tucker2", "cp")
_CRITERIA = ("keep", "energy")


@dataclass(frozen=True, slots=True)
class LowRankConfig:
    """The method's parameters, checked: ``keep`` and each of ``levels`` in (0, 1], ``conv`` "tucker2" or "cp",
    ``criterion`` "keep" or "energy", ``energy_target`` in [0, 1], ``tolerance`` > 0, ``layers`` module paths."""

    keep: float = 0.9
    conv: str = "tucker2"
    criterion: str = "keep"
    levels: tuple[float, ...] = (0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)
    energy_target: float = 0.5
    tolerance: float = 1e-3
    layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        object.__setattr__(self, "layers", tuple(self.layers))
        for name, value in [("keep", self.keep), *(("levels", v) for v in self.levels)]:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise UserInputError(f"lowrank: {name} must be fractions in (0, 1] (got {value!r})")
        if not self.levels or list(self.levels) != sorted(self.levels, reverse=True):
            raise UserInputError(f"lowrank: levels must be a non-empty decreasing list of keep fractions (got {self.levels!r})")
        if self.conv not in _CONVS:
            raise UserInputError(f"lowrank: conv must be one of {', '.join(_CONVS)} (got {self.conv!r})")
        if self.criterion not in _CRITERIA:
            raise UserInputError(f"lowrank: criterion must be one of {', '.join(_CRITERIA)} (got {self.criterion!r})")
        if not isinstance(self.energy_target, (int, float)) or not 0.0 <= self.energy_target <= 1.0:
            raise UserInputError(f"lowrank: energy_target must be in [0, 1] (got {self.energy_target!r})")
        if not isinstance(self.tolerance, (int, float)) or not self.tolerance > 0:
            raise UserInputError(f"lowrank: tolerance must be > 0 (got {self.tolerance!r})")


def _weights(module: nn.Module) -> int:
    return module.weight.numel()


def _cp_by_keep(conv: nn.Conv2d, keep: float, seed: int, fits: dict[int, Factorization]) -> Factorization | str:
    """The smallest CP rank below break-even whose fit keeps ``keep`` (doubling, then bisection, over ranks;
    fits cached in ``fits``), or why there is none. NB: assumes the ALS fit grows with the rank."""
    m, c, kh, kw = conv.weight.shape
    high = (m * c * kh * kw - 1) // (m + c + kh + kw)  # the largest rank with fewer weights than the conv
    if high < 1:
        return "no CP rank has fewer weights than the layer"

    def fit(rank: int) -> Factorization:
        if rank not in fits:
            fits[rank] = cp_conv(conv, rank, seed=seed)
        return fits[rank]

    low, probe = 1, 1
    while probe < high and fit(probe).kept < keep - 1e-9:  # gallop up: small ranks are cheap to fit
        low, probe = probe + 1, 2 * probe
    high = min(probe, high)
    if fit(high).kept < keep - 1e-9:
        return f"no CP rank below break-even ({high}) keeps {keep:g} of the kernel's energy"
    while low < high:
        mid = (low + high) // 2
        low, high = (low, mid) if fit(mid).kept >= keep - 1e-9 else (mid + 1, high)
    return fit(low)


def decompose(module: nn.Module, keep: float, conv: str = "tucker2", *, seed: int = 0,
              cache: dict[int, Factorization] | None = None) -> Factorization | str:
    """``module`` (Linear or Conv2d) factorized at ranks keeping ``keep`` of its energy, or the reason it is not.

    Linear: truncated SVD; Conv2d: ``conv`` = ``"tucker2"`` or ``"cp"`` (``cache``: CP fits of this
    module by rank, reused across calls). A factorization
    without fewer weights than ``module`` is refused (the reason names its ranks). Example:
    a Linear whose weight has rank 3 gives an :class:`SVDLinear` of rank 3 at ``keep=1``.
    """
    if isinstance(module, nn.Linear):
        rank = energy_rank(singular_values(module.weight.detach().numpy()), keep)
        found: Factorization | str = svd_linear(module, rank)
    elif isinstance(module, nn.Conv2d):
        geometry = conv_geometry(module)
        if isinstance(geometry, str):
            return geometry
        if conv == "cp":
            found = _cp_by_keep(module, keep, seed, {} if cache is None else cache)
        else:
            w = module.weight.detach().double().numpy()
            r_out = energy_rank(singular_values(w.reshape(w.shape[0], -1)), keep)
            r_in = energy_rank(singular_values(np.moveaxis(w, 1, 0).reshape(w.shape[1], -1)), keep)
            found = tucker2_conv(module, (r_in, r_out))
    else:
        raise UserInputError(f"lowrank: cannot decompose a {type(module).__name__} (Linear and Conv2d only)")
    if isinstance(found, Factorization) and found.weights >= _weights(module):
        return f"ranks {list(found.ranks)} give {found.weights} weights, not fewer than {_weights(module)}"
    return found


def _candidates(model: nn.Module, layers: tuple[str, ...]) -> tuple[dict[str, nn.Module], dict[str, str]]:
    """Decomposable layers by path, and the Linear/Conv2d layers left alone with the reason."""
    transforms = Transforms.of(model, create=False)
    transformed = {t.parameter.rpartition(".")[0] for t in transforms} if transforms else set()
    inside = {f"{path}." for path, m in model.named_modules() if isinstance(m, _FACTORS)}
    found, skipped = {}, {}
    for path, module in model.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)):
            continue
        if not path:
            skipped["(model)"] = "the model itself is the layer; wrap it in a container"
        elif any(path.startswith(p) for p in inside):
            skipped[path] = "already a low-rank factor"
        elif path in transformed:
            skipped[path] = "carries a weight transform (mask, quantizer); decompose before it"
        else:
            found[path] = module
    if layers:
        unknown = sorted(set(layers) - set(found) - set(skipped))
        if unknown:
            raise UserInputError(f"lowrank: no Linear/Conv2d layers named {unknown}; layers: {sorted(found) + sorted(skipped)}")
        found = {p: m for p, m in found.items() if p in layers}
        skipped = {p: r for p, r in skipped.items() if p in layers}
    return found, skipped


def _put(model: nn.Module, path: str, factorization: Factorization) -> None:
    replace_module(model, path, factorization.kind, **factorization.kwargs).load_state_dict(factorization.module.state_dict())


def _by_keep(candidates: dict[str, nn.Module], config: LowRankConfig, seed: int,
             skipped: dict[str, str]) -> tuple[dict[str, Factorization], list[Step]]:
    plan, steps = {}, []
    for path, module in candidates.items():
        found = decompose(module, config.keep, config.conv, seed=seed)
        if isinstance(found, str):
            skipped[path] = found
            continue
        plan[path] = found
        steps.append(Step(len(steps), path, config.keep))
    return plan, steps


def _by_energy(model: nn.Module, candidates: dict[str, nn.Module], config: LowRankConfig, context: CompressionContext,
               energy_fn: Callable[[nn.Module], float], skipped: dict[str, str]) -> tuple[dict[str, Factorization], list[Step]]:
    cache: dict[tuple[str, float], Factorization | str] = {}
    cp_fits: dict[str, dict[int, Factorization]] = {p: {} for p in candidates}

    def at(path: str, level: float) -> Factorization | str:
        if (path, level) not in cache:
            cache[(path, level)] = decompose(candidates[path], level, config.conv, seed=context.seed, cache=cp_fits[path])
        return cache[(path, level)]

    # Many accept decisions: taken on the selection split, the budget on validation stays unseen.
    context = context.with_selection_reference(model)
    current, energy, accuracy = model, float(energy_fn(model)), context.selection_accuracy(model)
    target, floor, plan, steps, level = config.energy_target * energy, context.selection_floor(), {}, [], {p: -1 for p in candidates}
    while energy > target:
        best = None
        for path, module in candidates.items():
            limit = plan[path].weights if path in plan else _weights(module)
            for index in range(level[path] + 1, len(config.levels)):
                found = at(path, config.levels[index])
                if isinstance(found, str) or found.weights >= limit:
                    continue
                trial = copy.deepcopy(current)
                _put(trial, path, found)
                trial_energy, trial_accuracy = float(energy_fn(trial)), context.selection_accuracy(trial)
                if trial_accuracy < floor:
                    break  # lower levels of this layer only lose more
                if trial_energy >= energy:
                    continue  # more feature-map traffic than MACs saved: try a lower rank
                score = (energy - trial_energy) / max(accuracy - trial_accuracy, config.tolerance)
                if best is None or score > best[0]:
                    best = (score, path, index, trial, trial_energy, trial_accuracy)
                break
        if best is None:
            break
        _, path, index, current, energy, accuracy = best
        plan[path], level[path] = cache[(path, config.levels[index])], index
        steps.append(Step(len(steps), path, config.levels[index], accuracy))
    for path in candidates:
        if path not in plan:
            reasons = {r for lv in config.levels if isinstance(r := cache.get((path, lv)), str)}
            skipped[path] = "no level lowered the energy within the accuracy budget" + (
                f" ({'; '.join(sorted(reasons))})" if reasons else "")
    return plan, steps


def _owned(name: str, path: str, when: str) -> bool:
    """Whether module ``name`` is the layer at ``path`` (``"before"``) or one of its factors (``"after"``)."""
    return name == path if when == "before" else name.startswith(f"{path}.")


def _layer_info(before: nn.Module, after: nn.Module, plan: dict[str, Factorization], context: CompressionContext) -> dict:
    """Per decomposed layer: kind, ranks, kept energy and [before, after] weights, MACs, activation words, energy."""
    example, whens = context.examples[:1], ("before", "after")
    layers = {"before": trace(before, example).mac_layers(), "after": trace(after, example).mac_layers()}
    energy = context.energy
    by_module = ({"before": energy.by_module(before), "after": energy.by_module(after)}
                 if isinstance(energy, LayerwiseObjective) else None)
    out = {}
    for path, f in plan.items():
        counts = {when: [(layer.weights, layer.macs, layer.ifmap + layer.ofmap) for layer in layers[when]
                         if _owned(layer.module, path, when)] for when in whens}
        out[path] = {
            "kind": f.kind, "ranks": list(f.ranks), "kept": f.kept,
            **{key: [int(sum(c[i] for c in counts[w])) for w in whens]
               for i, key in enumerate(("weights", "macs", "activation_words"))},
            "energy": None if by_module is None else
            [float(sum(v for k, v in by_module[w].items() if _owned(k, path, w))) for w in whens],
        }
    return out


def _config(keep: float, conv: str, criterion: str, levels: tuple[float, ...], energy_target: float,
            tolerance: float, layers: tuple[str, ...]) -> LowRankConfig:
    return LowRankConfig(keep, conv, criterion, tuple(levels), energy_target, tolerance, tuple(layers))


@register_method("lowrank", strength="keep", check=_config)
def lowrank(model: nn.Module, context: CompressionContext, *, keep: float = 0.9, conv: Literal["tucker2", "cp"] = "tucker2",
            criterion: Literal["keep", "energy"] = "keep", levels: tuple[float, ...] = (0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5),
            energy_target: float = 0.5, tolerance: float = 1e-3, layers: tuple[str, ...] = ()) -> Outcome:
    """Low-rank decomposition: SVD for Linear layers, Tucker-2 or CP for convs, then fine-tuning.

    ``keep``: the fraction of each layer's squared singular values (CP: of its kernel's
    squared norm) the chosen ranks keep (criterion ``"keep"``). ``conv``: ``"tucker2"``
    (Kim et al. 2016: 1x1, kxk core, 1x1) or ``"cp"`` (Lebedev et al. 2015: 1x1, kx1 and 1xk
    depthwise, 1x1). ``criterion="energy"``: lower layers greedily through the keep
    fractions ``levels`` by energy saved per accuracy lost (the context's objective and
    budget) until ``energy_target`` of the original energy. ``layers``: module paths
    (default every Linear and ungrouped Conv2d). ``info`` reports per-layer weights, MACs,
    activation words and energy, energy by datum and CPU latency, before and after.
    """
    config = _config(keep, conv, criterion, levels, energy_target, tolerance, layers)
    candidates, skipped = _candidates(model, config.layers)
    original = copy.deepcopy(model)
    latency_before = model_latency(original, context.examples[:1], repeats=20, warmup=3)
    if config.criterion == "keep":
        plan, steps = _by_keep(candidates, config, context.seed, skipped)
    else:
        context.require("max_accuracy_drop", "lowrank (criterion 'energy')")
        energy_fn = context.require("energy", "lowrank (criterion 'energy')")
        plan, steps = _by_energy(original, candidates, config, context, energy_fn, skipped)
    for path, factorization in plan.items():
        _put(model, path, factorization)
    transforms = Transforms.of(model, create=False)
    if transforms:
        transforms.refresh(model)
    tuned = context.fine_tune(model) if plan else False
    info = {"criterion": config.criterion, "conv": config.conv, "layers": _layer_info(original, model, plan, context),
            "skipped": skipped, "latency_s": [latency_before, model_latency(model, context.examples[:1], repeats=20, warmup=3)]}
    if hasattr(context.energy, "report"):
        info["energy_by_datum"] = {"before": context.energy.report(original).by_datum(),
                                   "after": context.energy.report(model).by_datum()}
    weights = [sum(v["weights"][i] for v in info["layers"].values()) for i in (0, 1)]
    how = f"keep {config.keep:g}" if config.criterion == "keep" else "energy"
    summary = (f"{how} ({config.conv} for convs): {len(plan)} of {len(candidates)} layer(s) decomposed, "
               f"their weights {weights[0]:,} -> {weights[1]:,}" + (", fine-tuned" if tuned else ""))
    return Outcome(model, summary, steps, info)

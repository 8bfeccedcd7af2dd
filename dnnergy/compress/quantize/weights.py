"""Weight quantizers as weight transforms: each layer's weights snap to its scheme's levels.

A :class:`Quantizer` is a :class:`~dnnergy.compress.transforms.WeightTransform`: the
parameter holds the quantized values (so ``trace``, ``state_dict`` and any optimizer see
an ordinary model), and the transform hints ``w_bits`` to the energy model.

**Straight-through training (QAT).** The transform keeps full-precision *latent* weights
beside the parameter. The forward pass uses the quantized values; the optimizer step
moves the parameter by ``delta``; :meth:`Quantizer.apply` (run by the model's
:class:`~dnnergy.compress.transforms.Transforms` after every step) adds ``delta`` to the
latent weights and re-quantizes them. That is BinaryConnect's update (Courbariaux et al.
2015, Algorithm 1): gradients computed at the quantized weights update real-valued
ones. The gradient filter :meth:`Quantizer.grad` passes the gradient unchanged inside
the clipping range and zeroes it outside (the straight-through estimator, Bengio et al.
2013; Hubara et al. 2016). Scales computed from the weights (TWN, BWN, uniform ranges)
are recomputed from the latent weights after each step that moved them; TTQ's two
scales are learned from their own gradients.

Registered kinds (saved names): ``uniform``, ``dfp``, ``log``, ``ternary``, ``ttq``,
``binary``, ``bwn``. A reloaded quantizer keeps its saved scales, so a saved model
reproduces its outputs exactly; its latent weights start from the quantized ones.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Mapping

import torch
from torch import Tensor

from ...errors import UserInputError
from ..transforms import WeightTransform, register_transform
from . import levels

__all__ = ["Quantizer", "Uniform", "DynamicFixedPoint", "LogDomain", "Ternary", "TrainedTernary", "Binary", "BinaryWeights"]


class Quantizer(WeightTransform):
    """Base of the weight quantizers: latent weights, straight-through gradients, the ``w_bits`` hint.

    Subclasses set :attr:`bits` and implement :meth:`fit_scales` (choose scales from
    weights) and :meth:`levels` (quantize with the current scales); they may override
    :meth:`inside` (the straight-through range) and :meth:`scale_gradient`.
    """

    #: Learned scales are not recomputed from the weights after a step (TTQ).
    learned: ClassVar[bool] = False

    def __init__(self, parameter: str, bits: int):
        super().__init__(parameter)
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
            raise UserInputError(f"{type(self).__name__} for {parameter!r}: bits must be an int in [1, 32] (got {bits!r})")
        self.bits = bits
        self.latent: Tensor | None = None
        self._quantized: Tensor | None = None

    # -- what subclasses define ----------------------------------------------------------------
    def fit_scales(self, weights: Tensor) -> None:
        """Choose this quantizer's scales for ``weights`` (default: none to choose)."""

    @abstractmethod
    def levels(self, weights: Tensor) -> Tensor:
        """``weights`` rounded to this quantizer's levels with its current scales."""

    def inside(self, weights: Tensor) -> Tensor:
        """Where the straight-through gradient passes (bool, like ``weights``; default everywhere)."""
        return torch.ones_like(weights, dtype=torch.bool)

    def scale_gradient(self, grad: Tensor) -> Tensor:
        """The gradient the latent weights get (default: the straight-through one); TTQ rescales it."""
        return grad

    # -- the transform ---------------------------------------------------------------------------------
    def apply(self, param: Tensor) -> None:
        if self.latent is None or self._quantized is None or self.latent.shape != param.shape:
            self.latent = param.detach().clone()  # first application, or after a reload: the values are the latent ones
        else:
            delta = param.detach() - self._quantized
            if bool(delta.any()):
                self.latent.add_(delta)
                self.clip_latent(self.latent)
                self.after_update(self.latent)
        self._quantized = self.levels(self.latent)
        param.copy_(self._quantized)

    def after_update(self, latent: Tensor) -> None:
        """After a step moved the latent weights: recompute the scales (unless they are learned)."""
        if not self.learned:
            self.fit_scales(latent)

    def clip_latent(self, latent: Tensor) -> None:
        """Keep latent weights in range after a step (default: no clipping)."""

    def grad(self, grad: Tensor) -> Tensor:
        if self.latent is None or self.latent.shape != grad.shape:
            return grad
        return self.scale_gradient(grad) * self.inside(self.latent).to(grad.dtype)

    def hints(self) -> dict[str, Any]:
        return {"w_bits": self.bits}

    def permanent_hints(self) -> dict[str, Any]:
        return {"w_bits": self.bits}

    def fit(self, param: Tensor) -> None:
        """After channel removal: the remaining (quantized) values become the latent weights."""
        self.latent, self._quantized = param.detach().clone(), None
        self.fit_scales(self.latent)

    def restore(self, param: Tensor, original: Tensor) -> None:
        """Back to the latent weights when they exist (fine-tuned), else to the values before quantization."""
        param.copy_(self.latent if self.latent is not None and self.latent.shape == param.shape else original)

    # -- saving ----------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        return {"bits": self.bits}, {}

    @classmethod
    def from_state(cls, parameter: str, params: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> "Quantizer":
        new = cls.__new__(cls)
        Quantizer.__init__(new, parameter, int(params["bits"]))
        new._load(params, tensors)
        return new

    def _load(self, params: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> None:
        """Set the saved scales (subclasses)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parameter!r}, bits={self.bits})"


@register_transform("uniform")
class Uniform(Quantizer):
    """Uniform affine quantization to ``2**bits`` levels (``bits`` in 2..16), per tensor or per output channel.

    Example: weights in [-1, 3] at 2 bits take the levels -4/3, 0, 4/3, 8/3.
    Straight-through range: where the code is not clipped (:func:`~.levels.affine_inside`).
    """

    def __init__(self, parameter: str, weights: Tensor, bits: int = 8, *, per_channel: bool = False):
        super().__init__(parameter, bits)
        if not 2 <= bits <= 16:
            raise UserInputError(f"uniform quantizer for {parameter!r}: bits must be in [2, 16] (got {bits})")
        self.per_channel = per_channel
        self.fit_scales(weights.detach())

    def fit_scales(self, weights: Tensor) -> None:
        self.scale, self.offset = levels.affine_range(weights, self.bits, per_channel=self.per_channel)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.affine(weights, self.bits, self.scale, self.offset)

    def inside(self, weights: Tensor) -> Tensor:
        return levels.affine_inside(weights, self.bits, self.scale, self.offset)

    def state(self):
        return {"bits": self.bits, "per_channel": self.per_channel}, {"scale": self.scale, "offset": self.offset}

    def _load(self, params, tensors):
        self.per_channel = bool(params.get("per_channel", False))
        self.scale, self.offset = tensors["scale"].clone(), tensors["offset"].clone()


@register_transform("dfp")
class DynamicFixedPoint(Quantizer):
    """Dynamic fixed point (Ristretto): signed ``bits``-bit integers times ``2**-fl``, ``fl`` chosen per layer.

    Example: max|w| = 0.9 at 8 bits: ``fl = 7``, step 1/128. Straight-through range: where the code is not clipped.
    """

    def __init__(self, parameter: str, weights: Tensor, bits: int = 8):
        super().__init__(parameter, bits)
        if not 2 <= bits <= 16:
            raise UserInputError(f"dfp quantizer for {parameter!r}: bits must be in [2, 16] (got {bits})")
        self.fit_scales(weights.detach())

    def fit_scales(self, weights: Tensor) -> None:
        self.fl = levels.fraction_length(float(weights.abs().max()) if weights.numel() else 0.0, self.bits)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.fixed_point(weights, self.bits, self.fl)

    def inside(self, weights: Tensor) -> Tensor:
        return levels.fixed_point_inside(weights, self.bits, self.fl)

    def state(self):
        return {"bits": self.bits, "fl": self.fl}, {}

    def _load(self, params, tensors):
        self.fl = int(params["fl"])


@register_transform("log")
class LogDomain(Quantizer):
    """Power-of-two weights (Miyashita et al. 2016): a sign bit and ``bits - 1`` bits of exponent (one code is 0).

    The top exponent is ``round(log2 max|w|)``. Example: 4 bits, max|w| = 1: levels 0 and
    ``+-2**e`` for e = -6..0. Straight-through range: where the exponent is not clipped at the top.
    """

    def __init__(self, parameter: str, weights: Tensor, bits: int = 4):
        super().__init__(parameter, bits)
        if not 2 <= bits <= 8:
            raise UserInputError(f"log quantizer for {parameter!r}: bits must be in [2, 8] (got {bits})")
        self.fit_scales(weights.detach())

    def fit_scales(self, weights: Tensor) -> None:
        self.top = levels.log_exponent(float(weights.abs().max()) if weights.numel() else 0.0)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.power_of_two(weights, self.bits, self.top)

    def inside(self, weights: Tensor) -> Tensor:
        return levels.power_of_two_inside(weights, self.top)

    def state(self):
        return {"bits": self.bits, "top": self.top}, {}

    def _load(self, params, tensors):
        self.top = int(params["top"])


@register_transform("ternary")
class Ternary(Quantizer):
    """Ternary weight networks (Li and Liu 2016): ``{-alpha, 0, +alpha}`` with ``delta = 0.7 mean|W|`` (2 bits).

    Example: ``[1, -2, 0.1, 3]``: delta 1.0675, alpha 2.5, quantized ``[0, -2.5, 0, 2.5]``.
    """

    def __init__(self, parameter: str, weights: Tensor):
        super().__init__(parameter, 2)
        self.fit_scales(weights.detach())

    def fit_scales(self, weights: Tensor) -> None:
        self.delta, self.alpha = levels.ternary_threshold(weights)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.ternary(weights, self.delta, self.alpha)

    def state(self):
        return {"bits": 2, "delta": self.delta, "alpha": self.alpha}, {}

    def _load(self, params, tensors):
        self.delta, self.alpha = float(params["delta"]), float(params["alpha"])


@register_transform("ttq")
class TrainedTernary(Quantizer):
    """Trained ternary quantization (Zhu et al. 2017): ``{-W_n, 0, +W_p}``, ``delta = t max|W|``, learned scales.

    The scales start at the mean of the weights above ``delta`` (and of the magnitudes
    below ``-delta``); during training each follows its own gradient, the sum of the
    gradients of the weights it stands for (TTQ eq. 7), with an Adam step of rate
    ``scale_lr`` (betas 0.9, 0.999, as the fine-tuning default); the latent weights get
    the gradient times ``W_p`` / 1 / ``W_n`` in the three regions (eq. 8). NB: TTQ trains
    the scales with the network's optimizer; here they have their own Adam, because they
    are not parameters of the model (a plain SGD step on a sum over 400k weights diverges).
    """

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    learned = True

    def __init__(self, parameter: str, weights: Tensor, *, threshold: float = 0.05, scale_lr: float = 3e-4):
        super().__init__(parameter, 2)
        if not 0.0 <= threshold < 1.0:
            raise UserInputError(f"ttq quantizer for {parameter!r}: threshold must be in [0, 1) (got {threshold!r})")
        self.threshold, self.scale_lr = float(threshold), float(scale_lr)
        self._reset_optimizer()
        self.fit_scales(weights.detach())

    def _reset_optimizer(self) -> None:
        self._pending = [0.0, 0.0]
        self._moments = [[0.0, 0.0], [0.0, 0.0]]  # (first, second) per scale
        self._steps = 0

    def fit_scales(self, weights: Tensor) -> None:
        self.delta = self.threshold * (float(weights.abs().max()) if weights.numel() else 0.0)
        above, below = weights[weights > self.delta], weights[weights < -self.delta]
        self.positive = float(above.mean()) if above.numel() else 0.0
        self.negative = float(-below.mean()) if below.numel() else 0.0

    def levels(self, weights: Tensor) -> Tensor:
        return levels.trained_ternary(weights, self.delta, self.positive, self.negative)

    def scale_gradient(self, grad: Tensor) -> Tensor:
        latent = self.latent
        pos, neg = latent > self.delta, latent < -self.delta
        self._pending[0] += float(grad[pos].sum())
        self._pending[1] += float(-grad[neg].sum())  # d(-W_n)/dW_n = -1
        return torch.where(pos, grad * self.positive, torch.where(neg, grad * self.negative, grad))

    def after_update(self, latent: Tensor) -> None:
        """One Adam step of each scale on its accumulated gradient (scales stay >= 0)."""
        (b1, b2), self._steps = self.BETAS, self._steps + 1
        scales = [self.positive, self.negative]
        for i, grad in enumerate(self._pending):
            m, v = self._moments[i]
            m, v = b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad * grad
            self._moments[i] = [m, v]
            m_hat, v_hat = m / (1 - b1 ** self._steps), v / (1 - b2 ** self._steps)
            scales[i] = max(scales[i] - self.scale_lr * m_hat / (v_hat ** 0.5 + self.EPS), 0.0)
        self.positive, self.negative = scales
        self._pending = [0.0, 0.0]

    def state(self):
        return ({"bits": 2, "threshold": self.threshold, "scale_lr": self.scale_lr, "delta": self.delta,
                 "positive": self.positive, "negative": self.negative}, {})

    def _load(self, params, tensors):
        self.threshold, self.scale_lr, self.delta = float(params["threshold"]), float(params["scale_lr"]), float(params["delta"])
        self.positive, self.negative = float(params["positive"]), float(params["negative"])
        self._reset_optimizer()


@register_transform("binary")
class Binary(Quantizer):
    """BinaryConnect (Courbariaux et al. 2015): ``+H`` if ``w >= 0`` else ``-H`` (1 bit), one fixed ``H`` per layer.

    Latent weights are clipped to ``[-clip, clip]`` and the straight-through gradient
    passes only inside it (BinaryConnect clips at 1 with ``H = 1``). NB: BinaryConnect's
    networks have batch norm, which absorbs the weight scale; a network without it (the
    LeNets) needs ``H`` near the weights' own size, so ``H`` is the layer's ``mean|W|``
    at the time of quantization, fixed afterwards, and ``clip`` defaults to ``max|W|``.
    """

    def __init__(self, parameter: str, weights: Tensor, *, scale: float | None = None, clip: float | None = None):
        super().__init__(parameter, 1)
        weights = weights.detach()
        self.scale = float(levels.mean_abs(weights, per_channel=False)) if scale is None else float(scale)
        self.clip = float(weights.abs().max()) if clip is None else float(clip)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.binary(weights, self.scale)

    def inside(self, weights: Tensor) -> Tensor:
        return weights.abs() <= self.clip

    def clip_latent(self, latent: Tensor) -> None:
        latent.clamp_(-self.clip, self.clip)

    def state(self):
        return {"bits": 1, "scale": self.scale, "clip": self.clip}, {}

    def _load(self, params, tensors):
        self.scale, self.clip = float(params["scale"]), float(params["clip"])


@register_transform("bwn")
class BinaryWeights(Quantizer):
    """Binary-weight networks (Rastegari et al. 2016): ``alpha_c sign(W_c)``, ``alpha_c = mean|W_c|`` per output filter.

    Example: a filter ``[0.5, -1.5]`` becomes ``[1, -1]`` (alpha 1). The scales are recomputed
    from the latent weights after every step (XNOR-Net's training); the straight-through
    gradient is the identity.
    """

    def __init__(self, parameter: str, weights: Tensor):
        super().__init__(parameter, 1)
        self.fit_scales(weights.detach())

    def fit_scales(self, weights: Tensor) -> None:
        self.alpha = levels.mean_abs(weights, per_channel=True)

    def levels(self, weights: Tensor) -> Tensor:
        return levels.binary(weights, self.alpha)

    def state(self):
        return {"bits": 1}, {"alpha": self.alpha}

    def _load(self, params, tensors):
        self.alpha = tensors["alpha"].clone()

"""Quantization: weights and activations on fewer bits, and the registered method ``quantize``.

* :mod:`~dnnergy.compress.quantize.levels`: the schemes' levels as pure functions.
* :mod:`~dnnergy.compress.quantize.weights`: weight quantizers as weight transforms
  (``w_bits`` hints, latent weights and straight-through gradients for QAT).
* :mod:`~dnnergy.compress.quantize.activations`: layers that quantize their inputs
  (``replace_module`` edits; ``i_bits``/``o_bits`` hints).
* :mod:`~dnnergy.compress.quantize.method`: the method ``quantize`` (post-training with
  calibration, ``qat``, mixed precision by hand or by ``search``).

See docs/quantization.md.
"""

from .activations import (
           INPUT_SCHEMES,
           QuantizedConv2d,
           QuantizedLinear,
           execution_order,
           quantize_inputs,
)
from .method import SCHEMES, plan_widths, quantize, quantize_model
from .weights import (
           Binary,
           BinaryWeights,
           DynamicFixedPoint,
           LogDomain,
           Quantizer,
           Ternary,
           TrainedTernary,
           Uniform,
)

__all__ = ["SCHEMES", "INPUT_SCHEMES", "quantize", "quantize_model", "plan_widths", "quantize_inputs", "execution_order",
           "Quantizer", "Uniform", "DynamicFixedPoint", "LogDomain", "Ternary", "TrainedTernary", "Binary", "BinaryWeights",
           "QuantizedLinear", "QuantizedConv2d"]

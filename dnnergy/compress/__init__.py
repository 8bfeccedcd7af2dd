"""Compression methods on one contract: ``method(model, context, **params) -> Result(model, record)``.

* :mod:`~dnnergy.compress.contract`: :func:`register_method`, :func:`list_methods`,
  :func:`get_method`, :func:`run` (one method or a chain such as ``"magnitude,structured"``).
* :mod:`~dnnergy.compress.context`: :class:`CompressionContext` (data, evaluation, budget,
  fine-tuning policy, energy objective, example, seed, progress).
* :mod:`~dnnergy.compress.record`: :class:`Record` and :class:`Step`, plain data.
* :mod:`~dnnergy.compress.transforms`: reversible weight transforms (:class:`Masks`).
* :mod:`~dnnergy.compress.edits`: the structural edit log a compressed model replays from.
* Methods, one module each: ``magnitude``, ``obd``, ``balanced`` (and ``simd``), ``eap``,
  ``structured``, ``activation``, ``snapea``, ``quantize`` (a package), ``sharing`` (``share``),
  ``deep_compression``, ``lowrank`` (factor layers in ``factorize``), ``distill``;
  ``eliminate`` and ``netadapt`` live with their searches in :mod:`dnnergy.explore`. Shared machinery: ``selection``, ``schedule``,
  ``reconstruct``, ``importance``, ``removal``, ``sparse``.

See docs/compression.md and docs/compression-structured.md.
"""

from .context import CompressionContext, Event
from .contract import (
    METHODS,
    Method,
    Outcome,
    Param,
    Result,
    check_params,
    get_method,
    list_methods,
    parse_chain,
    register_method,
    run,
)
from .edits import EditLog, register_module, replay
from .record import Record, Step
from .selection import PRUNABLE_MODULES, LayerSparsity, lowest_score_masks, prunable_parameters, weight_sparsity
from .transforms import Mask, Masks, Transforms, WeightTransform, register_transform

# Every module below registers its method(s) when imported.
from . import activation, balanced, eap, magnitude, obd, snapea, structured  # noqa: E402,F401  isort: skip
from . import quantize  # noqa: E402,F401  isort: skip
from . import distill, lowrank  # noqa: E402,F401  isort: skip
from . import deep_compression, sharing  # noqa: E402,F401  isort: skip
# The search-driven methods (eliminate, netadapt) register from dnnergy.explore, where their searches live.
from .. import explore  # noqa: E402,F401  isort: skip

__all__ = [
    # the contract
    "CompressionContext",
    "Event",
    "Outcome",
    "Result",
    "Record",
    "Step",
    "Method",
    "Param",
    "METHODS",
    "register_method",
    "list_methods",
    "get_method",
    "parse_chain",
    "check_params",
    "run",
    # state a compressed model carries
    "WeightTransform",
    "Transforms",
    "register_transform",
    "Mask",
    "Masks",
    "EditLog",
    "register_module",
    "replay",
    # what pruning acts on
    "PRUNABLE_MODULES",
    "LayerSparsity",
    "prunable_parameters",
    "weight_sparsity",
    "lowest_score_masks",
]

"""Deep Compression (Han, Mao and Dally, ICLR 2016): prune -> share weights -> Huffman-code, one method.

The pipeline of the paper's Fig. 1, each stage through the registry:

1. **prune** with any registered pruning method taking a ``sparsity`` (default
   ``magnitude``: Han et al. 2015's prune / retrain schedule), fine-tuning after each step;
2. **share** (:mod:`~dnnergy.compress.sharing`): per-layer k-means on the surviving
   weights with linear centroid initialisation, centroids fine-tuned with the summed
   gradients of their members;
3. **code**: each shared layer is stored as Huffman-coded cluster indices and Huffman-coded
   relative indices (``width`` bits, filler zeros when a gap overflows) plus its float32
   codebook (:mod:`dnnergy.coding`). :func:`dnnergy.save` writes exactly these streams
   (not the dense weights) and :func:`dnnergy.load` decodes them.

``info["sizes"]`` splits the stored bits into weights (cluster indices), indices (relative
positions), codebooks and the float32 biases, next to the paper's fixed-width accounting
before Huffman; the energy estimate prices DRAM weight traffic from the coded bits
(``w_coded_bits`` hints) and MACs by the non-zero weights. Published: LeNet-300-100
1070 KB -> 27 KB (40x), LeNet-5 1720 KB -> 44 KB (39x), no accuracy loss.
CLI: ``dnnergy compress lenet300 --method deep-compression --sparsity 0.92``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from torch import nn

from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, get_method, register_method
from .schedule import schedule_of

__all__ = ["deep_compression", "stored_sizes"]


def stored_sizes(model: nn.Module, shared: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Bits of ``model`` as Deep Compression stores it, from the share stage's per-layer ``shared`` info.

    Keys (bits): ``weights`` (Huffman-coded cluster indices), ``indices`` (Huffman-coded
    relative indices), ``codebooks`` (float32 centroids), ``other`` (every parameter and
    buffer not shared, e.g. biases, at 32 bits), ``total``; ``paper_fixed`` is the same
    model with fixed-width indices (no Huffman); ``dense`` is every parameter at 32 bits,
    and ``ratio`` = ``dense / total``. Example: LeNet-300-100 dense is 266,610 x 32 bits
    = 1,066,440 bytes, the paper's "1070 KB".
    """
    dense = sum(p.numel() for p in model.parameters()) * 32
    shared_numel = sum(p.numel() for name, p in model.named_parameters() if name in shared)
    other = dense - shared_numel * 32 + sum(b.numel() * b.element_size() * 8 for b in model.buffers())
    weights = sum(layer["indices"] for layer in shared.values())
    indices = sum(layer["positions"] for layer in shared.values())
    codebooks = sum(layer["codebook"] for layer in shared.values())
    total = weights + indices + codebooks + other
    fixed = sum(layer["paper_fixed"] for layer in shared.values()) + other
    return {"weights": weights, "indices": indices, "codebooks": codebooks, "other": other, "total": total,
            "paper_fixed": fixed, "dense": dense, "ratio": dense / total if total else float("inf")}


def _pruner(prune: str):
    method = get_method(prune)
    if not method.takes("sparsity"):
        raise UserInputError(f"deep_compression: prune must name a pruning method with a sparsity parameter "
                             f"(got {prune!r}, which takes {[p.name for p in method.params]})")
    return method


def _check(*, prune: str, sparsity: float | Sequence[float], scope: str, bits: int, conv_bits: int, width: int,
           conv_width: int, **_: object) -> None:
    _pruner(prune)
    schedule_of(sparsity, "deep_compression")
    if scope not in ("layer", "global"):
        raise UserInputError(f"deep_compression: scope must be 'layer' or 'global' (got {scope!r})")
    get_method("share").check({"bits": bits, "conv_bits": conv_bits, "width": width, "conv_width": conv_width})


@register_method("deep_compression", strength="sparsity", check=_check, aliases=("deep-compression",))
def deep_compression(model: nn.Module, context: CompressionContext, *, prune: str = "magnitude",
                     sparsity: float | tuple[float, ...] = (0.5, 0.75, 0.9, 0.92), scope: Literal["layer", "global"] = "global",
                     bits: int = 5, conv_bits: int = 8, width: int = 5, conv_width: int = 8, ucnn: bool = False) -> Outcome:
    """Han et al. 2016: prune (retraining), k-means weight sharing (centroids fine-tuned), Huffman-coded storage.

    ``prune``: a registered pruning method taking ``sparsity`` (and ``scope`` if it has
    one); ``sparsity``: its fraction of zero weights or schedule; ``bits``/``conv_bits``:
    cluster-index bits of Linear / Conv layers (Han et al.: 5 and 8);
    ``width``/``conv_width``: relative-index bits (Han et al.: 5 and 8); ``ucnn``: price
    UCNN's multiply reuse in the energy estimate.
    """
    pruner = _pruner(prune)
    prune_params = {"sparsity": sparsity, **({"scope": scope} if pruner.takes("scope") else {})}
    pruned = pruner.impl(model, context, **prune_params)
    shared = get_method("share").impl(pruned.model, context, bits=bits, conv_bits=conv_bits, width=width,
                                      conv_width=conv_width, ucnn=ucnn)
    sizes = stored_sizes(shared.model, shared.info["layers"])
    steps = [*pruned.steps, *(replace(s, iteration=len(pruned.steps) + s.iteration, layer="share") for s in shared.steps)]
    summary = (f"{prune}: {pruned.summary}; shared: {shared.summary}; stored {sizes['total'] / 8 / 1024:.1f} KiB "
               f"({sizes['ratio']:.1f}x smaller than 32-bit dense)")
    return Outcome(shared.model, summary, steps, {"prune": dict(pruned.info), "share": dict(shared.info), "sizes": sizes})

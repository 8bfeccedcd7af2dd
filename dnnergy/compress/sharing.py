"""k-means weight sharing (Han, Mao and Dally, "Deep Compression", ICLR 2016, Sec. 3).

The non-zero weights of one layer are clustered into ``2**bits`` values by 1-D k-means
(Lloyd's iterations) started from centroids spaced *linearly* between the smallest and
the largest weight (Han et al. found linear initialisation best: it keeps the rare large
weights). Every non-zero weight is then replaced by its centroid, so the layer is a
codebook plus one ``bits``-bit cluster index per non-zero; exact zeros (pruned weights)
stay zero. During fine-tuning the gradient of a centroid is the **sum** of the gradients
of its members (Han et al. Eq. 3, Fig. 3): :class:`SharedWeights` hands every member that
summed gradient, so any element-wise optimizer (SGD, Adam, weight decay) moves all members
of a cluster alike, and after each step the transform reads the new centroids back from
the parameter and writes them to every member again.

The transform also holds the layer's *stored form*: its saved state
(:meth:`SharedWeights.state`) is the Huffman-coded cluster indices and relative indices
(:mod:`dnnergy.coding`), not the dense weights, and its energy hints say how many bits
that is (``w_coded_bits``: what the weights cost on their way from DRAM).

UCNN (Hegde et al., ISCA 2018; seed 001 "exploit weight statistics"): once a filter holds
few distinct values, the inputs that share a weight can be summed first and multiplied
once. :func:`reuse_counts` counts the multiplies (and weight reads) left per layer;
``ucnn=True`` passes that fraction to the energy model as ``mult_density``.

The method ``share`` (``dnnergy compress MODEL --method share --bits 5``) shares every
Linear/Conv weight and fine-tunes the centroids with the context's policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..coding import (
    HuffmanStream,
    from_relative,
    huffman_decode,
    huffman_encode,
    to_relative,
)
from ..errors import UserInputError
from .context import CompressionContext
from .contract import Outcome, register_method, require_positive
from .record import Step
from .selection import prunable_parameters
from .transforms import Transforms, WeightTransform, register_transform

__all__ = [
    "CODEBOOK_BITS",
    "LayerReuse",
    "SharedWeights",
    "kmeans_1d",
    "linear_centroids",
    "reuse_counts",
    "share",
    "share_weights",
    "shared_summary",
]

#: Bits of one codebook entry as stored (float32), as Han et al. count them.
CODEBOOK_BITS = 32


def linear_centroids(values: np.ndarray, clusters: int) -> np.ndarray:
    """``clusters`` centroids spaced evenly from ``values.min()`` to ``values.max()`` (float64).

    Example: ``linear_centroids(np.array([-1.0, 0.2, 3.0]), 3).tolist() == [-1.0, 1.0, 3.0]``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise UserInputError("weight sharing: no non-zero weights to cluster")
    return np.linspace(values.min(), values.max(), clusters)


def kmeans_1d(values: np.ndarray, centroids: np.ndarray, *, iterations: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means in one dimension from the given initial ``centroids``: ``(centroids, assignment)``.

    Each step assigns every value to its nearest centroid (the lower index on a tie) and
    moves each centroid to the mean of its members; a centroid without members stays
    where it is. Stops when no assignment changes or after ``iterations`` steps. The same
    iterations as ``sklearn.cluster.KMeans(init=centroids, n_init=1, algorithm="lloyd")``.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    centres = np.asarray(centroids, dtype=np.float64).copy()
    assign = None
    for _ in range(iterations):
        new = _nearest(values, centres)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        sums = np.bincount(assign, weights=values, minlength=centres.size)
        counts = np.bincount(assign, minlength=centres.size)
        centres = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return centres, assign


def _nearest(values: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of each value (the lower index on a tie), in O(n log k)."""
    order = np.argsort(centres, kind="stable")
    ordered = centres[order]
    midpoints = (ordered[1:] + ordered[:-1]) / 2
    return order[np.searchsorted(midpoints, values, side="left")]


@dataclass(frozen=True, slots=True)
class Coded:
    """A shared layer's stored form: Huffman-coded cluster indices (0 = filler zero, ``c + 1`` = cluster ``c``)
    and relative indices (runs of zeros, ``width`` bits each before coding); sizes in bits."""

    indices: HuffmanStream
    runs: HuffmanStream
    width: int

    @property
    def entries(self) -> int:
        """Stored entries: non-zeros plus filler zeros."""
        return self.indices.length


@register_transform("shared")
class SharedWeights(WeightTransform):
    """Replace the non-zeros of ``parameter`` by their centroids; zeros stay zero.

    ``positions`` (flat indices of the non-zeros, increasing), ``assign`` (cluster of each,
    in ``[0, len(centroids))``) and ``centroids`` (float32) define the values; ``width``
    is the relative-index width used when the layer is stored. Energy hints:
    ``w_density`` (non-zero fraction) and ``w_coded_bits`` (coded indices + coded relative
    indices + the float32 codebook, in bits); with ``ucnn=True`` also ``mult_density``.
    Saved as the coded streams (:attr:`encodes_values`: the file does not store the
    dense parameter).
    """

    #: The saved state rebuilds the parameter's values, so a file need not store them densely.
    encodes_values: ClassVar[bool] = True

    def __init__(self, parameter: str, centroids: Tensor, assign: Tensor, positions: Tensor, *, shape: Sequence[int],
                 width: int = 5, ucnn: bool = False):
        super().__init__(parameter)
        self.centroids = torch.as_tensor(centroids, dtype=torch.float32).clone().reshape(-1)
        self.assign = torch.as_tensor(assign, dtype=torch.int64).clone().reshape(-1)
        self.positions = torch.as_tensor(positions, dtype=torch.int64).clone().reshape(-1)
        self.shape = tuple(int(s) for s in shape)
        self.width = int(width)
        self.ucnn = bool(ucnn)
        numel = int(np.prod(self.shape)) if self.shape else 1
        if self.assign.shape != self.positions.shape:
            raise UserInputError(f"SharedWeights {parameter!r}: one cluster per position expected "
                                 f"({self.assign.numel()} clusters, {self.positions.numel()} positions)")
        if self.positions.numel() and (self.positions.min() < 0 or self.positions.max() >= numel
                                       or (self.positions.diff() <= 0).any()):
            raise UserInputError(f"SharedWeights {parameter!r}: positions must be increasing flat indices below {numel}")
        if self.assign.numel() and (self.assign.min() < 0 or self.assign.max() >= self.centroids.numel()):
            raise UserInputError(f"SharedWeights {parameter!r}: clusters must index the {self.centroids.numel()} centroids")
        self._stepped = False  # a gradient went through since the last apply: read the centroids back
        self._coded: Coded | None = None

    @property
    def clusters(self) -> int:
        """Entries of the codebook."""
        return int(self.centroids.numel())

    def values(self) -> Tensor:
        """The dense weight tensor this transform writes (float32, :attr:`shape`)."""
        out = torch.zeros(int(np.prod(self.shape)) if self.shape else 1)
        out[self.positions] = self.centroids[self.assign]
        return out.reshape(self.shape)

    # -- the transform --------------------------------------------------------------------
    def apply(self, param: Tensor) -> None:
        if tuple(param.shape) != self.shape:
            raise UserInputError(f"SharedWeights: {self.parameter!r} has shape {tuple(param.shape)}, the codebook was "
                                 f"built for {self.shape}")
        flat = param.view(-1)
        if self._stepped:  # every member moved alike: their mean is the new centroid
            members = flat[self.positions].detach().to(torch.float64).cpu()
            sums = torch.zeros(self.clusters, dtype=torch.float64).index_add_(0, self.assign, members)
            counts = torch.bincount(self.assign, minlength=self.clusters)
            self.centroids = torch.where(counts > 0, sums / counts.clamp(min=1), self.centroids.double()).float()
            self._stepped = False
        flat.zero_()
        flat[self.positions.to(param.device)] = self.centroids[self.assign].to(device=param.device, dtype=param.dtype)

    def grad(self, grad: Tensor) -> Tensor:
        """Each member gets its cluster's summed gradient (Han et al. Eq. 3); zeros get none."""
        flat = grad.reshape(-1)
        positions, assign = self.positions.to(grad.device), self.assign.to(grad.device)
        sums = torch.zeros(self.clusters, dtype=grad.dtype, device=grad.device).index_add_(0, assign, flat[positions])
        out = torch.zeros_like(flat)
        out[positions] = sums[assign]
        self._stepped = True
        return out.view_as(grad)

    def hints(self) -> dict[str, Any]:
        numel = int(np.prod(self.shape)) if self.shape else 1
        hints: dict[str, Any] = {"w_density": self.positions.numel() / numel, "w_coded_bits": self.stored_bits()["total"]}
        if self.ucnn:
            hints["mult_density"] = reuse_counts(self).mult_density
        return hints

    # -- the stored form ----------------------------------------------------------------------
    def coded(self) -> Coded:
        """The Huffman-coded cluster indices and relative indices (computed once; the clusters never change)."""
        if self._coded is None:
            runs, filler = to_relative(self.positions.numpy(), self.width)
            symbols = np.zeros(runs.size, np.int64)
            symbols[~filler] = self.assign.numpy() + 1
            self._coded = Coded(huffman_encode(symbols, self.clusters + 1), huffman_encode(runs, 1 << self.width), self.width)
        return self._coded

    def stored_bits(self) -> dict[str, int]:
        """Bits of the stored layer, Huffman-coded: ``indices`` (cluster indices), ``positions`` (relative
        indices), ``codebook`` (float32 centroids) and their ``total``; ``paper_fixed`` is Han et al.'s
        fixed-width accounting before Huffman: entries x (``bits`` + ``width``) + codebook."""
        coded = self.coded()
        codebook = self.clusters * CODEBOOK_BITS
        bits = max(1, int(np.ceil(np.log2(self.clusters + 1))))
        return {"indices": coded.indices.bits, "positions": coded.runs.bits, "codebook": codebook,
                "total": coded.indices.bits + coded.runs.bits + codebook,
                "paper_fixed": coded.entries * (bits + self.width) + codebook}

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Plain params and three tensors: ``centroids`` (float32), ``counts`` (the cluster-index counts, then the
        relative-index counts; int16 when they fit, else int32) and ``data`` (the two Huffman payloads, byte-aligned,
        one after the other). The dense values are not part of it."""
        coded = self.coded()
        counts = np.concatenate([coded.indices.counts, coded.runs.counts])
        small = counts.max(initial=0) < np.iinfo(np.int16).max
        params = {"shape": list(self.shape), "width": self.width, "ucnn": self.ucnn,
                  "index_bits": coded.indices.bits, "run_bits": coded.runs.bits}
        tensors = {"centroids": self.centroids,
                   "counts": torch.from_numpy(counts.astype(np.int16 if small else np.int32)),
                   "data": torch.from_numpy(np.concatenate([coded.indices.data, coded.runs.data]))}
        return params, tensors

    @classmethod
    def from_state(cls, parameter: str, params: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> SharedWeights:
        """Decode the saved streams back into positions and clusters."""
        clusters = tensors["centroids"].numel()
        counts, data = tensors["counts"].numpy().astype(np.int64), tensors["data"].numpy()
        split = (params["index_bits"] + 7) // 8
        if counts.size != clusters + 1 + (1 << params["width"]) or data.size < split:
            raise UserInputError(f"SharedWeights {parameter!r}: saved streams do not fit {clusters} clusters and "
                                 f"{params['width']}-bit relative indices")
        indices = HuffmanStream(counts[: clusters + 1], data[:split], params["index_bits"])
        runs = HuffmanStream(counts[clusters + 1:], data[split:], params["run_bits"])
        symbols, gaps = huffman_decode(indices), huffman_decode(runs)
        if symbols.size != gaps.size:
            raise UserInputError(f"SharedWeights {parameter!r}: {symbols.size} cluster indices for {gaps.size} relative indices")
        filler = symbols == 0
        positions = from_relative(gaps, filler)
        shared = cls(parameter, tensors["centroids"], torch.from_numpy(symbols[~filler] - 1), torch.from_numpy(positions),
                     shape=params["shape"], width=params["width"], ucnn=params.get("ucnn", False))
        shared._coded = Coded(indices, runs, shared.width)
        return shared

    def __repr__(self) -> str:
        return f"SharedWeights({self.parameter!r}, {self.clusters} clusters, {self.positions.numel()} non-zeros)"


def share_weights(model: nn.Module, *, bits: int = 5, conv_bits: int = 8, width: int = 5, conv_width: int = 8,
                  layers: Sequence[str] | None = None, ucnn: bool = False, iterations: int = 300) -> dict[str, SharedWeights]:
    """Share the non-zero weights of every Linear/Conv layer of ``model`` in place; returns the transforms by parameter.

    Linear layers get ``2**bits`` clusters and ``width``-bit relative indices, convolutions
    ``2**conv_bits`` and ``conv_width`` (Han et al.'s LeNet choices: 8 bits conv, 5 bits
    FC, relative indices 8 bits conv and 5 bits FC). Transforms already attached (pruning
    masks) are made permanent first: their zeros are what sharing keeps at zero, and the
    file then stores only the coded layers. Clusters left empty by k-means are dropped
    from the codebook. A layer with no non-zero weight is skipped.
    """
    require_positive("share", bits=bits, conv_bits=conv_bits, width=width, conv_width=conv_width, iterations=iterations)
    existing = Transforms.of(model, create=False)
    if existing is not None and len(existing):
        existing.make_permanent()
    transforms = Transforms.of(model)
    shared = {}
    for name, param in prunable_parameters(model, layers).items():
        conv = param.dim() > 2
        weights = param.detach().reshape(-1).cpu()
        positions = torch.nonzero(weights, as_tuple=True)[0]
        if positions.numel() == 0:
            continue
        values = weights[positions].double().numpy()
        clusters = 1 << (conv_bits if conv else bits)
        centres, assign = kmeans_1d(values, linear_centroids(values, clusters), iterations=iterations)
        used, assign = np.unique(assign, return_inverse=True)  # an empty cluster costs a codebook entry for nothing
        centres = centres[used]
        shared[name] = transforms.add(SharedWeights(name, torch.from_numpy(centres), torch.from_numpy(assign), positions,
                                                    shape=tuple(param.shape), width=conv_width if conv else width, ucnn=ucnn))
    return shared


@dataclass(frozen=True, slots=True)
class LayerReuse:
    """UCNN-style reuse in one layer: ``nonzeros`` multiplies per output position without reuse, ``multiplies``
    with inputs summed per distinct weight value of each filter first (weight reads alike)."""

    name: str
    nonzeros: int
    multiplies: int

    @property
    def mult_density(self) -> float:
        """Fraction of the non-zero-weight multiplies (and weight reads) that remain, in [0, 1]."""
        return self.multiplies / self.nonzeros if self.nonzeros else 1.0


def reuse_counts(shared: SharedWeights) -> LayerReuse:
    """Multiplies per output position of a shared layer with and without UCNN's factorisation.

    Each output channel (a row of a Linear weight, a filter ``C x R x S`` of a convolution)
    multiplies each input by its weight; inputs that share a weight value can be added
    first, so the filter needs one multiply per *distinct* non-zero value. Example: a
    filter with values ``[a, b, a, a]`` needs 2 multiplies instead of 4.
    """
    rows = shared.positions // (int(np.prod(shared.shape[1:])) if len(shared.shape) > 1 else 1)
    pairs = torch.unique(rows * shared.clusters + shared.assign)
    return LayerReuse(shared.parameter, int(shared.positions.numel()), int(pairs.numel()))


def _share_check(*, bits: int, conv_bits: int, width: int, conv_width: int, **_: object) -> None:
    require_positive("share", bits=bits, conv_bits=conv_bits, width=width, conv_width=conv_width)
    for name, value in (("bits", bits), ("conv_bits", conv_bits)):
        if value > 16:
            raise UserInputError(f"share: {name} must be at most 16 (2**{value} clusters is no longer sharing)")
    for name, value in (("width", width), ("conv_width", conv_width)):
        if value > 16:
            raise UserInputError(f"share: {name} (relative-index bits) must be at most 16 (got {value})")


def shared_summary(shared: Mapping[str, SharedWeights]) -> dict[str, Any]:
    """Plain per-layer sizes (bits) and reuse of shared layers, for a method's ``info``."""
    layers = {}
    for name, transform in shared.items():
        reuse = reuse_counts(transform)
        layers[name] = {"clusters": transform.clusters, "nonzeros": int(transform.positions.numel()),
                        "entries": transform.coded().entries, "width": transform.width, **transform.stored_bits(),
                        "ucnn_multiplies": reuse.multiplies, "ucnn_mult_density": reuse.mult_density}
    return {"layers": layers}


@register_method("share", strength="bits", check=_share_check)
def share(model: nn.Module, context: CompressionContext, *, bits: int = 5, conv_bits: int = 8, width: int = 5,
          conv_width: int = 8, layers: tuple[str, ...] = (), ucnn: bool = False) -> Outcome:
    """Han et al. 2016: k-means weight sharing per layer (linear init), centroids fine-tuned with summed gradients.

    ``bits``: cluster-index bits of Linear layers (``2**bits`` shared values), ``conv_bits``
    of convolutions; ``width``/``conv_width``: relative-index bits used when the layer is
    stored (Huffman-coded); ``layers``: module paths to share (default every Linear/Conv
    weight); ``ucnn``: price UCNN's multiply reuse in the energy estimate.
    """
    shared = share_weights(model, bits=bits, conv_bits=conv_bits, width=width, conv_width=conv_width,
                           layers=list(layers) or None, ucnn=ucnn)
    tuned = context.fine_tune(model)
    accuracy = context.evaluate(model)
    step = Step(0, "", float(bits), accuracy, context.within_budget(accuracy), tuned)
    clusters = sorted({t.clusters for t in shared.values()})
    return Outcome(model, f"{len(shared)} layers shared ({'/'.join(map(str, clusters))} clusters)", [step],
                   shared_summary(shared))

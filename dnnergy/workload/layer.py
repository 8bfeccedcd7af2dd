"""The ``Layer`` record: one compute op of a network with its full shape.

Every downstream module (energy, compression, reports) reads these records; nothing
re-derives shapes from the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from operator import attrgetter

__all__ = ["OpKind", "Datum", "TensorStats", "Layer", "MAC_KINDS", "fold_bias"]


class OpKind(str, Enum):
    """What kind of computation a layer performs. Example: ``OpKind("conv") is OpKind.CONV``."""

    CONV = "conv"  #: 1-D/2-D convolution, grouped, depthwise, dilated or transposed
    FC = "fc"  #: fully connected: nn.Linear, or a matmul with a parameter operand
    MATMUL = "matmul"  #: matmul/bmm/einsum/attention between two activations
    NORM = "norm"  #: BatchNorm, LayerNorm, GroupNorm
    POOL = "pool"  #: max/avg/adaptive pooling, global mean
    ELTWISE = "eltwise"  #: element-wise add/mul/sub/div of tensors (residuals)
    ACTIVATION = "activation"  #: ReLU, GELU, sigmoid, softmax, ...
    CONCAT = "concat"  #: cat/stack: data movement, no arithmetic
    EMBEDDING = "embedding"  #: table look-up


#: Kinds whose work is multiply-accumulates and that dataflow models map onto a PE array.
MAC_KINDS = frozenset({OpKind.CONV, OpKind.FC, OpKind.MATMUL})


class Datum(str, Enum):
    """The three data types whose movement the energy model prices separately.

    Example: ``report.by_datum()`` keys are ``"compute"`` and these values (``Datum.WEIGHT.value == "weight"``).
    """

    IFMAP = "ifmap"  #: input feature map (activations read by the layer)
    WEIGHT = "weight"  #: filter weights (or the second operand of an activation matmul)
    OFMAP = "ofmap"  #: output feature map and partial sums


@dataclass(frozen=True, slots=True)
class TensorStats:
    """Measured sparsity of one tensor, enough to price run-length coding exactly.

    ``zero_runs`` is a histogram ``((run, count), ...)``: for every non-zero value, the
    number of zeros that precede it since the previous non-zero (C order), so the counts
    sum to ``nonzeros``. The zeros after the last non-zero are ``trailing_zeros``.

    >>> stats = TensorStats.of([0, 0, 12, 0, 53, 0])
    >>> stats.zero_runs, stats.trailing_zeros, stats.density   # 2 non-zeros of 6 elements
    (((1, 1), (2, 1)), 1, 0.3333333333333333)
    """

    numel: int
    nonzeros: int
    zero_runs: tuple[tuple[int, int], ...] = ()
    trailing_zeros: int = 0

    def __post_init__(self) -> None:
        if self.numel < 0 or not 0 <= self.nonzeros <= self.numel:
            raise ValueError(
                f"TensorStats: need 0 <= nonzeros <= numel (nonzeros={self.nonzeros}, numel={self.numel})"
            )

    @property
    def density(self) -> float:
        """Fraction of non-zero elements, in [0, 1] (1.0 for an empty tensor)."""
        return self.nonzeros / self.numel if self.numel else 1.0

    @classmethod
    def of(cls, *tensors) -> "TensorStats":
        """Measure one or more tensors (torch or numpy) laid end to end in C order.

        Example: ``[0, 0, 12, 0, 53, 0]`` has runs 2 (before 12) and 1 (before 53) and a
        trailing run of 1: ``TensorStats(6, 2, ((1, 1), (2, 1)), 1)``.
        """
        import torch

        numel, nonzeros, trailing = 0, 0, 0
        histogram: dict[int, int] = {}
        for tensor in tensors:
            flat = torch.as_tensor(tensor).detach().reshape(-1)
            positions = torch.nonzero(flat).flatten()
            if positions.numel():
                runs = torch.diff(positions, prepend=positions.new_tensor([-1])) - 1
                runs[0] += trailing  # the previous tensor's trailing zeros run into this one
                values, counts = torch.unique(runs, return_counts=True)
                for run, count in zip(values.tolist(), counts.tolist()):
                    histogram[run] = histogram.get(run, 0) + count
                trailing = flat.numel() - 1 - int(positions[-1])
            else:
                trailing += flat.numel()
            numel += flat.numel()
            nonzeros += positions.numel()
        return cls(numel, nonzeros, tuple(sorted(histogram.items())), trailing)


def _check_fraction(owner: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Layer {owner!r}: {name} must be in [0, 1] (got {value})")


@dataclass(frozen=True, slots=True)
class Layer:
    """One compute op, with the shape letters of Eyeriss (Chen et al., ISSCC/ISCA 2016).

    ====== =====================================================================
    letter meaning
    ====== =====================================================================
    N      batch size (for FC: number of input vectors, batch x tokens)
    C      input channels (all groups together)
    H, W   input feature-map height, width (with no padding)
    M      output channels (filters, all groups together)
    R, S   filter height, width (pooling: window height, width)
    E, F   output feature-map height, width
    ====== =====================================================================

    ``stride``, ``padding``, ``dilation`` are (vertical, horizontal) pairs; ``groups``
    splits C and M into independent groups (depthwise: groups == C == M).

    Counts (all exact integers for the traced batch):

    * ``macs``: multiply-accumulates. Conv: ``N*M*(C/groups)*R*S*E*F`` (transposed:
      ``N*C*(M/groups)*R*S*H*W``); FC/matmul: ``N*M*C/groups``. As in fvcore, bias
      additions are not counted and multiplications with padding zeros are. Only
      CONV, FC and MATMUL layers have MACs.
    * ``ops``: other arithmetic, one per output element for element-wise, activation
      and norm layers, one per window element per output for pooling (a comparison or
      an add). Concat and embedding have zero ops.
    * ``weights``: elements of the stationary operand (filter weights; for an
      activation x activation matmul, the second operand, ``weight_is_param=False``).
    * ``biases``: bias parameters. ``params`` is the learned-parameter count.
    * ``ifmap``/``ofmap``: elements of all activation inputs / of the output.

    Bitwidths (``*_bits``, ``None`` means the hardware's default word) and densities
    (non-zero fraction, 1.0 dense) are per data type; ``*_stats`` hold measured
    zero-run statistics when the layer was profiled on real data. ``mac_density`` is the
    fraction of the non-zero-operand MACs that are actually executed (below 1 when an
    algorithm such as ReLU early termination stops accumulations early).
    ``w_coded_bits`` is the size of the weights as actually stored (e.g. Deep Compression's
    Huffman-coded indices and codebook), in bits; ``None`` means the DRAM code decides.
    ``mult_density`` is the fraction of the executed MACs that still multiply (below 1 with
    UCNN-style reuse: inputs sharing a weight are summed first); the rest are adds only.

    Derive a variant with :func:`dataclasses.replace` (see :meth:`replace`).

    Example (a 3x3 conv from 2 to 4 channels on a 5x5 input, no padding: E = F = 3):

    >>> import torch, dnnergy
    >>> layer = dnnergy.trace(torch.nn.Conv2d(2, 4, 3), (1, 2, 5, 5)).layers[0]
    >>> layer.macs, layer.params, layer.is_mac      # 4*2*3*3 * 3*3 = 648 MACs; 72 weights + 4 biases
    (648, 76, True)
    >>> layer.replace(w_density=0.5).nonzero_macs   # half the weights zero: half the MACs do work
    324.0
    >>> layer.to_dict()["kind"], layer.to_dict()["E"]
    ('conv', 3)
    """

    name: str
    kind: OpKind
    op: str
    module: str = ""
    N: int = 1
    C: int = 1
    H: int = 1
    W: int = 1
    M: int = 1
    R: int = 1
    S: int = 1
    E: int = 1
    F: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    transposed: bool = False
    macs: int = 0
    ops: int = 0
    weights: int = 0
    weight_is_param: bool = True
    biases: int = 0
    ifmap: int = 0
    ofmap: int = 0
    w_bits: int | None = None
    i_bits: int | None = None
    o_bits: int | None = None
    w_density: float = 1.0
    i_density: float = 1.0
    o_density: float = 1.0
    mac_density: float = 1.0
    w_coded_bits: int | None = None
    mult_density: float = 1.0
    w_stats: TensorStats | None = None
    i_stats: TensorStats | None = None
    o_stats: TensorStats | None = None

    def __post_init__(self) -> None:
        # Each group of checks has a fast test passed by the common values (plain ints in range,
        # no bitwidths, dense); anything else takes the field-by-field checks, which raise.
        # A trace builds hundreds of records, so this ran for 10 % of ResNet-50's.
        if not isinstance(self.kind, OpKind):
            object.__setattr__(self, "kind", OpKind(self.kind))
        if not _plain_shape(self):
            self._check_shape()
        if self.kind in MAC_KINDS and (self.C % self.groups or self.M % self.groups):
            raise ValueError(
                f"Layer {self.name!r}: groups must divide C and M (C={self.C}, M={self.M}, groups={self.groups})"
            )
        if _bits(self) != _NO_BITS:
            for bits in _BITS:
                value = getattr(self, bits)
                if value is not None and (not isinstance(value, int) or value < 1):
                    raise ValueError(f"Layer {self.name!r}: {bits} must be a positive int or None (got {value!r})")
        if self.w_coded_bits is not None and (isinstance(self.w_coded_bits, bool) or not isinstance(self.w_coded_bits, int)
                                              or self.w_coded_bits < 0):
            raise ValueError(f"Layer {self.name!r}: w_coded_bits must be a non-negative int or None (got {self.w_coded_bits!r})")
        if _densities(self) != _DENSE:
            for density in _DENSITIES:
                _check_fraction(self.name, density, getattr(self, density))

    def _check_shape(self) -> None:
        """Raise ValueError for the first shape letter, count or (stride, padding, dilation) pair out of range."""
        for letter in _LETTERS:
            value = getattr(self, letter)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Layer {self.name!r}: {letter} must be a positive int (got {value!r})")
        for count in _COUNTS:
            value = getattr(self, count)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"Layer {self.name!r}: {count} must be a non-negative int (got {value!r})")
        for pair, least in (("stride", 1), ("padding", 0), ("dilation", 1)):
            value = getattr(self, pair)
            if len(value) != 2 or any(not isinstance(v, int) or v < least for v in value):
                raise ValueError(f"Layer {self.name!r}: {pair} must be a (vertical, horizontal) pair of ints >= {least} (got {value!r})")

    @property
    def params(self) -> int:
        """Learned parameters: weights (when they are parameters) plus biases."""
        return (self.weights if self.weight_is_param else 0) + self.biases

    @property
    def is_mac(self) -> bool:
        """True for CONV, FC and MATMUL layers, the ones a dataflow maps onto a PE array."""
        return self.kind in MAC_KINDS

    @property
    def nonzero_macs(self) -> float:
        """MACs executed with both operands non-zero, assuming independent zeros."""
        return self.macs * self.w_density * self.i_density * self.mac_density

    def replace(self, **changes) -> "Layer":
        """A copy with some fields changed (validated like a new record)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Flat plain-data view (enums as strings, stats as their density)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, TensorStats):
                value = value.density
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        out["params"] = self.params
        return out


_LETTERS = ("N", "C", "H", "W", "M", "R", "S", "E", "F", "groups")  #: positive ints
_COUNTS = ("macs", "ops", "weights", "biases", "ifmap", "ofmap")  #: non-negative ints
_BITS = ("w_bits", "i_bits", "o_bits")  #: positive ints or None
_DENSITIES = ("w_density", "i_density", "o_density", "mac_density", "mult_density")  #: fractions in [0, 1]
_letters, _counts, _bits, _densities = (attrgetter(*names) for names in (_LETTERS, _COUNTS, _BITS, _DENSITIES))
_NO_BITS, _DENSE, _INT = (None,) * len(_BITS), (1.0,) * len(_DENSITIES), {int}


def _plain_shape(layer: Layer) -> bool:
    """True when the shape letters, counts and pairs are plain ints in range and the pairs are 2-tuples
    (what :meth:`Layer._check_shape` accepts, less its rarer cases: bools, int subclasses, lists)."""
    letters, counts, stride, padding, dilation = _letters(layer), _counts(layer), layer.stride, layer.padding, layer.dilation
    return (type(stride) is tuple and type(padding) is tuple and type(dilation) is tuple
            and len(stride) == 2 and len(padding) == 2 and len(dilation) == 2
            and {*map(type, letters), *map(type, counts), *map(type, stride), *map(type, padding), *map(type, dilation)} == _INT
            and min(letters) >= 1 and min(stride) >= 1 and min(dilation) >= 1 and min(counts) >= 0 and min(padding) >= 0)


def fold_bias(previous: Layer, fields: dict) -> Layer | None:
    """``previous`` with a parameter added to its output folded in as its biases, or None.

    ``F.linear`` on a non-contiguous 3-D input runs as ``mm`` then ``add(bias)`` (ONNX:
    MatMul then Add): the pair is one FC layer. ``fields`` are the add's layer fields;
    the rule applies when it adds a parameter to a MAC layer's whole output and that layer
    has no bias yet. Both front ends call this, so they fold alike.
    """
    if fields["kind"] is not OpKind.ELTWISE or not fields["weights"] or fields["ifmap"] != fields["ofmap"]:
        return None
    if not previous.is_mac or previous.ofmap != fields["ofmap"] or previous.biases:
        return None
    return previous.replace(biases=fields["weights"])

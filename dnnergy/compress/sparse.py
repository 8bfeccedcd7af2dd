"""Sparse execution of pruned fully connected layers on the CPU, and a latency timer.

Han et al. (NeurIPS 2015; seed 001) report that pruned AlexNet/VGG FC layers (about 10 %
of the weights left) run about 3x faster on a CPU at batch size 1 with a sparse CSR
matrix-vector product (MKL CSRMV) than with the dense GEMV. :class:`SparseLinear` holds
a pruned ``nn.Linear`` in CSR form and multiplies with ``scipy.sparse`` (whose CSR
mat-vec is faster than ``torch.sparse_csr`` on CPU for single vectors);
time them with :func:`dnnergy.metrics.measure_latency`. Inference only: SparseLinear has
no gradient.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserInputError
from .edits import register_module, replace_module

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["SparseLinear", "sparsify_linear"]


@register_module("sparse_linear")
class SparseLinear(nn.Module):
    """A Linear layer stored as CSR (``indptr``, ``indices``, ``values`` buffers) and run as a sparse mat-vec.

    Build one with :meth:`from_dense`; its output equals the dense layer's (up to float
    summation order). The buffers are plain tensors, so ``state_dict`` saves and loads
    safely, and :func:`sparsify_linear` logs the swap as an edit, so ``dnnergy.save`` /
    ``dnnergy.load`` rebuild it. NB: it multiplies in scipy, outside torch's ops, so
    ``dnnergy.trace`` sees only its bias addition; estimate the dense model and give it
    the weight density instead. Units: ``nnz`` counts stored weights. Example:
    ``SparseLinear.from_dense(nn.Linear(4096, 4096))`` after pruning 90 % of the weights
    stores about 1.68 M values instead of 16.8 M.
    """

    def __init__(self, in_features: int, out_features: int, nnz: int = 0, bias: bool = True, dtype: torch.dtype | str = torch.float32):
        super().__init__()
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if not all(isinstance(v, int) and v >= 0 for v in (in_features, out_features, nnz)) or not in_features or not out_features:
            raise UserInputError(f"SparseLinear: in_features and out_features must be positive ints and nnz >= 0 (got {in_features}, {out_features}, {nnz})")
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("indptr", torch.zeros(out_features + 1, dtype=torch.int64))
        self.register_buffer("indices", torch.zeros(nnz, dtype=torch.int64))
        self.register_buffer("values", torch.zeros(nnz, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=dtype), requires_grad=False) if bias else None
        self._csr: tuple[tuple[int, ...], scipy.sparse.csr_matrix] | None = None

    @classmethod
    def from_dense(cls, linear: nn.Linear) -> "SparseLinear":
        """Convert a (pruned) ``nn.Linear``: its exact zeros are not stored."""
        if not isinstance(linear, nn.Linear):
            raise UserInputError(f"SparseLinear.from_dense expects an nn.Linear (got {type(linear).__name__})")
        import scipy.sparse  # here, not at import: scipy is slow to import

        csr = scipy.sparse.csr_matrix(linear.weight.detach().cpu().numpy())
        layer = cls(linear.in_features, linear.out_features, int(csr.nnz), linear.bias is not None, linear.weight.dtype)
        layer.indptr.copy_(torch.from_numpy(csr.indptr.astype(np.int64)))
        layer.indices.copy_(torch.from_numpy(csr.indices.astype(np.int64)))
        layer.values.copy_(torch.from_numpy(csr.data))
        if linear.bias is not None:
            layer.bias.data.copy_(linear.bias.detach())
        return layer

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("indices", "values"):  # nnz differs between checkpoints: resize before loading
            key = prefix + name
            if key in state_dict:
                setattr(self, name, torch.empty_like(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def nnz(self) -> int:
        """Stored (non-zero) weights."""
        return int(self.values.numel())

    def _matrix(self) -> scipy.sparse.csr_matrix:
        key = (self.values.data_ptr(), self.indices.data_ptr(), self.indptr.data_ptr(), self.nnz)
        if self._csr is None or self._csr[0] != key:
            import scipy.sparse

            matrix = scipy.sparse.csr_matrix((self.values.numpy(), self.indices.numpy(), self.indptr.numpy()),
                                             shape=(self.out_features, self.in_features), copy=False)
            self._csr = (key, matrix)
        return self._csr[1]

    def to_dense(self) -> Tensor:
        """The weight as a dense ``(out_features, in_features)`` tensor."""
        return torch.from_numpy(self._matrix().toarray())

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise UserInputError(f"SparseLinear: expected {self.in_features} input features (got shape {tuple(x.shape)})")
        flat = x.detach().reshape(-1, self.in_features).to(self.values.dtype).numpy()
        if flat.shape[0] == 1:  # batch 1: scipy's mat-vec kernel (csr_matvec), faster than the mat-mat one
            y = torch.from_numpy(self._matrix() @ flat[0]).unsqueeze(0)
        else:
            y = torch.from_numpy(np.ascontiguousarray((self._matrix() @ flat.T).T))
        if self.bias is not None:
            y = y + self.bias.detach()
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}, bias={self.bias is not None}"


def sparsify_linear(model: nn.Module, max_density: float = 0.5) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers with weight density ``<= max_density`` are :class:`SparseLinear`.

    Density = non-zero weights / all weights. Each swap is logged in the copy's edit log,
    so the copy saves and reloads with ``dnnergy.save`` / ``dnnergy.load``. Example:
    LeNet-300-100 magnitude-pruned to 8 % becomes three SparseLinear layers with
    ``max_density=0.5``.
    """
    if not 0.0 <= max_density <= 1.0:
        raise UserInputError(f"sparsify_linear: max_density must be in [0, 1] (got {max_density})")
    out = copy.deepcopy(model)
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.Linear) and float((module.weight != 0).float().mean()) <= max_density:
            if not name:
                return SparseLinear.from_dense(module)
            sparse = SparseLinear.from_dense(module)
            swapped = replace_module(out, name, "sparse_linear", in_features=sparse.in_features, out_features=sparse.out_features,
                                     nnz=sparse.nnz, bias=sparse.bias is not None,
                                     dtype=str(sparse.values.dtype).removeprefix("torch."))
            swapped.load_state_dict(sparse.state_dict())
    return out

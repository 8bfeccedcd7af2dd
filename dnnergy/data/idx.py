"""IDX files (the MNIST / Fashion-MNIST distribution format), gzipped or not.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian ``uint32`` sizes, then the values in C order (big-endian for multi-byte
types). MNIST-style directories hold four of them::

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

:func:`read_idx` parses one file; :func:`read_idx_directory` finds and checks the four.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import UserInputError

__all__ = ["read_idx", "read_idx_directory", "IDX_FILES"]

#: IDX type byte -> numpy dtype (big-endian where it matters).
_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: The four files of an MNIST-style directory, by role, without the optional ``.gz``.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip-compressed when its first bytes say so).

    Raises :class:`~dnnergy.errors.UserInputError` naming the file when the magic number,
    the type byte or the length does not match. Example: a Fashion-MNIST training image
    file gives a ``uint8`` array of shape ``(60000, 28, 28)``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise UserInputError(f"{path}: cannot read IDX file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise UserInputError(f"{path}: not an IDX file (expected magic 00 00 <type> <ndim>, got {raw[:4].hex(' ')})")
    dtype, ndim = _TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserInputError(f"{path}: IDX header declares {ndim} dimensions but the file is {len(raw)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise UserInputError(f"{path}: IDX shape {shape} needs {expected} bytes, the file has {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise UserInputError(f"{directory}: missing IDX file {stem} (or {stem}.gz)")


def read_idx_directory(directory: str | Path) -> dict[str, np.ndarray]:
    """The four arrays of an MNIST-style IDX directory, keyed as :data:`IDX_FILES`.

    Images must be ``(n, H, W)`` and labels ``(n,)`` with matching ``n``; anything else
    raises :class:`~dnnergy.errors.UserInputError` naming the file. Example:
    ``read_idx_directory("/usr/share/datasets/fashion-mnist")["train_images"].shape == (60000, 28, 28)``
    (``uint8``), with ``"train_labels"``, ``"test_images"`` (10,000) and ``"test_labels"`` beside it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"{directory}: not a directory of IDX files")
    arrays = {role: read_idx(_find(directory, stem)) for role, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise UserInputError(f"{directory}: {split} images {images.shape} and labels {labels.shape} do not match "
                                 "(expected (n, H, W) and (n,))")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise UserInputError(f"{directory}: train and test images differ in size "
                             f"({arrays['train_images'].shape[1:]} vs {arrays['test_images'].shape[1:]})")
    return arrays

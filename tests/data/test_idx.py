"""IDX parsing against hand-built files, the idx: loader's splits, and Fashion-MNIST from Debian's package."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dnnergy.data import idx_dataset, load_dataset, read_idx
from dnnergy.data.datasets import FASHION_MNIST_ENV, _FASHION_MNIST_DEBIAN
from dnnergy.errors import UserInputError


def _idx_bytes(array: np.ndarray, type_byte: int, dtype: str) -> bytes:
    header = bytes([0, 0, type_byte, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(dtype).tobytes()


def _write_mnist_like(directory: Path, n_train: int = 200, n_test: int = 50, size: int = 4, gz: bool = True) -> dict:
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), dtype=np.uint8),
              "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10}
    for stem, array in arrays.items():
        data = _idx_bytes(array, 0x08, ">u1")
        (directory / (stem + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return arrays


def test_read_idx_plain_and_gzip_big_endian(tmp_path):
    values = np.array([[1, -2, 300], [70000, 0, -1]], dtype=np.int64)
    (tmp_path / "a").write_bytes(_idx_bytes(values, 0x0C, ">i4"))
    (tmp_path / "b.gz").write_bytes(gzip.compress(_idx_bytes(values, 0x0C, ">i4")))
    for name in ("a", "b.gz"):
        got = read_idx(tmp_path / name)
        assert got.shape == (2, 3) and got.tolist() == values.tolist()


@pytest.mark.parametrize("content, message", [
    (b"\x01\x00\x08\x01", "not an IDX file"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "needs 13 bytes"),
    (b"\x00\x00\x07\x01", "not an IDX file"),
])
def test_read_idx_refuses_broken_files_naming_them(tmp_path, content, message):
    path = tmp_path / "broken-idx"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=rf"broken-idx: .*{message}"):
        read_idx(path)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_splits_are_stratified_disjoint_and_scaled(tmp_path, gz):
    arrays = _write_mnist_like(tmp_path, gz=gz)
    data = load_dataset(f"idx:{tmp_path}", **{"n_select": 20, "n_val": 30})
    assert data.sizes == {"train": 150, "select": 20, "val": 30, "test": 50}
    assert data.selection_split == "select" and data.num_classes == 10
    assert torch.bincount(data.select.tensors[1]).tolist() == [2] * 10
    assert torch.bincount(data.val.tensors[1]).tolist() == [3] * 10
    # the test split is the t10k file, in order, scaled to [0, 1]
    expected = torch.tensor(arrays["t10k-images-idx3-ubyte"][:, None] / 255.0, dtype=torch.float32)
    assert torch.equal(data.test.tensors[0], expected)
    # train, select and val partition the training file
    rows = {tuple(r.flatten().tolist()) for part in ("train", "select", "val")
            for r in getattr(data, part).tensors[0]}
    assert len(rows) == 200


def test_idx_directory_missing_file_is_named(tmp_path):
    _write_mnist_like(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserInputError, match="missing IDX file t10k-labels-idx1-ubyte"):
        idx_dataset(tmp_path)


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UserInputError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.skipif(not Path(_FASHION_MNIST_DEBIAN).is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_has_the_published_sizes(monkeypatch):
    monkeypatch.delenv(FASHION_MNIST_ENV, raising=False)
    data = load_dataset("fashion-mnist")
    assert data.sizes == {"train": 50_000, "select": 5_000, "val": 5_000, "test": 10_000}
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    # Fashion-MNIST's test set is balanced: 1,000 images per class (Xiao et al. 2017)
    assert torch.bincount(data.test.tensors[1]).tolist() == [1000] * 10
    assert torch.bincount(data.select.tensors[1]).tolist() == [500] * 10

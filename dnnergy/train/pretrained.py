"""Pretrained zoo models: trained once on bundled data, cached on disk, loaded safely.

Nothing is downloaded: :func:`pretrained` trains the zoo architecture with a fixed
recipe (:data:`RECIPES`) on first use and caches the weights; later calls load them.

Cache location: ``$DNNERGY_CACHE_DIR`` if set, else ``platformdirs.user_cache_dir("dnnergy")``,
in a ``checkpoints`` sub-directory. A file is named
``<model>-<dataset>-seed<seed>-<key>.dnnergy`` where ``<key>`` hashes everything that
determines the weights: the model name and parameter shapes, the dataset's contents and
normalisation, and the full :class:`~dnnergy.train.TrainConfig`; changing any of
them trains a new checkpoint instead of loading a stale one. Files are
:mod:`dnnergy.io` containers of kind ``"checkpoint"`` (written atomically, checksummed,
no pickle): the header holds the test accuracy and training time, the tensors the
``state_dict``.

Corrupt or incompatible cache files are **retrained and overwritten**, with a
``UserWarning`` naming the file and the reason: the cache is derived data and retraining
needs nothing the user lacks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

import platformdirs
from torch import nn

from ..data.datasets import SPLITS, Dataset, load_dataset
from ..errors import UserInputError
from ..io import read_container, write_container
from .loop import TrainConfig, _reproducible, evaluate, train

__all__ = ["CACHE_ENV", "RECIPES", "cache_dir", "checkpoint_path", "train_cached", "pretrained", "list_pretrained"]

#: Environment variable that overrides the cache directory.
CACHE_ENV = "DNNERGY_CACHE_DIR"
_FORMAT = 2  # bump when the file layout changes (1: torch.save pickles; 2: dnnergy.io containers)
_KIND = "checkpoint"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.]+$")

#: Training recipe per (model, dataset). Measured with seed 0 on the 1,000-image MNIST test
#: split (torch 2.13, one thread): LeNet-300-100 95.6 % after 4.9 CPU-seconds of training,
#: LeNet-5 97.6 % after 20 CPU-seconds. Without the one-pixel random shifts (``shift=1``),
#: which stand in for the data a 5k subset lacks, LeNet-300-100 stops at about 93 %.
#: On full-size Fashion-MNIST (50,000 training images) no shifts are needed: LeNet-300-100
#: reaches 88.1 % on the 10,000 test images after 20 CPU-seconds of training, LeNet-5
#: 90.2 % after 184 CPU-seconds (seed 0, one thread; Xiao et al. 2017 report 87-89 % for
#: MLPs and about 91 % for small CNNs).
RECIPES: Mapping[tuple[str, str], TrainConfig] = MappingProxyType({
    ("lenet300", "mnist"): TrainConfig(epochs=15, lr=1e-3, batch_size=64, shift=1),
    ("lenet5", "mnist"): TrainConfig(epochs=8, lr=1e-3, batch_size=64, shift=1),
    ("lenet300", "fashion-mnist"): TrainConfig(epochs=10, lr=1e-3, batch_size=128),
    ("lenet5", "fashion-mnist"): TrainConfig(epochs=8, lr=1e-3, batch_size=128),
})


def cache_dir() -> Path:
    """Directory holding cached checkpoints (created on demand by the writers).

    Example: with ``DNNERGY_CACHE_DIR=/tmp/dnnergy-cache``, ``cache_dir() == Path("/tmp/dnnergy-cache/checkpoints")``.
    """
    root = os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("dnnergy")
    return Path(root) / "checkpoints"


def _digest(model: nn.Module, dataset: Dataset, config: TrainConfig, name: str) -> str:
    h = hashlib.sha256()
    meta = {
        "format": _FORMAT,
        "model": name,
        "params": [(k, list(v.shape), str(v.dtype)) for k, v in model.state_dict().items()],
        "dataset": [dataset.name, dataset.mean, dataset.std, dataset.num_classes],
        "config": config.as_dict(),
    }
    h.update(json.dumps(meta, sort_keys=True).encode())
    for split in SPLITS:
        for tensor in dataset.split(split).tensors:
            h.update(tensor.contiguous().numpy().tobytes())
    return h.hexdigest()


def checkpoint_path(name: str, model: nn.Module, dataset: Dataset, config: TrainConfig) -> Path:
    """Where the checkpoint of ``model`` (registered as ``name``) trained on ``dataset``
    with ``config`` lives in :func:`cache_dir` (whether or not it exists yet).

    Example: ``checkpoint_path("mlp", nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), load_dataset("digits"),
    TrainConfig(epochs=1)).name`` is ``"mlp-digits-seed0-<16 hex digits>.dnnergy"``.
    """
    if not _SAFE_NAME.match(name):
        raise UserInputError(f"checkpoint name must be letters, digits, '_' or '.' (got {name!r})")
    key = _digest(model, dataset, config, name)[:16]
    return cache_dir() / f"{name}-{dataset.name}-seed{config.seed}-{key}.dnnergy"


def _load(path: Path, model: nn.Module) -> None:
    model.load_state_dict(read_container(path, kind=_KIND).tensors)


def _save(path: Path, model: nn.Module, header: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_container(path, _KIND, header, model.state_dict())


def train_cached(name: str, model_fn: Callable[[], nn.Module], dataset: Dataset, config: TrainConfig, *,
                 retrain: bool = False, progress: bool = False) -> nn.Module:
    """Build ``model_fn()`` under ``config.seed``, then load its cached weights or train and cache them.

    The checkpoint is keyed as described in the module docstring, so the same
    ``name``, architecture, data and config always give the same file. An unreadable or
    mismatched file is retrained with a ``UserWarning``; ``retrain=True`` ignores the
    cache. If the cache cannot be written the trained model is still returned, with a
    warning. The model comes back in eval mode.

    Example: ``train_cached("mlp", lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), load_dataset("digits"),
    TrainConfig(epochs=1))`` trains for a fraction of a second and writes the file of :func:`checkpoint_path`;
    the same call again loads it (milliseconds) and returns identical weights.
    """
    def fresh() -> nn.Module:
        with _reproducible(config.seed, config.threads):
            return model_fn()

    model = fresh()
    path = checkpoint_path(name, model, dataset, config)
    if path.exists() and not retrain:
        try:
            _load(path, model)
            return model.eval()
        except Exception as err:  # any unreadable file is derived data: retrain it
            reason = " ".join(str(err).split())  # load_state_dict errors span several lines
            warnings.warn(f"dnnergy: cached checkpoint {path} is unreadable ({type(err).__name__}: {reason}); "
                          "retraining and overwriting it", UserWarning, stacklevel=2)
            model = fresh()  # a failed load_state_dict may have overwritten some weights
    history = train(model, dataset, config, progress=progress)
    payload = {"test_accuracy": evaluate(model, dataset), "seconds": history.seconds,
               "cpu_seconds": history.cpu_seconds}
    try:
        _save(path, model, payload)
    except OSError as err:
        warnings.warn(f"dnnergy: could not write checkpoint {path} ({err}); set {CACHE_ENV} to a writable "
                      "directory to keep trained weights", UserWarning, stacklevel=2)
    return model.eval()


def list_pretrained() -> list[tuple[str, str]]:
    """The ``(model, dataset)`` pairs :func:`pretrained` knows a recipe for.

    Example: ``list_pretrained() == [("lenet300", "fashion-mnist"), ("lenet300", "mnist"), ("lenet5", "fashion-mnist"),
    ("lenet5", "mnist")]``.
    """
    return sorted(RECIPES)


def pretrained(name: str, dataset: str = "mnist", *, seed: int = 0, retrain: bool = False,
               progress: bool = False) -> nn.Module:
    """The zoo model ``name`` trained on ``dataset`` with its :data:`RECIPES` entry, in eval mode.

    The first call trains (LeNet-300-100 and LeNet-5 on MNIST: seconds to tens of
    seconds on one CPU core) and caches the weights; later calls load them. ``seed``
    fixes both the initial weights and the shuffles. Raises
    :class:`~dnnergy.errors.UserInputError` for a pair without a recipe, listing them.
    Example: ``pretrained("lenet5")`` is the zoo's LeNet-5 trained on the bundled MNIST subset
    (trained and cached on the first call, loaded afterwards); ``pretrained("lenet5", "digits")``
    raises "no pretraining recipe for model 'lenet5' on dataset 'digits'; available: ...".
    """
    if (name, dataset) not in RECIPES:
        known = ", ".join(f"{m} on {d}" for m, d in list_pretrained())
        raise UserInputError(f"no pretraining recipe for model {name!r} on dataset {dataset!r}; available: {known}")
    from ..zoo import create_model

    config = dataclasses.replace(RECIPES[name, dataset], seed=seed)
    return train_cached(name, lambda: create_model(name), load_dataset(dataset), config,
                        retrain=retrain, progress=progress)

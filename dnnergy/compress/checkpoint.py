"""Checkpoints of long runs: progress saved after each finished step, so a killed run resumes where it stopped.

EAP, the elimination sweep and search, NetAdapt and trade-off sweeps take many steps
(a layer pruned, a plan accepted, an iteration kept, a point measured). With
``context.checkpoint`` set to a file, each of them writes, after every finished step, one
:mod:`dnnergy.io` container (kind ``"checkpoint"``, written atomically, no pickle) holding

* ``fingerprint``: what run it belongs to: the run's name, a SHA-256 of the starting
  model's weights, the run's parameters, the context's seed, budget, fine-tuning policy,
  data (name and split sizes) and the starting model's energy under the context's
  objective (which tells hardware and dataflow apart). A checkpoint whose fingerprint differs is refused
  with a :class:`~dnnergy.errors.UserInputError` naming the first field that differs;
* ``state``: the run's own plain data (step index, decisions so far, partial records);
* tensors: model weights and weight transforms (masks) under a prefix per model
  (:func:`model_tensors`), and the random number generators' states: torch's CPU
  generator, numpy's and Python's ``random``. :meth:`Checkpoint.load` puts them back.

The fine-tuning loop needs no saved generator: :func:`~dnnergy.train.train` seeds its own
shuffling generator and torch's RNG from the context's seed on every call, so the same
model state gives the same fine-tuned weights. A run started again with the same
checkpoint therefore continues as the uninterrupted run would, to the same weights bit
for bit (one thread, as the training loop uses). A checkpoint of a finished run stays
valid: resuming from it returns the result at once. The library never deletes a
checkpoint; the command line deletes it once the outputs are written. Example::

    context = context.replace(checkpoint="eap.checkpoint")
    result = dnnergy.compress.run(model, "eap", context)   # killed? run the same line again
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import UserInputError
from ..io import read_container, write_container
from .record import plain
from .transforms import Snapshot, Transforms, rollback

__all__ = ["KIND", "Progress", "Checkpoint", "checkpoint_of", "model_digest", "model_tensors", "restore_model"]

#: Container kind of a checkpoint file.
KIND = "checkpoint"
_RNG = "rng/"


@dataclass(frozen=True, eq=False)
class Progress:
    """What a checkpoint held: the run's plain ``state`` and its named ``tensors`` (RNG states removed)."""

    state: dict[str, Any]
    tensors: dict[str, Tensor]


def model_digest(model: nn.Module) -> str:
    """SHA-256 (hex) of ``model``'s state_dict: every key, dtype, shape and the bytes of every tensor."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_tensors(model: nn.Module, prefix: str) -> tuple[list[dict], dict[str, Tensor]]:
    """``model``'s weights and weight transforms as (transform records, tensors named ``prefix...``) for a checkpoint."""
    transforms = Transforms.of(model, create=False)
    records, own = transforms.state() if transforms is not None else ([], {})
    tensors = {f"{prefix}state/{k}": v.detach().clone() for k, v in model.state_dict().items()}
    return records, tensors | {f"{prefix}{k}": v.detach().clone() for k, v in own.items()}


def restore_model(model: nn.Module, records: list[Mapping], tensors: Mapping[str, Tensor], prefix: str) -> nn.Module:
    """Put the weights and transforms saved by :func:`model_tensors` under ``prefix`` back into ``model`` (same structure)."""
    weights = {k.removeprefix(f"{prefix}state/"): v.clone() for k, v in tensors.items() if k.startswith(f"{prefix}state/")}
    try:
        rollback(model, Snapshot(weights, None))  # drops the current transform set, loads the weights strictly
    except RuntimeError as exc:
        raise UserInputError(f"checkpoint: the saved weights do not fit the model ({str(exc).splitlines()[0]})") from None
    own = {k.removeprefix(prefix): v.clone() for k, v in tensors.items() if k.startswith(prefix)}
    Transforms.load(model, list(records), own)
    return model


def _rng_state() -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The global generators' states: torch CPU, numpy (legacy ``np.random``), Python ``random``."""
    name, keys, position, has_gauss, gauss = np.random.get_state(legacy=True)
    version, words, gauss_next = random.getstate()
    header = {"numpy": [name, int(position), int(has_gauss), float(gauss)], "python": [version, gauss_next]}
    tensors = {f"{_RNG}torch": torch.get_rng_state(), f"{_RNG}numpy": torch.from_numpy(keys.astype(np.int64)),
               f"{_RNG}python": torch.tensor(words, dtype=torch.int64)}
    return header, tensors


def _set_rng_state(header: Mapping[str, Any], tensors: Mapping[str, Tensor]) -> None:
    name, position, has_gauss, gauss = header["numpy"]
    torch.set_rng_state(tensors[f"{_RNG}torch"].to(torch.uint8))
    np.random.set_state((name, tensors[f"{_RNG}numpy"].numpy().astype(np.uint32), position, has_gauss, gauss))
    version, gauss_next = header["python"]
    random.setstate((version, tuple(int(w) for w in tensors[f"{_RNG}python"].tolist()), gauss_next))


class Checkpoint:
    """One run's checkpoint file at ``path``, tied to the run by its ``fingerprint`` (plain data).

    :meth:`load` returns the saved :class:`Progress` (and restores the generators) or
    ``None`` when there is no file yet; :meth:`save` replaces the file atomically, so a
    run killed at any moment leaves the last finished step's checkpoint.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: Mapping[str, Any]):
        self.path = Path(path)
        self.fingerprint = plain(fingerprint, "checkpoint fingerprint")

    def load(self) -> Progress | None:
        """The saved progress (generators restored to their state at that step), ``None`` if the file does not exist.

        Raises :class:`UserInputError` for a file of another run (naming the first field that
        differs), of another kind, or damaged.
        """
        if not self.path.exists():
            return None
        container = read_container(self.path, kind=KIND)
        saved = container.header.get("fingerprint", {})
        for key in [*self.fingerprint, *(k for k in saved if k not in self.fingerprint)]:
            if saved.get(key) != self.fingerprint.get(key):
                raise UserInputError(f"{self.path}: checkpoint of another run ({key}: saved {_short(saved.get(key))}, "
                                     f"this run {_short(self.fingerprint.get(key))}); delete it to start over")
        _set_rng_state(container.header["rng"], container.tensors)
        tensors = {k: v for k, v in container.tensors.items() if not k.startswith(_RNG)}
        return Progress(container.header["state"], tensors)

    def save(self, state: Mapping[str, Any], tensors: Mapping[str, Tensor] | None = None) -> Path:
        """Write ``state`` (plain data), ``tensors`` and the generators' states to the file, atomically."""
        rng_header, rng_tensors = _rng_state()
        header = {"fingerprint": self.fingerprint, "state": plain(state, "checkpoint state"), "rng": rng_header}
        return write_container(self.path, KIND, header, {**(tensors or {}), **rng_tensors})

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, run={self.fingerprint.get('run')!r})"


def checkpoint_of(context: Any, run: str, model: nn.Module, params: Mapping[str, Any]) -> Checkpoint | None:
    """The :class:`Checkpoint` of ``run`` on ``model`` with ``params`` at ``context.checkpoint`` (``None``: not set).

    The fingerprint holds ``run``, :func:`model_digest` of ``model`` (the model the run
    starts from), ``params``, the context's seed, budget, fine-tuning policy and data, and
    ``model``'s energy under the context's objective (so other hardware or dataflow differs).
    """
    path = getattr(context, "checkpoint", None)
    if path is None:
        return None
    data = context.data
    splits = {name: len(getattr(data, name)) for name in ("train", "val", "test", "select") if getattr(data, name) is not None}
    energy = context.energy
    fingerprint = {"run": run, "model": model_digest(model), "params": dict(params), "seed": context.seed,
                   "energy": [float(energy(model)), getattr(energy, "unit", "")] if energy is not None else None,
                   "max_accuracy_drop": context.max_accuracy_drop,
                   "fine_tuning": context.fine_tuning.as_dict() if context.fine_tuning is not None else None,
                   "data": {"name": data.name, **splits}}
    return Checkpoint(path, fingerprint)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""``dnnergy estimate``: parsing its options and picking the batch to profile on (its table is ``dnnergy.report.energy_table``)."""

from __future__ import annotations

from typing import Any

from ..errors import UserInputError

__all__ = ["MAX_BITS", "parse_bits", "profile_input"]

#: Widest weight or activation word ``--bits`` accepts (float32).
MAX_BITS = 32


def parse_bits(text: str | None) -> tuple[int, int] | None:
    """``"8,16"`` -> (weight bits 8, activation bits 16); ``"8"`` -> (8, 8)."""
    if text is None:
        return None
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise UserInputError(f"--bits takes W,A such as 8,16 (got {text!r})") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not all(1 <= p <= MAX_BITS for p in parts):
        raise UserInputError(f"--bits takes two widths W,A from 1 to {MAX_BITS} bits such as 8,16 (got {text!r})")
    return parts[0], parts[1]


def profile_input(source: str, shape: tuple[int, ...]) -> Any:
    """The batch to profile on: ``random`` (normal noise of the model's input shape) or a dataset name."""
    import torch

    if source == "random":
        return torch.randn(shape, generator=torch.Generator().manual_seed(0))
    from ..data.datasets import load_dataset

    dataset = load_dataset(source)
    images = dataset.split("test").tensors[0][: shape[0]]
    if tuple(images.shape[1:]) != tuple(shape[1:]):
        raise UserInputError(
            f"--profile {source}: its images are {tuple(images.shape[1:])} but the model takes {tuple(shape[1:])}; use --profile random"
        )
    return images

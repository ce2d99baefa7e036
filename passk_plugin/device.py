"""Which torch device evaluation uses when the user names none."""

from __future__ import annotations


def auto_device(requested: str | None = None) -> str:
    """`requested` if given, else "cuda" when torch sees a GPU, else "cpu"."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"

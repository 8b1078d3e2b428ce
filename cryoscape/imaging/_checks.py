"""Input validation shared by the imaging modules (raises :class:`cryoscape.errors.InputError`)."""

from __future__ import annotations

import torch

from cryoscape.errors import InputError


def check_box_size(D: int) -> int:
    """Return ``D`` as an int after checking it is a positive even box size."""
    if int(D) != D or D <= 0 or int(D) % 2:
        raise InputError(f"box size must be a positive even integer, got {D}")
    return int(D)


def check_square(x: torch.Tensor, ndim: int, name: str) -> int:
    """Check that the last ``ndim`` dims of ``x`` are equal and even; return that size D."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < ndim or len(set(x.shape[-ndim:])) != 1:
        raise InputError(f"{name} must end in {ndim} equal dimensions, got shape {tuple(x.shape)}")
    return check_box_size(x.shape[-1])


def check_rotations(R: torch.Tensor, name: str = "rotations") -> None:
    """Check that ``R`` is a (B, 3, 3) tensor."""
    if not isinstance(R, torch.Tensor) or R.ndim != 3 or R.shape[-2:] != (3, 3):
        shape = tuple(R.shape) if hasattr(R, "shape") else type(R).__name__
        raise InputError(f"{name} must be a (B, 3, 3) tensor, got {shape}")

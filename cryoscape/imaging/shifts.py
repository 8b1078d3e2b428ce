"""In-plane translation of images in Fourier or Hartley space.

Convention: ``shifts_px`` (B, 2) are (sx, sy) in pixels; the functions return the transform of the
image translated by +shift (its content moves toward +x, +y), i.e. F'(k) = exp(-2πi (kx sx + ky sy)) F(k)
with k in cycles/pixel on the centred grid (origin at index D//2). Integer shifts are circular
(np.roll). To centre a particle with RELION origin offset o, translate its image by +o.
Leading dimensions broadcast: images (B, 1, D, D) with shifts (B, T, 2) give (B, T, D, D), e.g. for
a translational search.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Complex, Float, Shaped
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_square
from cryoscape.imaging.grids import frequency_grid_2d


def _phase(images: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """Phase 2π k·s (radians), shape shifts.shape[:-1] + (D, D), computed in float64, cast to the image precision."""
    D = check_square(images, 2, "images")
    if not isinstance(shifts_px, torch.Tensor) or shifts_px.shape[-1:] != (2,):
        raise InputError(f"shifts_px must be a (B, 2) tensor, got {getattr(shifts_px, 'shape', shifts_px)}")
    try:
        torch.broadcast_shapes(shifts_px.shape[:-1], images.shape[:-2])
    except RuntimeError:
        raise InputError(
            f"shifts_px {tuple(shifts_px.shape)} does not broadcast with images {tuple(images.shape)}"
        ) from None
    k = frequency_grid_2d(D, device=images.device, dtype=torch.float64)
    s = shifts_px.to(device=images.device, dtype=torch.float64)
    phase = 2 * math.pi * torch.einsum("yxc,...c->...yx", k, s)
    real_dtype = images.real.dtype if images.is_complex() else images.dtype
    return phase.to(real_dtype)


def translate_ft(images_ft: Complex[Tensor, "*B D D"], shifts_px: Float[Tensor, "*B 2"]) -> Complex[Tensor, "*B D D"]:
    """Translate by +shifts_px: (B, D, D) centred FTs, (B, 2) pixels (x, y) -> (B, D, D) complex."""
    phase = _phase(images_ft, shifts_px)
    return images_ft * torch.polar(torch.ones_like(phase), -phase)


def flip_frequencies(images: Shaped[Tensor, "*B D D"]) -> Shaped[Tensor, "*B D D"]:
    """X(-k) on the centred grid (..., D, D): index i -> (D - i) mod D on the last two axes."""
    return torch.roll(torch.flip(images, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))


def translate_ht(images_ht: Float[Tensor, "*B D D"], shifts_px: Float[Tensor, "*B 2"]) -> Float[Tensor, "*B D D"]:
    """Translate by +shifts_px in Hartley space: H'(k) = cos(2πk·s) H(k) + sin(2πk·s) H(-k).

    Same convention and shapes as :func:`translate_ft` (real (B, D, D) centred Hartley transforms).
    The Nyquist row/column use H(-k) = H(k) (periodic grid), exact for integer shifts.
    """
    phase = _phase(images_ht, shifts_px)
    return torch.cos(phase) * images_ht + torch.sin(phase) * flip_frequencies(images_ht)

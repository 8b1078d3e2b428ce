"""Frequency lattices, radial shell indices and masks on centred D×D (×D) grids.

Conventions: images are indexed [y, x], volumes [z, y, x]; coordinate vectors are (x, y[, z]).
The origin is at index D//2 on every axis; frequencies are k = (index - D//2)/D cycles/pixel, in
[-0.5, 0.5). Radii of masks are in pixels measured from the origin voxel.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size


def _axis(D: int, device=None, dtype=torch.float32) -> torch.Tensor:
    D = check_box_size(D)
    return (torch.arange(D, device=device, dtype=torch.float64) - D // 2).to(dtype)


def frequency_grid_2d(D: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(D, D, 2) frequencies [kx, ky] in cycles/pixel of a centred 2D transform indexed [y, x]."""
    k = _axis(D, device, torch.float64) / D
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    return torch.stack([kx, ky], dim=-1).to(dtype)


def frequency_grid_3d(D: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(D, D, D, 3) frequencies [kx, ky, kz] in cycles/pixel of a centred volume indexed [z, y, x]."""
    k = _axis(D, device, torch.float64) / D
    kz, ky, kx = torch.meshgrid(k, k, k, indexing="ij")
    return torch.stack([kx, ky, kz], dim=-1).to(dtype)


def _radius_2d(D: int, device=None) -> torch.Tensor:
    a = _axis(D, None, torch.float64).numpy()
    return _exact_sqrt(a[:, None] ** 2 + a[None, :] ** 2, device)


def _radius_3d(D: int, device=None) -> torch.Tensor:
    a = _axis(D, None, torch.float64).numpy()
    return _exact_sqrt(a[:, None, None] ** 2 + a[None, :, None] ** 2 + a[None, None, :] ** 2, device)


def _exact_sqrt(squared: np.ndarray, device) -> torch.Tensor:
    """Radii as float64, by numpy's correctly rounded square root: torch's float64 sqrt on CPU has
    been measured 2e-10 off at perfect squares in some processes (sqrt(961) > 31), which changed
    which pixels a mask of radius 31 holds, and so the size of an encoder's input, between runs."""
    return torch.from_numpy(np.sqrt(squared)).to(device)


def radial_index_2d(D: int, device=None) -> torch.Tensor:
    """(D, D) long: Fourier shell of each pixel, round(|k|·D) = rounded pixel distance from the origin."""
    return torch.round(_radius_2d(D, device)).long()


def radial_index_3d(D: int, device=None) -> torch.Tensor:
    """(D, D, D) long: Fourier shell of each voxel, round(|k|·D)."""
    return torch.round(_radius_3d(D, device)).long()


def _check_radius(radius_px: float, edge_px: float = 0.0) -> None:
    if not radius_px >= 0 or not edge_px >= 0:
        raise InputError(f"mask radius and edge must be >= 0 pixels, got {radius_px} and {edge_px}")


def _soft(r: torch.Tensor, radius_px: float, edge_px: float, dtype) -> torch.Tensor:
    _check_radius(radius_px, edge_px)
    if edge_px == 0:
        return (r <= radius_px).to(dtype)
    t = ((r - radius_px) / edge_px).clamp(0.0, 1.0)
    return (0.5 * (1.0 + torch.cos(math.pi * t))).to(dtype)


def circular_mask(D: int, radius_px: float, device=None) -> torch.Tensor:
    """(D, D) bool: True where the distance to the origin pixel is <= radius_px."""
    _check_radius(radius_px)
    return _radius_2d(D, device) <= radius_px


def fourier_disk_mask(D: int, device=None, radius_px: int | None = None) -> torch.Tensor:
    """(D, D) bool on the centred Fourier grid: radius <= ``radius_px`` (default D/2 − 1) pixels, the
    origin (DC) excluded. The pixels neural-field losses and encoders use (cryoDRGN's circular mask,
    DC ignored)."""
    mask = circular_mask(D, D // 2 - 1 if radius_px is None else radius_px, device)
    mask[D // 2, D // 2] = False
    return mask


def soft_circular_mask(D: int, radius_px: float, edge_px: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(D, D) float: 1 inside radius_px, a raised-cosine fall-off to 0 over edge_px pixels, then 0."""
    return _soft(_radius_2d(D, device), radius_px, edge_px, dtype)


def spherical_mask(D: int, radius_px: float, device=None) -> torch.Tensor:
    """(D, D, D) bool: True where the distance to the origin voxel is <= radius_px."""
    _check_radius(radius_px)
    return _radius_3d(D, device) <= radius_px


def soft_spherical_mask(D: int, radius_px: float, edge_px: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """(D, D, D) float: 1 inside radius_px, a raised-cosine fall-off to 0 over edge_px, then 0."""
    return _soft(_radius_3d(D, device), radius_px, edge_px, dtype)


def centred_lattice(
    D: int, ndim: int, radius_px: float, half: int = 0, device=None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The points of the centred D^ndim grid (ndim 2 or 3) within ``radius_px`` of the origin.

    Returns flat indices (M,) into the grid ([z,] y, x order, ascending), integer coordinates
    (M, ndim) in pixels in (x, y[, z]) order, and the flat indices (M,) of the mirror points −k
    (the origin is its own mirror; valid for ``radius_px`` < D/2, as the Nyquist planes have none).
    ``half`` = +1 keeps one point of each pair ±k, those whose first non-zero coordinate in
    ([z,] y, x) order is positive, plus the origin; −1 the negative ones plus the origin; 0 keeps
    all. Hermitian fields are decoded or inserted on such a half.
    """
    if ndim not in (2, 3) or half not in (-1, 0, 1):
        raise InputError(f"a centred lattice has 2 or 3 dimensions and half in -1, 0, 1; got {ndim} and {half}")
    a = torch.arange(D, device=device) - D // 2
    axes = torch.meshgrid(*([a] * ndim), indexing="ij")  # slowest first: ([z,] y, x)
    keep = torch.stack([g**2 for g in axes]).sum(0) <= radius_px**2
    if half:
        sign = torch.zeros_like(axes[0])
        for g in reversed(axes):  # the slowest non-zero coordinate decides
            sign = torch.where(g != 0, torch.sign(g), sign)
        keep &= half * sign >= 0
    flat = torch.nonzero(keep.reshape(-1)).squeeze(1)
    slowest_first = [g.reshape(-1)[flat] for g in axes]
    mirror = torch.zeros_like(flat)
    for g in slowest_first:
        mirror = mirror * D + (-g + D // 2)
    return flat, torch.stack(slowest_first[::-1], dim=-1), mirror

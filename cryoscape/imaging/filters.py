"""Fourier filters of maps."""

from __future__ import annotations

import torch

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_square
from cryoscape.imaging.fft import fft3_center, ifft3_center
from cryoscape.imaging.grids import soft_spherical_mask


def lowpass_volume(volume: torch.Tensor, apix: float, resolution_A: float, edge_px: float = 2.0) -> torch.Tensor:
    """Keep frequencies below 1/``resolution_A`` (Å⁻¹) of a real map (D, D, D) with voxel ``apix`` Å,
    with a raised-cosine fall-off of ``edge_px`` Fourier pixels beyond it."""
    D = check_square(volume, 3, "volume")
    if not resolution_A > 0:
        raise InputError(f"low-pass resolution must be positive, got {resolution_A} Å")
    radius = D * apix / resolution_A
    if radius >= D // 2:
        return volume
    filt = soft_spherical_mask(D, radius, edge_px, volume.device, volume.dtype)
    return ifft3_center(fft3_center(volume) * filt).real

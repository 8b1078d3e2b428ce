"""Particle batches ready for a neural-field loss: centred Hartley images, CTF, poses.

Images are multiplied by a real-space window (optional, off by default; cryoDRGN's default is 1 within
0.85 of the box radius, falling to 0 at 0.99: it removes the noise of the box corners but also the
signal that the CTF spreads beyond the particle), Fourier transformed, translated by +shift (RELION origin: this centres the particle),
converted to the Hartley domain and divided by ``scale`` (a global normalization so that the
network works with values of order one). The CTF is RELION's (positive at low frequency), so that
a white particle is modelled as CTF · slice with a positive density. A real, even CTF commutes with
the Hartley transform, so the model image is CTF · H(slice).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft2_center
from cryoscape.imaging.grids import soft_circular_mask
from cryoscape.imaging.forward import relion_ctf
from cryoscape.imaging.shifts import translate_ft


@dataclass
class ParticleBatch:
    """``index`` (B,) rows of the table; ``images_ht`` (B, D, D) centred, normalized Hartley images;
    ``ctf`` (B, D, D) or None; ``rotations`` (B, 3, 3) or None (a table without poses)."""

    index: torch.Tensor
    images_ht: torch.Tensor
    ctf: torch.Tensor | None
    rotations: torch.Tensor | None


@functools.lru_cache(maxsize=8)
def image_window(D: int, inner: float, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """(D, D) real-space window: 1 within ``inner`` × D/2 pixels of the centre, a raised cosine to 0 at
    0.99 × D/2; None for ``inner`` 0 (no window)."""
    if not inner:
        return None
    if not 0 < inner < 0.99:
        raise InputError(f"the window's inner radius must be a fraction of the box radius in (0, 0.99), got {inner}")
    return soft_circular_mask(D, inner * D / 2, (0.99 - inner) * D / 2, device)


def centred_hartley(images: torch.Tensor, shifts_px: torch.Tensor | None, window: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D, D) real images -> Hartley transforms (B, D, D) of the images (times ``window``) translated by +shift."""
    ft = fft2_center(images if window is None else images * window)
    if shifts_px is not None:
        ft = translate_ft(ft, shifts_px)
    return ft.real - ft.imag


def particle_ctf(ctf: CTFParams, apix: np.ndarray, D: int, index: np.ndarray,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(B, D, D) RELION-sign CTF images of the particles ``index`` (pixel sizes ``apix`` (N,) in Å)."""
    params = {k: torch.from_numpy(v[index]).to(device) for k, v in ctf.as_dict().items()}
    return relion_ctf(D, torch.from_numpy(np.asarray(apix)[index]).to(device), params)


def hartley_scale(source: ImageSource, table: ParticleTable, n: int = 1000, invert: bool = False, seed: int = 0,
                  window: float = 0.0) -> float:
    """Standard deviation of the centred Hartley coefficients of up to ``n`` random particles."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(table), size=min(n, len(table)), replace=False))
    images = torch.from_numpy(source.get(index)) * (-1.0 if invert else 1.0)
    shifts = None if table.shifts_A is None else torch.from_numpy(table.shifts_px[index]).float()
    return float(centred_hartley(images, shifts, image_window(table.box_size, window)).std())


def make_batch(images: torch.Tensor, table: ParticleTable, index: np.ndarray, scale: float, *, invert: bool = False,
               use_ctf: bool = True, window: float = 0.0, device: torch.device | str = "cpu") -> ParticleBatch:
    """Prepare the images (B, D, D) of the particles ``index`` (B,) (see module docstring); ``window``
    is the inner radius of the real-space window (fraction of D/2; 0 for none)."""
    images = images.to(device)
    if invert:
        images = -images
    shifts = None if table.shifts_A is None else torch.from_numpy(table.shifts_px[index]).float().to(device)
    ctf = particle_ctf(table.ctf, table.apix, table.box_size, index, device) if use_ctf else None
    return ParticleBatch(
        index=torch.from_numpy(np.asarray(index)),
        images_ht=centred_hartley(images, shifts, image_window(table.box_size, window, images.device)) / scale,
        ctf=ctf,
        rotations=None if table.rotations is None else torch.from_numpy(table.rotations[index]).float().to(device),
    )

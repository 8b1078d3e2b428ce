"""Particle batches ready for a neural-field loss: centred Hartley images, CTF, poses.

Images are multiplied by a real-space window (optional, off by default; cryoDRGN's default is 1 within
0.85 of the box radius, falling to 0 at 0.99: it removes the noise of the box corners but also the
signal that the CTF spreads beyond the particle), Fourier transformed, translated by +shift (RELION origin: this centres the particle),
converted to the Hartley domain and divided by ``scale`` (a global normalization so that the
network works with values of order one): the data side of :mod:`cryoscape.imaging.forward`, whose
model side is CTF · (Hartley slice) with RELION's CTF sign.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.forward import centred_hartley
from cryoscape.imaging.grids import soft_circular_mask
from cryoscape.models.contract import ImageBatch


@functools.lru_cache(maxsize=8)
def image_window(D: int, inner: float, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """(D, D) real-space window: 1 within ``inner`` × D/2 pixels of the centre, a raised cosine to 0 at
    0.99 × D/2; None for ``inner`` 0 (no window)."""
    if not inner:
        return None
    if not 0 < inner < 0.99:
        raise InputError(f"the window's inner radius must be a fraction of the box radius in (0, 0.99), got {inner}")
    return soft_circular_mask(D, inner * D / 2, (0.99 - inner) * D / 2, device)


def hartley_scale(
    source: ImageSource, table: ParticleTable, n: int = 1000, invert: bool = False, seed: int = 0, window: float = 0.0
) -> float:
    """Standard deviation of the centred Hartley coefficients of up to ``n`` random particles
    (InputError if their images are all zero)."""
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(table), size=min(n, len(table)), replace=False))
    images = torch.from_numpy(source.get(index)) * (-1.0 if invert else 1.0)
    if not bool(images.abs().amax() > 0):  # the scale would be 0: NaN batches, NaN latents
        raise InputError(f"{table.describe_images(index)} are all zero: nothing to learn from")
    shifts = None if table.shifts_A is None else torch.from_numpy(table.shifts_px_of(index)).float()
    return float(centred_hartley(images, shifts, image_window(table.box_size, window)).std())


def make_batch(
    images: torch.Tensor,
    table: ParticleTable,
    index: np.ndarray,
    scale: float,
    *,
    invert: bool = False,
    use_ctf: bool = True,
    window: float = 0.0,
    device: torch.device | str = "cpu",
) -> ImageBatch:
    """Prepare the images (B, D, D) of the particles ``index`` (B,) (see module docstring); ``window``
    is the inner radius of the real-space window (fraction of D/2; 0 for none)."""
    images = images.to(device)
    if invert:
        images = -images
    shifts = None if table.shifts_A is None else torch.from_numpy(table.shifts_px_of(index)).float().to(device)
    ctf = table.ctf_images(index, device) if use_ctf else None
    return ImageBatch(
        index=torch.from_numpy(np.asarray(index)),
        images_ht=centred_hartley(images, shifts, image_window(table.box_size, window, images.device)) / scale,
        ctf=ctf,
        rotations=None if table.rotations is None else torch.from_numpy(table.rotations[index]).float().to(device),
    )

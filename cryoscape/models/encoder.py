"""The VAE's image encoder q(z | image) (thesis §3.1.3, §3.6).

Input: the centred, phase-flipped, normalized Hartley image at the pixels of
:func:`~cryoscape.imaging.grids.fourier_disk_mask` (radius D/2 − 1, DC excluded), flattened.
A residual MLP maps it to the mean μ and log-variance log σ² of a diagonal Gaussian over z.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from cryoscape.errors import InputError
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.models.mlp import ResidualMLP


class ImageEncoder(nn.Module):
    """(B, D, D) Hartley images -> (μ, log σ²), each (B, zdim)."""

    mask: torch.Tensor  # (D, D) bool, the pixels read

    def __init__(self, D: int, zdim: int, width: int = 256, depth: int = 3, activation: str = "relu"):
        super().__init__()
        if zdim < 1:
            raise InputError(f"latent dimension must be at least 1, got {zdim}")
        self.zdim = zdim
        self.register_buffer("mask", fourier_disk_mask(D), persistent=False)
        self.mlp = ResidualMLP(int(self.mask.sum()), width, depth, 2 * zdim, activation)

    def forward(self, images_ht: Float[Tensor, "B D D"]) -> tuple[Float[Tensor, "B Z"], Float[Tensor, "B Z"]]:
        out = self.mlp(images_ht[:, self.mask])
        return out[:, : self.zdim], out[:, self.zdim :]

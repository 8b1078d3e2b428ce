"""The heterogeneous VAE of cryoDRGN (thesis §3.1): an image encoder and a latent-conditioned
neural field decoder.

``forward(encoder_input, rotations, noise)`` encodes, samples z = μ + σ·noise (reparameterization;
``noise`` (B, zdim) standard normal, or None for z = μ) and renders the Hartley slices at the poses.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.neural_field import NeuralField


class HeterogeneousVAE(nn.Module):
    def __init__(self, D: int, zdim: int, enc_width: int = 256, enc_depth: int = 3, dec_width: int = 256,
                 dec_depth: int = 3, encoding: str = "gaussian", seed: int = 0, max_freq: float = 1.0):
        super().__init__()
        self.encoder = ImageEncoder(D, zdim, enc_width, enc_depth)
        self.decoder = NeuralField(D, zdim, dec_width, dec_depth, encoding, seed=seed, max_freq=max_freq)

    def forward(self, encoder_input: torch.Tensor, rotations: torch.Tensor,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (slices (B, D, D), μ (B, zdim), log σ² (B, zdim))."""
        mu, logvar = self.encoder(encoder_input)
        z = mu if noise is None else mu + torch.exp(0.5 * logvar) * noise
        return self.decoder.slices(rotations, z), mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(dim=1)).mean()

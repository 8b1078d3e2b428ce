"""The heterogeneous VAE of cryoDRGN (thesis §3.1): an image encoder and a latent-conditioned
neural field decoder, as a volume model (:mod:`cryoscape.models.contract`).

Loss per batch: mse + β · KL / N_mask (KL(N(μ, σ²) ‖ N(0, I)) summed over z, averaged over images;
N_mask the pixels of the loss mask; β = 1/zdim by default, as cryoDRGN), the encoder reading the
phase-flipped image sign(CTF) · H[image] and z = μ + σ · noise (reparameterization, noise drawn from
the engine's generator). Per-particle outputs: the latent means ``z`` and variances ``z_var``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.models.contract import ImageBatch, VolumeModel, reconstruction_error
from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.neural_field import NeuralField, check_field_settings
from cryoscape.models.registry import ModelSettings, register


class HeterogeneousVAE(VolumeModel):
    def __init__(
        self,
        D: int,
        zdim: int,
        enc_width: int = 256,
        enc_depth: int = 3,
        dec_width: int = 256,
        dec_depth: int = 3,
        encoding: str = "gaussian",
        seed: int = 0,
        max_freq: float = 1.0,
        beta: float | None = None,
    ):
        super().__init__()
        self.encoder = ImageEncoder(D, zdim, enc_width, enc_depth)
        self.decoder = NeuralField(D, zdim, dec_width, dec_depth, encoding, seed=seed, max_freq=max_freq)
        self.D, self.zdim, self.radius = D, zdim, self.decoder.radius
        self.kl_weight = 1.0 / zdim if beta is None else beta

    def slices(
        self, rotations: Float[Tensor, "B 3 3"], z: Float[Tensor, "B Z"] | None = None
    ) -> Float[Tensor, "B D D"]:
        return self.decoder.slices(rotations, z)

    def volumes(self, z: Float[Tensor, "B Z"] | None = None, chunk: int = 2**16) -> Float[Tensor, "B D D D"]:
        if z is None:
            raise InputError("this run is a VAE: give latent values")
        return self.decoder.volumes(z, chunk)

    @staticmethod
    def encoder_input(batch: ImageBatch) -> Float[Tensor, "B D D"]:
        """The phase-flipped images sign(CTF) · H[image] (B, D, D)."""
        return batch.images_ht if batch.ctf is None else batch.images_ht * torch.sign(batch.ctf)

    def forward(
        self, batch: ImageBatch, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        mu, logvar = self.encoder(self.encoder_input(batch))
        noise = torch.randn(len(batch.index), self.zdim, generator=generator, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * noise
        mse = reconstruction_error(self.decoder.slices(batch.poses(), z), batch, mask)
        kl = kl_divergence(mu.float(), logvar.float())
        return {"loss": mse + self.kl_weight * kl / int(mask.sum()), "mse": mse, "kl": kl}

    @property
    def output_dims(self) -> dict[str, int]:
        return {"z": self.zdim, "z_var": self.zdim}

    def particle_outputs(self, batch: ImageBatch) -> dict[str, torch.Tensor]:
        mu, logvar = self.encoder(self.encoder_input(batch))
        return {"z": mu, "z_var": logvar.exp()}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()


@register
@dataclass(frozen=True)
class VAESettings(ModelSettings):
    """cryoDRGN's VAE: latent width ``zdim``, encoder ``enc_width`` × ``enc_depth``, decoder
    ``width`` × ``depth`` with positional ``encoding`` and band limit ``max_freq``, KL weight ``beta``
    (None: 1/zdim)."""

    kind = "vae"
    command = "train-vae"
    option = "vae"
    summary = "cryoDRGN's VAE: an image encoder and a latent-conditioned neural field"
    zdim: int = 1  # a field here, a property (0) in the base
    enc_width: int = 256
    enc_depth: int = 3
    width: int = 256
    depth: int = 3
    encoding: str = "gaussian"
    max_freq: float = 1.0
    beta: float | None = None

    def check(self) -> None:
        if self.zdim < 1:
            raise InputError(f"the latent dimension (--zdim) must be at least 1, got {self.zdim}")
        check_field_settings(self.width, self.depth, self.encoding, self.max_freq)
        if self.enc_width < 1 or self.enc_depth < 1:
            raise InputError(
                f"the encoder needs a width and depth of at least 1, got {self.enc_width} and {self.enc_depth}"
            )

    def build(self, D: int, seed: int) -> HeterogeneousVAE:
        return HeterogeneousVAE(
            D,
            self.zdim,
            self.enc_width,
            self.enc_depth,
            self.width,
            self.depth,
            self.encoding,
            seed=seed,
            max_freq=self.max_freq,
            beta=self.beta,
        )

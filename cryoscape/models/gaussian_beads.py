"""Gaussian-bead volume models deformed per particle (e2gmm, cryoSPHERE, cryofold) as one family.

The map of particle i is M isotropic Gaussians (:mod:`cryoscape.imaging.gaussians`) at centres
decoded from its latent z_i (:mod:`cryoscape.models.bead_deformation`), with masses and widths shared
by all particles and learned. z_i comes from the VAE's image encoder (the phase-flipped image). The
loss is the image term ``loss`` (:mod:`cryoscape.models.image_losses`: by default the VAE's Gaussian
likelihood of the CTF-weighted Hartley images, the mean squared error over the band; or e2gmm's 1 −
FRC, or cryoSPHERE's 1 − correlation) + β · KL / N_mask, plus, for ``segments`` and ``residues``,
``restraint_weight`` × (bond + clash, + angle for ``residues``) in Å²
(:mod:`cryoscape.models.bead_restraints`).

Scale: masses are in units of the start model (electrons, or map units) times one gain, set by
least squares on the first training batch (the start model's CTF-weighted slices against the
images), so that training starts at the data's scale whatever the units of the start. Slices are
computed in float32 also under bfloat16 autocast (their phases reach 2π·D/2 radians).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor, nn

from cryoscape.errors import InputError
from cryoscape.imaging.forward import transfer
from cryoscape.imaging.gaussians import bead_slices, bead_volume
from cryoscape.imaging.grids import circular_mask
from cryoscape.models.bead_deformation import DEFORMATIONS, BeadDeformation
from cryoscape.models.bead_restraints import BeadRestraints
from cryoscape.models.bead_start import StartBeads
from cryoscape.models.contract import ImageBatch, VolumeModel, band_limit_radius, check_max_freq
from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.image_losses import LOSSES, image_loss
from cryoscape.models.registry import ModelSettings, register
from cryoscape.models.vae import HeterogeneousVAE, kl_divergence

LOSS_TERMS = {"gaussian": "mse", "frc": "one_minus_frc", "correlation": "one_minus_correlation"}  # log.csv columns


class GaussianBeads(VolumeModel):
    """Beads from ``start``, moved by ``deform`` from a ``zdim`` latent (see module docstring)."""

    disk: torch.Tensor
    calibrated: torch.Tensor

    def __init__(
        self,
        D: int,
        start: StartBeads,
        zdim: int,
        deform: str = "free",
        enc_width: int = 256,
        enc_depth: int = 3,
        width: int = 256,
        depth: int = 3,
        n_segments: int = 20,
        beta: float | None = None,
        restraint_weight: float = 1.0,
        max_freq: float = 1.0,
        loss: str = "gaussian",
    ):
        super().__init__()
        self.loss = loss
        self.D, self.zdim, self.radius = D, zdim, band_limit_radius(D, max_freq)
        centers = torch.as_tensor(start.centers, dtype=torch.float32)
        masses = torch.as_tensor(start.masses, dtype=torch.float32)
        self.encoder = ImageEncoder(D, zdim, enc_width, enc_depth)
        self.deformation = BeadDeformation(centers, zdim, deform, width, depth, n_segments)
        self.restraints = (
            BeadRestraints(centers, torch.as_tensor(start.bonds), start.apix, angles=deform == "residues")
            if deform != "free"
            else None
        )
        self.log_mass = nn.Parameter(torch.log(masses / masses.mean()))
        self.log_sigma = nn.Parameter(torch.log(torch.as_tensor(start.sigmas, dtype=torch.float32)))
        self.log_gain = nn.Parameter(torch.log(masses.mean()))
        self.register_buffer("calibrated", torch.tensor(False))
        self.register_buffer("disk", circular_mask(D, self.radius), persistent=False)
        self.kl_weight = 1.0 / zdim if beta is None else beta
        self.restraint_weight = restraint_weight

    def masses(self) -> Float[Tensor, " M"]:
        return (self.log_mass + self.log_gain).exp()

    def sigmas(self) -> Float[Tensor, " M"]:
        return self.log_sigma.exp()

    def centers(self, z: Float[Tensor, "B Z"]) -> Float[Tensor, "B M 3"]:
        """Bead centres (B, M, 3), pixels from the box origin (x, y, z), of latents ``z`` (B, zdim)."""
        return self.deformation(z)

    def _slices_at(self, centers: Tensor, rotations: Tensor) -> Tensor:
        with torch.autocast(rotations.device.type, enabled=False):
            return bead_slices(centers.float(), self.masses(), self.sigmas(), rotations.float(), self.D) * self.disk

    def slices(
        self, rotations: Float[Tensor, "B 3 3"], z: Float[Tensor, "B Z"] | None = None
    ) -> Float[Tensor, "B D D"]:
        if z is None:
            raise InputError("this run is a bead model with a latent: give latent values")
        return self._slices_at(self.centers(z), rotations)

    @torch.no_grad()
    def volumes(self, z: Float[Tensor, "B Z"] | None = None) -> Float[Tensor, "B D D D"]:
        if z is None:
            raise InputError("this run is a bead model with a latent: give latent values")
        centers = self.centers(z.float())
        return torch.stack([bead_volume(c, self.masses(), self.sigmas(), self.D) for c in centers])

    @torch.no_grad()
    def _calibrate(self, batch: ImageBatch, mask: Tensor) -> None:
        """Set the gain so that the start model's CTF-weighted slices best fit the batch (least squares)."""
        with torch.autocast(batch.images_ht.device.type, enabled=False):
            start = self.deformation.start.expand(len(batch.index), -1, -1)
            model = transfer(self._slices_at(start, batch.poses()), batch.ctf)[:, mask] / self.log_gain.exp()
            data = batch.images_ht[:, mask].float()
            gain = float((model * data).sum() / model.square().sum())
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            g = torch.tensor([gain], device=mask.device)
            torch.distributed.all_reduce(g)
            gain = float(g) / torch.distributed.get_world_size()
        if not gain > 0:
            raise InputError(
                "the images correlate negatively with the start model at the given poses: "
                "are they dark on light (give --invert), or is the model's hand or frame wrong?"
            )
        self.log_gain.fill_(math.log(gain))
        self.calibrated.fill_(True)

    def forward(
        self, batch: ImageBatch, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        if not bool(self.calibrated):
            self._calibrate(batch, mask)
        mu, logvar = self.encoder(HeterogeneousVAE.encoder_input(batch))
        noise = torch.randn(len(batch.index), self.zdim, generator=generator, device=mu.device)
        centers = self.centers(mu + torch.exp(0.5 * logvar) * noise)
        model_ht = transfer(self._slices_at(centers, batch.poses()), batch.ctf)
        fit = image_loss(self.loss, model_ht, batch.images_ht, mask)
        kl = kl_divergence(mu.float(), logvar.float())
        terms = {LOSS_TERMS[self.loss]: fit, "kl": kl}
        loss = fit + self.kl_weight * kl / int(mask.sum())
        if self.restraints is not None:
            restraint = self.restraints(centers)
            loss = loss + self.restraint_weight * sum(restraint.values())
            terms |= restraint
        return {"loss": loss, **terms}

    @property
    def output_dims(self) -> dict[str, int]:
        return {"z": self.zdim, "z_var": self.zdim}

    def particle_outputs(self, batch: ImageBatch) -> dict[str, torch.Tensor]:
        mu, logvar = self.encoder(HeterogeneousVAE.encoder_input(batch))
        return {"z": mu, "z_var": logvar.exp()}


@register
@dataclass(frozen=True)
class GaussianBeadSettings(ModelSettings):
    """A bead model: the start ``beads`` (:meth:`StartBeads.to_json`), ``init_model`` (the atomic
    model file they came from, for eval-vol's PDB output; "" for map beads), latent width ``zdim``,
    deformation ``deform`` with ``n_segments`` segments, encoder ``enc_width`` × ``enc_depth``,
    decoder ``width`` × ``depth``, KL weight ``beta`` (None: 1/zdim), ``restraint_weight`` per Å²,
    band limit ``max_freq``, image ``loss`` (:data:`cryoscape.models.image_losses.LOSSES`)."""

    kind = "gmm"
    command = "train-gmm"
    option = "gmm"
    # batch 32 at 4e-4, falling by 0.7 per epoch: on adk (benchmarks/gmm.md, 6 epochs) 1.57 Å mean Cα
    # RMSD at 6.3x the VAE's images/s; batch 8 at 1e-4 (the VAE's): 1.50 Å at 3.6x; batch 32 at 2e-4
    # without the decay: 1.72 Å (measured once, beside the benchmark)
    default_lr = 4e-4
    default_lr_decay = 0.7
    default_batch_size = 32
    amp_pays = False  # float32 is faster: the encoder is the one network, and small (benchmarks/gmm.md)
    summary = "Gaussian beads moved per particle (e2gmm, cryoSPHERE, cryofold)"
    beads: dict = field(default_factory=dict)
    init_model: str = ""
    zdim: int = 4  # a field here, a property (0) in the base
    deform: str = "free"
    enc_width: int = 256
    enc_depth: int = 3
    width: int = 256
    depth: int = 3
    n_segments: int = 20
    beta: float | None = None
    restraint_weight: float = 1.0
    max_freq: float = 1.0
    loss: str = "gaussian"

    def check(self) -> None:
        if self.zdim < 1:
            raise InputError(f"the latent dimension (--zdim) must be at least 1, got {self.zdim}")
        if self.deform not in DEFORMATIONS:
            raise InputError(f"--deform must be one of {', '.join(DEFORMATIONS)}, got {self.deform!r}")
        if self.n_segments < 1:
            raise InputError(f"--segments must be at least 1, got {self.n_segments}")
        if self.loss not in LOSSES:
            raise InputError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.restraint_weight < 0:
            raise InputError(f"--restraint-weight must be >= 0, got {self.restraint_weight}")
        if not self.beads:
            raise InputError("a bead model needs start beads (--init-model or --init-map)")
        check_max_freq(self.max_freq)

    def start(self) -> StartBeads:
        return StartBeads.from_json(self.beads)

    def build(self, D: int, seed: int) -> GaussianBeads:
        torch.manual_seed(seed)
        return GaussianBeads(
            D,
            self.start(),
            self.zdim,
            self.deform,
            self.enc_width,
            self.enc_depth,
            self.width,
            self.depth,
            self.n_segments,
            self.beta,
            self.restraint_weight,
            self.max_freq,
            self.loss,
        )

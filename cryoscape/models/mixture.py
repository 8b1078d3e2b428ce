"""A mixture of neural fields with a junk class (compositional + conformational heterogeneity,
after Hydra, ../shared/spec/hydra.md), as a volume model (:mod:`cryoscape.models.contract`).

Generative model of image i (Hartley pixels p of the loss mask, normalized units): a class
k ∈ {0..K−1, junk} drawn with the global proportions π; for a class k < K a latent z_k (zdim
numbers, none for zdim 0) and the image CTF · slice_k(R_i, z_k) + noise; for junk the image is noise
alone (the zero map: nothing a structured map explains). The noise is Gaussian, independent between
Hartley pixels, with a variance σ²(s) per Fourier shell s estimated from the data (below), so that

    log p(image | k) = −Σ_p (CTF·slice_k − image)²_p / (2 σ²(s_p))        (up to a constant)
    log p(image | junk) = −Σ_p image_p² / (2 σ²(s_p))

a properly scaled likelihood, summed over pixels (not Hydra's per-pixel mean, which tempers it by
the number of pixels). The loss is the negative tempered log marginal likelihood per pixel,
−log Σ_k π_k exp(β · log p(image | k)) / P (P pixels in the mask), plus, with zdim > 0,
the KL of each class's latent weighted by the class's posterior (β_KL · Σ_k r_k KL_k / P, β_KL =
1/zdim by default, as the VAE). The posterior of image i is r_ik ∝ π_k exp(β · log p(image | k)).

Annealing and warm start: β = β₀^(1 − e/A) in epoch e + 1 (e epochs done) for e < A, then 1 (β₀ =
``start_temperature``, default 0.01; A = ``anneal_epochs``, default 2). In these A warm-up epochs the
junk class is left out and each batch's responsibilities are balanced (every class takes an equal
share of the batch; :func:`~cryoscape.models.mixture_classes.balanced_responsibilities`), and the
loss is the expected tempered log-likelihood −Σ_k q_ik β log p(image | k) / P under them: the heads
start alike, and the balance makes each specialize on the images it fits best instead of one head
taking every image (without it, on two species at D=24, one head took both within 3 epochs). From
epoch A + 1 on: the exact posterior and the marginal likelihood above.

Noise: σ²(s) starts at the power of the first batch's images in each shell (signal + noise, so the
first steps are soft too) and then follows the mean of the posterior-weighted squared residual
Σ_k r_ik (CTF·slice_k − image)² in each shell (an exponential moving average over batches,
``noise_momentum`` 0.95 per batch).

Classes: K separate neural fields (heads) with different positional-encoding seeds and network
initializations; one image encoder gives each image one latent per class (K × zdim numbers, from
the phase-flipped image as the VAE's). After every epoch (:meth:`end_epoch`) the proportions are
re-estimated as the mean posterior over all particles (the EM update), and after epoch A classes
are pruned and merged (:mod:`cryoscape.models.mixture_classes`). Pruned and merged classes keep their
index and get proportion 0 (their column of class_prob is 0) and are no longer rendered. Cost: in
the warm-up every class is rendered for every image, so a warm-up epoch costs about K times one
field's; after it, a low-resolution pass screens the classes and each image renders at full
resolution only those it may belong to (:mod:`cryoscape.models.mixture_screening`). Measured
(benchmarks/mixture.md, D=64, 2 CPU cores): after the warm-up, a training image costs 1.33× as long
at K=3 as at K=1 (2.5× without screening, in the warm-up); -k 8 on three species + junk found K=3
with ARI 0.9997.

Measured (known poses, 2 CPU cores): adk closed→open (10 frames) + 1hvr + 1a28 + 10% noise junk,
D=32, 3 Å/px, SNR 0.1, 3000 particles, -k 5, 12 epochs: ARI 0.995 with junk as a class, K found 3
(two empty classes pruned at epoch 3), junk recall 1.0 and precision 0.997, class maps at 10.6,
10.6 (adk, middle frames) and 13.4 Å FSC=0.5 against their truth. A warm-up too short for the heads
to specialize lets one head take every image: on the tests' two-species toy (400 particles, -k 3),
2,000 warm-up images collapsed 3 of 6 seeds, 3,200 separated 12 of 12 (``mixture_settings.WARMUP_IMAGES``).

Per-particle outputs: ``class_prob`` (N, K + 1), the posterior with the junk column last;
``evidence`` (N, K), log p(image | k) − log p(image | junk) in nats (0 for pruned classes; over the
screening band only for classes screened out for the image); ``z``
(N, zdim) each particle's latent mean within its most probable (non-junk) class (zdim > 0 only);
derived after each epoch, ``class`` (N,) int64: the most probable class, −1 for junk.
"""

from __future__ import annotations

import logging
from typing import cast

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from cryoscape.errors import InputError
from cryoscape.imaging.forward import transfer
from cryoscape.imaging.grids import fourier_disk_mask, radial_index_2d
from cryoscape.models.contract import ImageBatch, VolumeModel, band_limit_radius, batch_rows
from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.mixture_classes import balanced_responsibilities, prune_and_merge
from cryoscape.models.mixture_screening import screen_classes, screens
from cryoscape.models.mixture_settings import MixtureSettings
from cryoscape.models.neural_field import NeuralField
from cryoscape.models.vae import HeterogeneousVAE

log = logging.getLogger("cryoscape")

# images rendered together in the per-particle pass: K fields at 256 images at once are memory-bound
# (float32, D=64, K=8, 2 CPU cores: 19 s per 256 images in one chunk, 12 s in chunks of 16)
OUTPUT_CHUNK = 16


class MixtureOfFields(VolumeModel):
    """K neural-field heads + junk (see module docstring). Buffers (saved in checkpoints):
    ``proportions`` (K + 1,) π with junk last, 0 for pruned classes; ``noise_var`` (D//2 + 1,)
    σ² per Fourier shell, normalized units (0 until the first training batch); ``epochs_done``."""

    proportions: Tensor
    noise_var: Tensor
    epochs_done: Tensor
    shell: Tensor  # (D, D) long: Fourier shell of each pixel

    def __init__(self, D: int, settings: MixtureSettings, seed: int = 0):
        super().__init__()
        s = settings
        self.settings, self.K, self.zdim = s, s.classes, s.zdim
        self.heads = nn.ModuleList(
            NeuralField(D, s.zdim, s.width, s.depth, s.encoding, seed=seed + 7919 * k, max_freq=s.max_freq)
            for k in range(s.classes)
        )
        self.D, self.radius = D, band_limit_radius(D, s.max_freq)
        self.encoder = ImageEncoder(D, s.classes * s.zdim, s.enc_width, s.enc_depth) if s.zdim else None
        self.kl_weight = (1.0 / s.zdim if s.beta is None else s.beta) if s.zdim else 0.0
        active = torch.ones(s.classes + 1)
        active[-1] = float(s.junk)
        self.register_buffer("proportions", active / active.sum())
        self.register_buffer("noise_var", torch.zeros(D // 2 + 1))
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("shell", radial_index_2d(D).clamp(max=D // 2), persistent=False)

    # --- rendering -------------------------------------------------------------------------
    def slices(self, rotations: Float[Tensor, "B 3 3"], z: Float[Tensor, "B Z"] | None = None) -> Tensor:
        raise InputError("a mixture has one map per class: render a class (class_model(c).slices)")

    def volumes(self, z: Float[Tensor, "B Z"] | None = None) -> Tensor:
        raise InputError("this run is a mixture of classes: choose a class (eval-vol --class C)")

    @property
    def n_classes(self) -> int:
        return self.K

    def class_model(self, c: int) -> VolumeModel:
        """Head ``c`` (a :class:`NeuralField` with this model's zdim); InputError for a class that does
        not exist or was pruned or merged."""
        if not 0 <= c < self.K:
            raise InputError(f"class {c} does not exist: this mixture has classes 0..{self.K - 1}")
        if float(self.proportions[c]) == 0:
            raise InputError(f"class {c} was pruned or merged (see run.log); classes left: {self.kept_classes()}")
        return self.head(c)

    def head(self, c: int) -> NeuralField:
        """The neural field of class ``c``, whatever its state."""
        return cast(NeuralField, self.heads[c])

    def kept_classes(self) -> list[int]:
        """Indices of the classes not pruned or merged."""
        return [k for k in range(self.K) if float(self.proportions[k]) > 0]

    # --- likelihood --------------------------------------------------------------------------
    def temperature(self) -> float:
        """β of the coming epoch (module docstring)."""
        s, done = self.settings, int(self.epochs_done)
        return 1.0 if done >= s.anneal_epochs else s.start_temperature ** (1 - done / s.anneal_epochs)

    def _latents(self, batch: ImageBatch, sample: bool, generator: torch.Generator | None):
        """(z (B, K, zdim), KL (B, K)) or (None, None) for zdim 0; ``sample``: z drawn, else the means."""
        if self.encoder is None:
            return None, None
        mu, logvar = self.encoder(HeterogeneousVAE.encoder_input(batch))
        B = mu.shape[0]
        mu, logvar = mu.float().reshape(B, self.K, self.zdim), logvar.float().reshape(B, self.K, self.zdim)
        z = mu
        if sample:
            noise = torch.randn(mu.shape, generator=generator, device=mu.device)
            z = mu + torch.exp(0.5 * logvar) * noise
        return z, -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)  # KL(q(z_k) ‖ N(0, I)) (B, K)

    def noise_variance(self, data: Tensor, shells: Tensor) -> Tensor:
        """σ² (P,) at the pixels of ``shells`` (P,); before the first update, the shells' power in ``data`` (B, P)."""
        if bool(self.noise_var[shells].gt(0).all()):
            return self.noise_var[shells]
        power = _shell_mean((data**2).mean(0), shells, len(self.noise_var))
        return power.clamp(min=1e-8)[shells]

    def log_likelihoods(
        self, batch: ImageBatch, mask: Tensor, z: Tensor | None, candidates: Tensor | None = None
    ) -> tuple[Float[Tensor, "B C"], Float[Tensor, "B C P"], Tensor, Tensor]:
        """(log p(image | k) (B, K + 1), squared residuals (B, K + 1, P), images at the mask (B, P),
        shell of each mask pixel (P,)); junk last. Classes with proportion 0 are not rendered (value 0,
        meaningless). ``candidates`` (B, K) bool: render class k only for the images it marks (the
        others: −inf and residuals 0; :mod:`~cryoscape.models.mixture_screening`); None: every image."""
        rotations = batch.poses()
        data = batch.images_ht[:, mask].float()
        shells = self.shell[mask]
        weight = 0.5 / self.noise_variance(data, shells)
        B = data.shape[0]
        lls, squares = [], []
        for k in range(self.K):
            rows = torch.arange(B, device=data.device) if candidates is None else candidates[:, k].nonzero()[:, 0]
            sq, ll = torch.zeros_like(data), data.new_full((B,), 0.0 if candidates is None else -torch.inf)
            if float(self.proportions[k]) > 0 and len(rows):
                latent = None if z is None else z[rows, k]
                ctf = None if batch.ctf is None else batch.ctf[rows]
                residual = (
                    transfer(self.head(k).slices(rotations[rows], latent).float(), ctf)[:, mask] - data[rows]
                ) ** 2
                sq, ll = sq.index_copy(0, rows, residual), ll.index_copy(0, rows, -(residual * weight).sum(-1))
            squares.append(sq)
            lls.append(ll)
        squares.append(data**2)  # junk: the zero map
        lls.append(-(data**2 * weight).sum(-1))
        return torch.stack(lls, 1), torch.stack(squares, 1), data, shells

    def posterior_logits(self, ll: Tensor) -> Tensor:
        """log π_k + β · log p(image | k) (B, K + 1), −inf for components with proportion 0."""
        logits = self.proportions.log() + self.temperature() * ll
        return torch.where(self.proportions > 0, logits, torch.full_like(logits, -torch.inf))

    def forward(self, batch: ImageBatch, mask: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        z, kl = self._latents(batch, True, generator)
        candidates = screen_classes(self, batch, z)[0] if screens(self) else None
        ll, sq, data, shells = self.log_likelihoods(batch, mask, z, candidates)
        logits = self.posterior_logits(ll)
        log_evidence = torch.logsumexp(logits, dim=1)  # (B,)
        P = data.shape[1]
        nll = -log_evidence.mean()
        if self.training and int(self.epochs_done) < self.settings.anneal_epochs:
            r = balanced_responsibilities(logits)  # warm-up: every class takes an equal share
            loss = -(r[:, :-1] * self.temperature() * ll[:, :-1]).sum(1).mean() / P
        else:
            r = torch.softmax(logits, dim=1).detach()
            loss = nll / P
        mse = (r[:, :, None] * sq.detach()).sum(1).mean()
        terms = {"loss": loss, "nll": nll.detach(), "mse": mse, "junk": r[:, -1].mean()}
        if kl is not None:
            kl_mean = (r[:, :-1] * kl).sum(1).mean()
            loss = loss + self.kl_weight * kl_mean / P
            terms.update(loss=loss, kl=kl_mean.detach())
        if self.training:
            self._update_noise((r[:, :, None] * sq.detach()).sum(1), shells)
        return terms

    @torch.no_grad()
    def _update_noise(self, residual2: Tensor, shells: Tensor) -> None:
        """Move σ² toward the batch's posterior-weighted squared residual (B, P) per shell."""
        estimate = _shell_mean(residual2.mean(0), shells, len(self.noise_var))
        seen = torch.bincount(shells, minlength=len(self.noise_var)) > 0
        first = self.noise_var <= 0
        m = self.settings.noise_momentum
        updated = torch.where(first, estimate, m * self.noise_var + (1 - m) * estimate)
        self.noise_var.copy_(torch.where(seen, updated.clamp(min=1e-8), self.noise_var))

    # --- per-particle outputs ---------------------------------------------------------------------
    @property
    def output_dims(self) -> dict[str, int]:
        return {"class_prob": self.K + 1, "evidence": self.K, **({"z": self.zdim} if self.zdim else {})}

    @torch.no_grad()
    def particle_outputs(self, batch: ImageBatch) -> dict[str, Tensor]:
        """The per-particle outputs (module docstring), rendered OUTPUT_CHUNK images at a time."""
        parts = [self._chunk_outputs(chunk) for chunk in batch_rows(batch, OUTPUT_CHUNK)]
        return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}

    def _chunk_outputs(self, batch: ImageBatch) -> dict[str, Tensor]:
        mask = fourier_disk_mask(self.D, batch.images_ht.device, self.radius)
        z, _ = self._latents(batch, False, None)
        candidates, evidence = screen_classes(self, batch, z) if screens(self) else (None, None)
        ll, *_ = self.log_likelihoods(batch, mask, z, candidates)
        prob = torch.softmax(self.posterior_logits(ll), dim=1)
        full = torch.where(self.proportions[:-1] > 0, ll[:, :-1] - ll[:, -1:], torch.zeros_like(ll[:, :-1]))
        evidence = full if candidates is None or evidence is None else torch.where(candidates, full, evidence)
        out = {"class_prob": prob, "evidence": evidence}
        if z is not None:
            best = prob[:, :-1].argmax(1)
            out["z"] = z[torch.arange(len(best), device=z.device), best]
        return out

    def end_epoch(self, epoch: int, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """EM update of the proportions, pruning and merging (from epoch ``anneal_epochs`` on), the
        ``class`` labels; logs every decision (see :func:`prune_and_merge`)."""
        outputs = dict(outputs)
        prob = prune_and_merge(self, epoch, outputs["class_prob"], outputs["evidence"], outputs.get("z"))
        proportions = prob.mean(0)
        self.proportions.copy_(torch.as_tensor(proportions, dtype=torch.float32))
        self.epochs_done.fill_(epoch)
        outputs["class_prob"] = prob.astype(np.float32)
        labels = prob.argmax(1)
        outputs["class"] = np.where(labels == self.K, -1, labels).astype(np.int64)
        shares = ", ".join(f"{k}: {proportions[k]:.3f}" for k in self.kept_classes())
        log.info(
            "epoch %d: K = %d classes, proportions %s%s; next temperature %.3g",
            epoch,
            len(self.kept_classes()),
            shares,
            f", junk {proportions[-1]:.3f}" if self.settings.junk else "",
            self.temperature(),
        )
        return outputs


def _shell_mean(values: Tensor, shells: Tensor, n: int) -> Tensor:
    """Mean of ``values`` (P,) per shell (n,) (0 for shells without pixels)."""
    total = torch.zeros(n, device=values.device).index_add_(0, shells, values.float())
    count = torch.bincount(shells, minlength=n).clamp(min=1)
    return total / count

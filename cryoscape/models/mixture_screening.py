"""Screening the classes of a mixture (:mod:`cryoscape.models.mixture`) before rendering them, so an
epoch with K classes costs far less than K single-class epochs.

After the warm-up most images belong to one class with a posterior near 1, yet rendering every class
at full resolution for every image costs K fields' work. So, once the likelihood is exact
(temperature 1), every kept class is first rendered without gradients at low resolution only (within
a third of the band limit: a ninth of the pixels), and the posterior over that band is computed, with
the proportions and the junk class, as the full one is. Only the classes whose low-resolution
posterior is at least ``screen`` (default 1e-3), and each image's most probable class, are rendered
at full resolution and trained on that image; the others get posterior 0 for it. ``screen`` 0 renders
every class, as in the warm-up.

Species differ most at low resolution, where the signal is strongest, so the screen rarely drops a
class that the full posterior would keep: near-identical classes (the same species in two states)
stay candidates together and are weighed at full resolution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from cryoscape.imaging.forward import transfer
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.models.contract import ImageBatch

if TYPE_CHECKING:
    from cryoscape.models.mixture import MixtureOfFields

SCREEN_FRACTION = 1 / 3  # of the band limit radius


def screening_radius(radius: int) -> int:
    """The Fourier radius (pixels) of the low-resolution pass for a band limit of ``radius`` pixels."""
    return max(2, round(radius * SCREEN_FRACTION))


def screens(model: MixtureOfFields) -> bool:
    """Whether the coming forward passes screen: after the warm-up, with ``screen`` > 0 and more than
    one class kept."""
    return model.settings.screen > 0 and model.temperature() == 1.0 and len(model.kept_classes()) > 1


@torch.no_grad()
def screen_classes(model: MixtureOfFields, batch: ImageBatch, z: Tensor | None) -> tuple[Tensor, Tensor]:
    """(candidates (B, K) bool: the classes to render at full resolution for each image; evidence
    (B, K) over the low-resolution band, log p(image | k) − log p(image | junk) in nats, 0 for pruned
    classes). ``z`` (B, K, zdim) or None for zdim 0."""
    radius = screening_radius(model.radius)
    mask = fourier_disk_mask(model.D, batch.images_ht.device, radius)
    rotations = batch.poses()
    data = batch.images_ht[:, mask].float()
    weight = 0.5 / model.noise_variance(data, model.shell[mask])
    B, K = data.shape[0], model.K
    ll = data.new_zeros(B, K + 1)
    for k in model.kept_classes():
        latent = None if z is None else z[:, k]
        rendered = transfer(model.head(k).slices(rotations, latent, radius_px=radius).float(), batch.ctf)[:, mask]
        ll[:, k] = -((rendered - data) ** 2 * weight).sum(-1)
    ll[:, -1] = -(data**2 * weight).sum(-1)
    posterior = torch.softmax(model.posterior_logits(ll), dim=1)[:, :K]
    kept = model.proportions[:K] > 0
    candidates = (posterior >= model.settings.screen) & kept
    candidates[torch.arange(B, device=data.device), posterior.argmax(1)] = True
    evidence = torch.where(kept, ll[:, :K] - ll[:, K:], torch.zeros_like(ll[:, :K]))
    return candidates, evidence

"""Image losses of a model's CTF-weighted slices against the observed images, on centred Hartley
images over the training mask (the engine's band: radius ≤ the model's band limit, DC excluded).

- ``gaussian``: the mean squared error per pixel, the negative log-likelihood of white Gaussian noise
  up to its scale (the VAE's loss: :func:`cryoscape.models.contract.reconstruction_error` is this one).
- ``frc``: 1 − the mean over Fourier rings (round(|k|), 1 … band) of each image's Fourier ring
  correlation with its model image, averaged over images (e2gmm's loss, −FRC, up to the constant).
- ``correlation``: 1 − each image's Pearson correlation with its model image over the band, averaged
  over images; without DC it is the real-space correlation of the band-passed images (cryoSPHERE's
  loss, there in real space over all frequencies).

On a mask symmetric under k → −k, Σ H₁·H₂ over Hartley pixels equals Σ Re(F₁·F₂*) over Fourier ones
(the odd cross terms cancel), so both correlations are the Fourier ones. ``frc`` and ``correlation``
ignore the model's scale; all three are near 1 per pixel or per image for pure noise, so the KL and
restraint weights keep their meaning to within the data's SNR.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from cryoscape.imaging.grids import radial_index_2d

LOSSES = ("gaussian", "frc", "correlation")
_TINY = 1e-12


def image_loss(
    kind: str, model_ht: Float[Tensor, "B D D"], images_ht: Float[Tensor, "B D D"], mask: Bool[Tensor, "D D"]
) -> Float[Tensor, ""]:
    """The ``kind`` loss (one of :data:`LOSSES`) of CTF-weighted model images ``model_ht`` against
    ``images_ht`` over ``mask``, in float32."""
    m, y = model_ht.float()[:, mask], images_ht.float()[:, mask]  # (B, P)
    if kind == "gaussian":
        return ((m - y) ** 2).mean()
    if kind == "correlation":
        cross, mm, yy = (m * y).sum(1), (m * m).sum(1), (y * y).sum(1)
        return 1 - (cross / torch.sqrt(mm * yy + _TINY)).mean()
    if kind == "frc":
        return 1 - ring_correlation(m, y, radial_index_2d(mask.shape[-1], mask.device)[mask]).mean()
    raise ValueError(f"unknown loss {kind!r}: one of {', '.join(LOSSES)}")


def ring_correlation(m: Float[Tensor, "B P"], y: Float[Tensor, "B P"], ring: Tensor) -> Float[Tensor, "B R"]:
    """Per image, the correlation of ``m`` and ``y`` (B, P) within each ring (P,) long, over the rings
    that hold a pixel (ascending)."""
    rings, index = torch.unique(ring, return_inverse=True)
    B, R = len(m), len(rings)

    def sums(values: Tensor) -> Tensor:
        return torch.zeros(B, R, device=values.device, dtype=values.dtype).index_add_(1, index, values)

    return sums(m * y) / torch.sqrt(sums(m * m) * sums(y * y) + _TINY)

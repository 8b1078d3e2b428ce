"""The volume-model contract: what every model family implements, with shapes.

A volume model represents the maps of a sample in normalized units (the training scale divided
out), on the centred D³ grid of the data ([z, y, x] maps, frequencies k = (index − D//2)/D
cycles/pixel), as its centred Fourier transform V̂ or, equivalently, its Hartley transform.

Rendering:
- :meth:`VolumeModel.slices` ``(rotations (B, 3, 3), z (B, zdim) | None) -> (B, D, D)``: Hartley
  slices H(Rᵀ(kx, ky, 0)) of each particle's map, zero beyond the band limit ``radius`` (Fourier
  pixels), the convention of :mod:`cryoscape.imaging.slicing`.
- :meth:`VolumeModel.volumes` ``(z (B, zdim) | None) -> (B, D, D, D)``: real-space maps for any
  value of the per-particle variables (one map for a model without them).

Training (what the engine in :mod:`cryoscape.inference` calls; it names no family):
- ``forward(batch, mask, generator) -> dict``: the loss terms of an :class:`ImageBatch`, the total
  under ``"loss"`` first, then its parts (each a scalar tensor, logged per epoch). The default is
  the Gaussian likelihood of the one forward model: mean over images and pixels of ``mask`` of
  (CTF · slice − image)² (:func:`reconstruction_error`). Being ``forward``, it runs under DDP.
- :attr:`VolumeModel.output_dims` and :meth:`VolumeModel.particle_outputs`: per-particle outputs the
  model declares (latent means, variances, class probabilities, poses), name -> width; the engine
  computes them for every particle in float32 after each epoch and writes NAME.EPOCH.npy.
- :meth:`VolumeModel.end_epoch` ``(epoch, outputs) -> outputs``: called by the engine after each
  epoch with those outputs (every particle's, in every process) before they are written: a model
  may update its state from them (e.g. class proportions) and return changed or extra outputs
  (any dtype and shape, particles first); the default returns them unchanged.
- :attr:`VolumeModel.n_classes` and :meth:`VolumeModel.class_model`: a model of discrete classes
  (0 classes by default) and the volume model of one of them.
Encoders are separate parts (:mod:`cryoscape.models.encoder`) that a family may use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from cryoscape.errors import InputError
from cryoscape.imaging.forward import transfer
from cryoscape.models.image_losses import image_loss


@dataclass
class ImageBatch:
    """``index`` (B,) rows of the particle table; ``images_ht`` (B, D, D) centred, normalized Hartley
    images; ``ctf`` (B, D, D) RELION-sign or None (CTF-free data); ``rotations`` (B, 3, 3) or None."""

    index: Int[Tensor, " B"]
    images_ht: Float[Tensor, "B D D"]
    ctf: Float[Tensor, "B D D"] | None
    rotations: Float[Tensor, "B 3 3"] | None

    def poses(self) -> Float[Tensor, "B 3 3"]:
        """The rotations (B, 3, 3); InputError for particles without poses."""
        if self.rotations is None:
            raise InputError("this model needs particle poses, and the batch has none")
        return self.rotations


def batch_rows(batch: ImageBatch, size: int) -> list[ImageBatch]:
    """``batch`` cut into consecutive batches of at most ``size`` images."""

    def rows(values: Tensor | None, start: int) -> Tensor | None:
        return None if values is None else values[start : start + size]

    return [
        ImageBatch(
            batch.index[s : s + size], batch.images_ht[s : s + size], rows(batch.ctf, s), rows(batch.rotations, s)
        )
        for s in range(0, len(batch.index), size)
    ]


def check_max_freq(max_freq: float) -> None:
    """InputError unless the band limit ``max_freq`` is a fraction of Nyquist in (0, 1]."""
    if not 0 < max_freq <= 1:
        raise InputError(f"the band limit (--max-freq) must be a fraction of Nyquist in (0, 1], got {max_freq}")


def band_limit_radius(D: int, max_freq: float) -> int:
    """The band limit in Fourier pixels of a D-pixel box (even, at least 4): ``max_freq`` × D/2, at
    least 1 and at most D/2 − 1 (cryoDRGN's mask, 1 = all frequencies). Slices, maps and the loss stop there."""
    if D < 4 or D % 2:
        raise InputError(f"box size must be even and at least 4, got {D}")
    check_max_freq(max_freq)
    return min(D // 2 - 1, max(1, int(max_freq * D / 2)))


def reconstruction_error(
    slices: Float[Tensor, "B D D"], batch: ImageBatch, mask: Bool[Tensor, "D D"]
) -> Float[Tensor, ""]:
    """Mean over images and the pixels of ``mask`` (D, D) of (CTF · slices − images)², in float32
    (the ``gaussian`` :func:`~cryoscape.models.image_losses.image_loss`)."""
    return image_loss("gaussian", transfer(slices.float(), batch.ctf), batch.images_ht, mask)


class VolumeModel(nn.Module):
    """Base of every family (see module docstring). Subclasses set ``D``, ``radius`` and ``zdim``
    and implement :meth:`slices` and :meth:`volumes`."""

    D: int
    radius: int  # band limit in Fourier pixels: slices, maps and the loss stop there
    zdim: int = 0  # width of the per-particle continuous variable z (0: none)

    def slices(
        self, rotations: Float[Tensor, "B 3 3"], z: Float[Tensor, "B Z"] | None = None
    ) -> Float[Tensor, "B D D"]:
        raise NotImplementedError

    def volumes(self, z: Float[Tensor, "B Z"] | None = None) -> Float[Tensor, "B D D D"]:
        raise NotImplementedError

    @torch.no_grad()
    def volume(self, z: Float[Tensor, " Z"] | None = None) -> Float[Tensor, "D D D"]:
        """(D, D, D) map of one value ``z`` (zdim,) of the per-particle variables (None: none)."""
        return self.volumes(None if z is None else z.reshape(1, -1))[0]

    def forward(
        self, batch: ImageBatch, mask: Bool[Tensor, "D D"], generator: torch.Generator | None = None
    ) -> dict[str, Float[Tensor, ""]]:
        mse = reconstruction_error(self.slices(batch.poses()), batch, mask)
        return {"loss": mse, "mse": mse}

    @property
    def output_dims(self) -> dict[str, int]:
        return {}

    def particle_outputs(self, batch: ImageBatch) -> dict[str, Float[Tensor, "B _"]]:
        """Per-particle outputs (B, width) of a batch, keys as :attr:`output_dims`."""
        return {}

    def end_epoch(self, epoch: int, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """After epoch ``epoch`` (1-based): update the model from every particle's ``outputs`` (name ->
        (N, width)); return the outputs to write (default: unchanged)."""
        return outputs

    @property
    def n_classes(self) -> int:
        """Number of discrete classes (0: a model without classes)."""
        return 0

    def class_model(self, c: int) -> VolumeModel:
        """The volume model of class ``c`` (InputError for a model without classes)."""
        raise InputError("this model has no classes")

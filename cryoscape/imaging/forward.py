"""The one image-formation forward model: image = shift ∘ CTF ∘ (central slice of a volume), and
its adjoint.

Every user composes these pieces: ``simulate`` renders images with :func:`render_images`;
backprojection inserts :func:`adjoint_images` (CTF · the image re-centred by +shift) with weights
CTF²; the training losses compare :func:`transfer` (CTF · the model's Hartley slice) with
:func:`centred_hartley` (the observed image re-centred by +shift, i.e. the adjoint of the shift, which
is unitary, so the loss equals the loss of the fully shifted model image).

Contrast convention: cryoscape images have RELION's contrast (particles are white: a positive
density gives positive pixel values at low frequency), and :class:`~cryoscape.imaging.ctf.CTF` has
RELION's sign, so a white particle is modelled as CTF · slice with a positive density. A real, even
CTF commutes with the Hartley transform, so the Hartley model image is CTF · H(slice).

Accuracy: slices are taken from a volume zero-padded ``oversample`` times (default 2) and
pre-divided by the Fourier transform of the trilinear kernel (sinc² per axis), so that trilinear
interpolation in Fourier space reproduces real-space projections closely; the projection is then
cropped back to D×D in real space, and CTF and shift are applied on the D×D grid (periodic, as in
cryoDRGN's and RELION's reconstruction models).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Complex, Float, Shaped
from torch import Tensor

from cryoscape.imaging.fft import fft2_center, fft3_center, ifft2_center
from cryoscape.imaging.shifts import translate_ft
from cryoscape.imaging.slicing import extract_central_slices


def transfer(slices: Shaped[Tensor, "B D D"], ctf: Float[Tensor, "B D D"] | None) -> Shaped[Tensor, "B D D"]:
    """CTF · slices: (B, D, D) Fourier (complex) or Hartley (real) slices times the RELION-sign
    ``ctf`` (B, D, D) (None: CTF-free data)."""
    return slices if ctf is None else slices * ctf


def centred_hartley(
    images: Float[Tensor, "B D D"], shifts_px: Float[Tensor, "B 2"] | None, window: Float[Tensor, "D D"] | None = None
) -> Float[Tensor, "B D D"]:
    """(B, D, D) real images -> Hartley transforms (B, D, D) of the images (times the real-space
    ``window`` (D, D), if any) translated by +shift (pixels, RELION origin: this centres the particle)."""
    ft = fft2_center(images if window is None else images * window)
    if shifts_px is not None:
        ft = translate_ft(ft, shifts_px)
    return ft.real - ft.imag


def adjoint_images(
    images: Float[Tensor, "B D D"], shifts_px: Float[Tensor, "B 2"] | None, ctf: Float[Tensor, "B D D"] | None
) -> tuple[Complex[Tensor, "B D D"], Float[Tensor, "B D D"]]:
    """The adjoint of shift ∘ CTF on real images (B, D, D): (CTF · FT of the images translated by
    +shift (B, D, D) complex, the weights CTF² (B, D, D)) for Fourier backprojection (ones without CTF)."""
    image_ft = fft2_center(images)
    if shifts_px is not None:
        image_ft = translate_ft(image_ft, shifts_px.to(torch.float32))
    if ctf is None:
        return image_ft, torch.ones(image_ft.shape, dtype=torch.float32, device=image_ft.device)
    return image_ft * ctf, ctf * ctf


def trilinear_kernel_ft(N: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(N, N, N) real-space attenuation sinc²(x/N)·sinc²(y/N)·sinc²(z/N) that trilinear interpolation
    of an N³ centred Fourier grid imposes on the map (x in voxels from the centre N//2)."""
    x = (torch.arange(N, dtype=torch.float64, device=device) - N // 2) / N
    s = torch.sinc(x) ** 2
    return (s[:, None, None] * s[None, :, None] * s[None, None, :]).to(dtype)


@dataclass
class PreparedVolume:
    """A volume ready for slicing: its centred 3D transform on an oversampled grid."""

    volume_ft: torch.Tensor  # (N, N, N) complex, N = D · oversample
    D: int
    oversample: int


def prepare_volume(volume: torch.Tensor, oversample: int = 2) -> PreparedVolume:
    """Pad a real (D, D, D) [z, y, x] map to N = D·oversample, correct for trilinear
    interpolation, and take its centred FFT."""
    volume = torch.as_tensor(volume, dtype=torch.float32)
    D = volume.shape[-1]
    N = D * oversample
    lo = N // 2 - D // 2
    padded = torch.zeros((N, N, N), dtype=torch.float32, device=volume.device)
    padded[lo : lo + D, lo : lo + D, lo : lo + D] = volume
    padded = padded / trilinear_kernel_ft(N, device=volume.device)
    return PreparedVolume(volume_ft=fft3_center(padded), D=D, oversample=oversample)


_CHUNK_PIXELS = 2**24  # oversampled slice pixels held at once (~130 MB of complex64)


def project(prepared: PreparedVolume, rotations: Float[Tensor, "B 3 3"]) -> Float[Tensor, "B D D"]:
    """(B, D, D) real-space projections ∫ V(Rᵀ(x, y, z)) dz, in map units × voxels."""
    N, D = prepared.volume_ft.shape[-1], prepared.D
    lo = N // 2 - D // 2
    rotations = rotations.to(torch.float32)
    out = torch.empty((rotations.shape[0], D, D), dtype=torch.float32, device=prepared.volume_ft.device)
    step = max(1, _CHUNK_PIXELS // (N * N))
    for start in range(0, rotations.shape[0], step):
        slices = extract_central_slices(prepared.volume_ft, rotations[start : start + step])
        out[start : start + step] = ifft2_center(slices).real[:, lo : lo + D, lo : lo + D]
    return out


def apply_ctf_and_shift(
    projections: Float[Tensor, "B D D"], shifts_px: Float[Tensor, "B 2"] | None, ctf: Float[Tensor, "B D D"] | None
) -> Float[Tensor, "B D D"]:
    """Images from centred projections: multiply by ``ctf`` (B, D, D) (RELION sign) and translate by
    −shift (RELION origin convention: the particle sits at −origin, and +origin re-centres it)."""
    image_ft = transfer(fft2_center(projections), ctf)
    if shifts_px is not None:
        image_ft = translate_ft(image_ft, -shifts_px.to(torch.float32))
    return ifft2_center(image_ft).real


def render_images(
    prepared: PreparedVolume,
    rotations: Float[Tensor, "B 3 3"],
    shifts_px: Float[Tensor, "B 2"] | None = None,
    ctf: Float[Tensor, "B D D"] | None = None,
) -> Float[Tensor, "B D D"]:
    """(B, D, D) noise-free images of a volume at the given poses (the full forward model)."""
    return apply_ctf_and_shift(project(prepared, rotations), shifts_px, ctf)

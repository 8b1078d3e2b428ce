"""Centred Fourier and Hartley transforms, and Fourier cropping/padding.

Conventions: the origin, in real space and in Fourier space, is at index D//2 of every transformed
axis (D even). ``fft2_center(x) = fftshift(fft2(ifftshift(x)))`` over the last two axes; the forward
transform is unnormalised (numpy's "backward" norm) and the inverse divides by N = D² (D³ in 3D).
Frequency index i corresponds to k = (i - D//2)/D cycles/pixel, in [-0.5, 0.5).
The Hartley transform is H = Re(F) - Im(F) of the centred FFT; it is its own inverse up to 1/N.
"""

from __future__ import annotations

import torch

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size, check_square

_DIMS2 = (-2, -1)
_DIMS3 = (-3, -2, -1)


def fft2_center(x: torch.Tensor) -> torch.Tensor:
    """Centred 2D FFT of the last two dims: (..., D, D) real or complex -> (..., D, D) complex."""
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS2), dim=_DIMS2), dim=_DIMS2)


def ifft2_center(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2_center` (divides by D²); returns complex, take ``.real`` for images."""
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(x, dim=_DIMS2), dim=_DIMS2), dim=_DIMS2)


def fft3_center(x: torch.Tensor) -> torch.Tensor:
    """Centred 3D FFT of the last three dims: (..., D, D, D) -> complex (..., D, D, D)."""
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=_DIMS3), dim=_DIMS3), dim=_DIMS3)


def ifft3_center(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft3_center` (divides by D³); returns complex."""
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(x, dim=_DIMS3), dim=_DIMS3), dim=_DIMS3)


def ht2_center(x: torch.Tensor) -> torch.Tensor:
    """Centred 2D Hartley transform Re(F) - Im(F) of real (..., D, D) images."""
    f = fft2_center(x)
    return f.real - f.imag


def iht2_center(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ht2_center`: ht2_center(h) / D²."""
    return ht2_center(h) / (h.shape[-1] * h.shape[-2])


def ht3_center(x: torch.Tensor) -> torch.Tensor:
    """Centred 3D Hartley transform Re(F) - Im(F) of real (..., D, D, D) volumes."""
    f = fft3_center(x)
    return f.real - f.imag


def iht3_center(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`ht3_center`: ht3_center(h) / D³."""
    return ht3_center(h) / (h.shape[-1] * h.shape[-2] * h.shape[-3])


def _check_new_size(D: int, new_size: int, crop: bool) -> int:
    new_size = check_box_size(new_size)
    if crop and new_size > D:
        raise InputError(f"cannot crop a {D}-pixel transform to a larger size {new_size}")
    if not crop and new_size < D:
        raise InputError(f"cannot pad a {D}-pixel transform to a smaller size {new_size}")
    return new_size


def fourier_crop_2d(images_ft: torch.Tensor, new_size: int) -> torch.Tensor:
    """Keep the central ``new_size``² frequencies of centred transforms (..., D, D) -> (..., d, d).

    The origin stays at index d//2; frequencies (in cycles/Å) are unchanged, the pixel becomes
    larger by D/d. Values are not rescaled.
    """
    D = check_square(images_ft, 2, "images_ft")
    d = _check_new_size(D, new_size, crop=True)
    lo = D // 2 - d // 2
    return images_ft[..., lo : lo + d, lo : lo + d]


def fourier_pad_2d(images_ft: torch.Tensor, new_size: int) -> torch.Tensor:
    """Zero-pad centred transforms (..., D, D) -> (..., n, n) around the origin (index n//2).

    Values are not rescaled (the inverse transform then interpolates the image by n/D).
    """
    D = check_square(images_ft, 2, "images_ft")
    n = _check_new_size(D, new_size, crop=False)
    lo = n // 2 - D // 2
    out = images_ft.new_zeros(images_ft.shape[:-2] + (n, n))
    out[..., lo : lo + D, lo : lo + D] = images_ft
    return out


def downsample_images(images: torch.Tensor, new_size: int) -> torch.Tensor:
    """Downsample real images (..., D, D) -> (..., d, d) by cropping their centred Fourier transform.

    The result is scaled by (d/D)² so that each image keeps its mean pixel value (the DC term is
    divided by d² instead of D² on the way back); the pixel size grows by D/d.
    """
    D = check_square(images, 2, "images")
    d = _check_new_size(D, new_size, crop=True)
    if images.is_complex():
        raise InputError("downsample_images expects real images")
    cropped = fourier_crop_2d(fft2_center(images), d)
    return ifft2_center(cropped).real * (d / D) ** 2


def downsample_volume(volume: torch.Tensor, new_size: int) -> torch.Tensor:
    """Downsample a real map (D, D, D) -> (d, d, d) by cropping its centred Fourier transform;
    values keep their mean (scaled by (d/D)³), the voxel grows by D/d."""
    D = check_square(volume, 3, "volume")
    d = _check_new_size(D, new_size, crop=True)
    lo = D // 2 - d // 2
    cropped = fft3_center(volume)[lo : lo + d, lo : lo + d, lo : lo + d]
    return ifft3_center(cropped).real * (d / D) ** 3

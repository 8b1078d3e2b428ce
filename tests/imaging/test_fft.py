import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging import fft


def _np_fft2c(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1))), axes=(-2, -1))


def test_fft2_center_matches_numpy_and_origin_at_center():
    x = np.random.default_rng(0).normal(size=(3, 16, 16))
    f = fft.fft2_center(torch.from_numpy(x))
    np.testing.assert_allclose(f.numpy(), _np_fft2c(x), atol=1e-10)
    # DC term (sum of pixels) sits at index D//2; a delta at the real-space origin has a flat transform.
    np.testing.assert_allclose(f[:, 8, 8].real.numpy(), x.sum((1, 2)), atol=1e-10)
    delta = torch.zeros(16, 16, dtype=torch.float64)
    delta[8, 8] = 1
    np.testing.assert_allclose(fft.fft2_center(delta).numpy(), np.ones((16, 16)), atol=1e-12)
    np.testing.assert_allclose(fft.ifft2_center(f).real.numpy(), x, atol=1e-12)


def test_fft2_center_frequency_sign():
    # cos/sin wave along x with frequency +2/D: the sine's transform has -i·N/2 at kx = +2/D.
    D = 16
    x = torch.arange(D, dtype=torch.float64) - D // 2
    img = torch.sin(2 * np.pi * 2 * x / D).expand(D, D)
    f = fft.fft2_center(img)
    assert f[D // 2, D // 2 + 2].imag.item() == pytest.approx(-D * D / 2)
    assert f[D // 2, D // 2 - 2].imag.item() == pytest.approx(D * D / 2)


def test_fft3_center_matches_numpy():
    x = np.random.default_rng(1).normal(size=(8, 8, 8))
    f = fft.fft3_center(torch.from_numpy(x))
    ref = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x)))
    np.testing.assert_allclose(f.numpy(), ref, atol=1e-10)
    np.testing.assert_allclose(fft.ifft3_center(f).real.numpy(), x, atol=1e-12)


def test_hartley_definition_and_inverse():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(2, 12, 12)))
    h = fft.ht2_center(x)
    ref = _np_fft2c(x.numpy())
    np.testing.assert_allclose(h.numpy(), ref.real - ref.imag, atol=1e-10)
    np.testing.assert_allclose(fft.iht2_center(h).numpy(), x.numpy(), atol=1e-12)
    v = torch.from_numpy(np.random.default_rng(3).normal(size=(6, 6, 6)))
    np.testing.assert_allclose(fft.iht3_center(fft.ht3_center(v)).numpy(), v.numpy(), atol=1e-12)


def test_crop_pad_and_downsample_of_band_limited_wave():
    D, d = 32, 16
    pos = torch.arange(D, dtype=torch.float64) - D // 2

    def wave(p):
        return 0.3 + torch.cos(2 * np.pi * 3 * p[None, :] / D) * torch.sin(2 * np.pi * 2 * p[:, None] / D)

    img = wave(pos)
    small = fft.downsample_images(img[None], d)[0]
    coarse = (torch.arange(d, dtype=torch.float64) - d // 2) * (D / d)  # coarse pixel j at (j - d//2)·D/d
    np.testing.assert_allclose(small.numpy(), wave(coarse).numpy(), atol=1e-12)
    assert small.mean().item() == pytest.approx(img.mean().item())
    # pad is the right inverse of crop on centred transforms
    f = fft.fft2_center(img)
    np.testing.assert_allclose(fft.fourier_crop_2d(fft.fourier_pad_2d(f, 48), D).numpy(), f.numpy())
    with pytest.raises(InputError):
        fft.fourier_crop_2d(f, 48)
    with pytest.raises(InputError):
        fft.downsample_images(img[None], 15)

"""The image losses (cryoscape.models.image_losses) on Hartley images against numpy's Fourier
transforms of the same real images: the ring correlation and the band-passed real-space correlation
computed independently."""

import numpy as np
import pytest
import torch

from cryoscape.imaging.fft import ht2_center
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.models.image_losses import LOSSES, image_loss

D = 24


@pytest.fixture(scope="module")
def pair():
    """Real images: a smooth blob, and the blob plus noise, in a batch of 3."""
    rng = np.random.default_rng(0)
    x = np.arange(D) - D // 2
    blob = np.exp(-(x[:, None] ** 2 + (x[None, :] - 2) ** 2) / 18.0)
    model = np.stack([blob * (1 + i) for i in range(3)])
    images = model + rng.normal(0, 0.3, model.shape)
    return model, images


def _numpy_fourier(images):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=(-2, -1))), axes=(-2, -1))


def _ht(x):
    return ht2_center(torch.from_numpy(x))


def test_frc_is_the_fourier_ring_correlation(pair):
    model, images = pair
    mask = fourier_disk_mask(D)
    a, b = _numpy_fourier(model), _numpy_fourier(images)
    k = np.arange(D) - D // 2
    ring = np.round(np.hypot(k[:, None], k[None, :])).astype(int)
    inside = mask.numpy()
    frc = []
    for i in range(3):
        per_ring = []
        for r in np.unique(ring[inside]):
            sel = inside & (ring == r)
            cross = np.real(a[i][sel] * np.conj(b[i][sel])).sum()
            per_ring.append(cross / np.sqrt((np.abs(a[i][sel]) ** 2).sum() * (np.abs(b[i][sel]) ** 2).sum()))
        frc.append(np.mean(per_ring))
    expected = 1 - np.mean(frc)
    assert float(image_loss("frc", _ht(model), _ht(images), mask)) == pytest.approx(expected, abs=1e-5)


def test_correlation_is_the_real_space_correlation_of_the_band_passed_images(pair):
    model, images = pair
    mask = fourier_disk_mask(D, radius_px=8)
    keep = mask.numpy()

    def band_passed(x):
        f = _numpy_fourier(x) * keep
        return np.real(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(f, axes=(-2, -1))), axes=(-2, -1)))

    a, b = band_passed(model), band_passed(images)
    expected = 1 - np.mean([np.corrcoef(a[i].ravel(), b[i].ravel())[0, 1] for i in range(3)])
    assert float(image_loss("correlation", _ht(model), _ht(images), mask)) == pytest.approx(expected, abs=1e-5)


def test_gaussian_is_the_mean_squared_error_and_only_it_sees_the_scale(pair):
    model, images = pair
    mask = fourier_disk_mask(D)
    m, y = _ht(model), _ht(images)
    assert float(image_loss("gaussian", m, y, mask)) == pytest.approx(float(((m - y)[:, mask] ** 2).mean()))
    for kind in ("frc", "correlation"):
        assert float(image_loss(kind, 3 * m, y, mask)) == pytest.approx(float(image_loss(kind, m, y, mask)), abs=1e-6)
        assert float(image_loss(kind, y, y, mask)) == pytest.approx(0.0, abs=1e-6)
        assert float(image_loss(kind, m, y, mask)) < float(image_loss(kind, m, torch.flip(y, (-1,)), mask))
    assert set(LOSSES) == {"gaussian", "frc", "correlation"}
    with pytest.raises(ValueError):
        image_loss("l1", m, y, mask)

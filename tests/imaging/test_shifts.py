import numpy as np
import pytest
import torch
from scipy import ndimage

from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft2_center, ht2_center, ifft2_center, iht2_center
from cryoscape.imaging.shifts import translate_ft, translate_ht


def _blob(D, cx=0.0, cy=0.0, sigma=2.5):
    a = np.arange(D) - D // 2
    return np.exp(-((a[None, :] - cx) ** 2 / (2 * sigma**2) + (a[:, None] - cy) ** 2 / (1.3 * sigma) ** 2))


def test_integer_shift_equals_roll():
    x = np.random.default_rng(0).normal(size=(2, 16, 16))
    shifts = torch.tensor([[3.0, -2.0], [-5.0, 7.0]], dtype=torch.float64)
    out = ifft2_center(translate_ft(fft2_center(torch.from_numpy(x)), shifts)).real.numpy()
    for i, (sx, sy) in enumerate(shifts.tolist()):
        np.testing.assert_allclose(out[i], np.roll(x[i], (int(sy), int(sx)), axis=(0, 1)), atol=1e-12)
        out_ht = iht2_center(translate_ht(ht2_center(torch.from_numpy(x[i : i + 1])), shifts[i : i + 1]))[0]
        np.testing.assert_allclose(out_ht.numpy(), out[i], atol=1e-12)


def test_fractional_shift_matches_scipy_and_sign_matters():
    D = 48
    img = _blob(D)
    shift = (2.3, -1.6)  # (x, y)
    ref = ndimage.shift(img, (shift[1], shift[0]), order=5, mode="grid-wrap")  # content moves to +x, +y
    ft = fft2_center(torch.from_numpy(img)[None])
    s = torch.tensor([shift], dtype=torch.float64)
    out = ifft2_center(translate_ft(ft, s)).real[0].numpy()
    np.testing.assert_allclose(out, ref, atol=2e-4)
    np.testing.assert_allclose(out, _blob(D, *shift), atol=1e-6)  # analytic: the blob re-centred at +shift
    wrong = ifft2_center(translate_ft(ft, -s)).real[0].numpy()
    assert np.abs(wrong - ref).max() > 100 * np.abs(out - ref).max()
    swapped = ifft2_center(translate_ft(ft, s.flip(-1))).real[0].numpy()  # (y, x) order instead of (x, y)
    assert np.abs(swapped - ref).max() > 100 * np.abs(out - ref).max()
    # Hartley version agrees with the Fourier one (the image is smooth, nothing at Nyquist)
    out_ht = iht2_center(translate_ht(ht2_center(torch.from_numpy(img)[None]), s))[0].numpy()
    np.testing.assert_allclose(out_ht, out, atol=1e-10)


def test_shifts_broadcast_over_a_search_grid():
    ft = fft2_center(torch.from_numpy(_blob(16))[None, None])  # (1, 1, D, D)
    shifts = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 1.0]]], dtype=torch.float64)  # (1, 3, 2)
    out = translate_ft(ft, shifts)
    assert out.shape == (1, 3, 16, 16)
    for t in range(3):
        np.testing.assert_allclose(out[0, t].numpy(), translate_ft(ft[0], shifts[0, t : t + 1]).numpy()[0])


def test_shift_validation():
    with pytest.raises(InputError):
        translate_ft(torch.zeros(2, 8, 8, dtype=torch.complex64), torch.zeros(3, 2))
    with pytest.raises(InputError):
        translate_ht(torch.zeros(2, 8, 8), torch.zeros(2, 3))

"""The real-space image window and how runs record it."""

import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft2_center
from cryoscape.imaging.forward import centred_hartley
from cryoscape.inference.batches import image_window
from cryoscape.inference.run_config import RunConfig, TrainingSettings


def test_window_is_one_inside_zero_outside_and_half_between():
    D = 64
    window = image_window(D, 0.85).numpy()
    k = np.arange(D) - D // 2
    r = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    assert np.all(window[r <= 0.85 * D / 2] == 1)
    assert np.all(window[r >= 0.99 * D / 2] == 0)
    t = np.clip((r - 0.85 * D / 2) / (0.14 * D / 2), 0, 1)
    np.testing.assert_allclose(window, 0.5 * (1 + np.cos(np.pi * t)), atol=1e-6)  # a raised cosine in between
    assert image_window(D, 0.0) is None
    with pytest.raises(InputError):
        image_window(D, 1.2)


def test_window_multiplies_the_image_before_the_transform():
    images = torch.randn(3, 32, 32)
    window = image_window(32, 0.5)
    ht = centred_hartley(images, None, window)
    ft = fft2_center(images * window)
    torch.testing.assert_close(ht, ft.real - ft.imag)
    assert not torch.allclose(ht, centred_hartley(images, None))


def test_runs_record_their_window():
    flat = {"kind": "vae", "zdim": 2, "D": 64, "apix": 1.5, "scale": 1.0, "n_particles": 10}
    assert RunConfig.from_json(flat).training.window == 0.0  # runs from before the option: none
    assert RunConfig.from_json({**flat, "window": 0.85}).training.window == 0.85
    assert TrainingSettings().window == 0.0  # off by default (see --window-r)

"""The band-limited Hartley slicer gives the same values as slicing the whole transform
(extract_central_slices on the same prepared map), at the mask's pixels and in its order."""

import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.forward import prepare_volume
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.imaging.hartley_slicer import HartleySlicer
from cryoscape.imaging.rotations import random_rotations
from cryoscape.imaging.slicing import extract_central_slices


@pytest.mark.parametrize("oversample", [1, 2])
def test_slices_at_the_mask_equal_whole_slices(oversample):
    volume = torch.randn(16, 16, 16, generator=torch.Generator().manual_seed(0))
    rotations = random_rotations(20, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    prepared = prepare_volume(volume, oversample)
    whole = extract_central_slices(prepared.volume_ft.real - prepared.volume_ft.imag, rotations, oversample)
    slicer = HartleySlicer(volume, oversample)
    for radius in (3, 7):
        mask = fourier_disk_mask(16, None, radius)
        assert torch.allclose(slicer(rotations, mask), whole[:, mask], atol=1e-4 * float(whole.abs().max()))


def test_a_mask_without_its_mirror_is_refused():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[4, 5] = True  # k = (1, 0) without (−1, 0)
    with pytest.raises(InputError, match="−k"):
        HartleySlicer(torch.zeros(8, 8, 8))(torch.eye(3)[None], mask)

import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging import grids


def test_frequency_grids_match_numpy_fftfreq():
    D = 10
    k = np.fft.fftshift(np.fft.fftfreq(D))
    g2 = grids.frequency_grid_2d(D, dtype=torch.float64).numpy()
    np.testing.assert_allclose(g2[..., 0], np.broadcast_to(k[None, :], (D, D)))  # kx varies along columns
    np.testing.assert_allclose(g2[..., 1], np.broadcast_to(k[:, None], (D, D)))
    assert g2[D // 2, D // 2].tolist() == [0.0, 0.0] and g2[0, 0].tolist() == [-0.5, -0.5]
    g3 = grids.frequency_grid_3d(D, dtype=torch.float64).numpy()
    kz, ky, kx = np.meshgrid(k, k, k, indexing="ij")
    np.testing.assert_allclose(g3, np.stack([kx, ky, kz], -1))


def test_radial_indices_and_masks():
    D = 16
    r2 = grids.radial_index_2d(D)
    assert r2.dtype == torch.long and r2[8, 8] == 0 and r2[8, 13] == 5 and r2[0, 0] == round(8 * np.sqrt(2))
    r3 = grids.radial_index_3d(D)
    assert r3[8, 8, 8] == 0 and r3[11, 12, 8] == 5
    m = grids.circular_mask(D, 3)
    assert m.sum() == sum(1 for y in range(-8, 8) for x in range(-8, 8) if x * x + y * y <= 9)
    s = grids.soft_circular_mask(D, 3, 2)
    assert s[8, 11] == 1 and s[8, 12].item() == pytest.approx(0.5) and s[8, 13] == 0
    assert grids.spherical_mask(D, 2).sum() == 33  # lattice points in a ball of radius 2
    assert grids.soft_spherical_mask(D, 2, 2)[8, 8, 11].item() == pytest.approx(0.5)
    with pytest.raises(InputError):
        grids.circular_mask(15, 3)


def test_masks_hold_exactly_the_lattice_points_on_their_radius():
    """Masks are the integer lattice points with x² + y² (+ z²) <= r², in every process: the encoder's
    input size, and so whether a checkpoint loads, is the count of fourier_disk_mask (torch's float64
    sqrt once put sqrt(961) above 31 in some processes, leaving out (31, 0) and its like)."""
    for D in (32, 64, 128, 256):
        a = np.arange(D) - D // 2
        squared = a[:, None] ** 2 + a[None, :] ** 2
        for r in (D // 2 - 1, D // 4, 5):
            assert int(grids.circular_mask(D, r).sum()) == int((squared <= r * r).sum())
        assert int(grids.fourier_disk_mask(D).sum()) == int((squared <= (D // 2 - 1) ** 2).sum()) - 1
        assert grids.radial_index_2d(D)[D // 2, 1].item() == D // 2 - 1
    a = np.arange(64) - 32
    squared3 = a[:, None, None] ** 2 + a[None, :, None] ** 2 + a[None, None, :] ** 2
    assert int(grids.spherical_mask(64, 31).sum()) == int((squared3 <= 31 * 31).sum())


@pytest.mark.parametrize("ndim, half", [(2, 1), (2, 0), (3, -1), (3, 1)])
def test_centred_lattice_halves_and_mirrors(ndim, half):
    D, radius = 10, 4
    flat, coords, mirror = grids.centred_lattice(D, ndim, radius, half=half)
    assert coords.shape == (len(flat), ndim)
    assert ((coords**2).sum(-1) <= radius**2).all()
    # the flat index and the coordinates name the same point ([z,] y, x order, origin at D//2)
    position = torch.zeros_like(flat)
    for axis in reversed(range(ndim)):  # slowest (z or y) first
        position = position * D + coords[:, axis] + D // 2
    assert torch.equal(position, flat)
    # the mirror of k is -k
    points = dict(zip(flat.tolist(), coords.tolist()))
    full_flat, full_coords, _ = grids.centred_lattice(D, ndim, radius)
    everything = dict(zip(full_flat.tolist(), full_coords.tolist()))
    for f, m in zip(flat.tolist(), mirror.tolist()):
        assert everything[m] == [-c for c in points[f]]
    if half:
        # one of each pair ±k, plus the origin; its sign is that of the slowest non-zero coordinate
        n_inside = len(full_flat)
        assert len(flat) == (n_inside + 1) // 2
        for c in coords.tolist():
            first = next((v for v in reversed(c) if v != 0), 0)
            assert half * first >= 0

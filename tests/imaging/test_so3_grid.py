import importlib

import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.rotations import matrix_to_quaternion, quaternion_to_matrix, random_rotations

# the package re-exports the function so3_grid, which shadows the submodule as an attribute
g = importlib.import_module("cryoscape.imaging.so3_grid")

healpy = pytest.importorskip("healpy")


def _angle_between(q1, q2):
    """Rotation angle (rad) between unit quaternions, (n, 4) x (m, 4) -> (n, m)."""
    return 2 * np.arccos(np.clip(np.abs(q1 @ q2.T), 0, 1))


@pytest.mark.parametrize("nside", [1, 2, 4, 8, 16])
def test_pix2ang_matches_healpy_nested(nside):
    ipix = np.arange(12 * nside**2)
    theta, phi = g.pix2ang(nside, ipix)
    ref_theta, ref_phi = healpy.pix2ang(nside, ipix, nest=True)
    np.testing.assert_allclose(theta.numpy(), ref_theta, atol=1e-13)
    np.testing.assert_allclose(phi.numpy(), ref_phi, atol=1e-13)
    # the ring ordering would not match
    ring_theta, _ = healpy.pix2ang(nside, ipix, nest=False)
    if nside > 1:
        assert np.abs(theta.numpy() - ring_theta).max() > 0.1


def test_grid_sizes_and_unit_quaternions():
    assert [g.so3_grid_size(L) for L in range(4)] == [72, 576, 4608, 36864]
    q = g.so3_grid(1)
    assert q.shape == (576, 4)
    np.testing.assert_allclose(torch.linalg.vector_norm(q, dim=1).numpy(), 1, atol=1e-14)
    M = g.so3_grid_matrices(1)
    np.testing.assert_allclose(M.numpy(), quaternion_to_matrix(q).numpy())
    # all distinct rotations (q and -q are the same rotation)
    d = _angle_between(q.numpy(), q.numpy()) + 10 * np.eye(576)
    assert d.min() > np.deg2rad(10)


def test_level0_grid_covers_so3():
    q0 = g.so3_grid(0).numpy()
    nearest = _angle_between(q0, q0) + 10 * np.eye(72)
    spacing = np.median(nearest.min(1))  # ~ typical distance to the nearest neighbour
    R = random_rotations(5000, generator=torch.Generator().manual_seed(0))
    dist = _angle_between(matrix_to_quaternion(R).numpy(), q0).min(1)
    assert dist.max() < spacing, (np.rad2deg(dist.max()), np.rad2deg(spacing))
    # the level-1 grid halves the covering radius
    dist1 = _angle_between(matrix_to_quaternion(R).numpy(), g.so3_grid(1).numpy()).min(1)
    assert dist1.max() < 0.6 * dist.max()


@pytest.mark.parametrize("level", [0, 1])
def test_children_are_the_nearest_points(level):
    n = g.so3_grid_size(level)
    children = g.so3_grid_children(torch.arange(n), level)
    assert children.shape == (n, 8)
    # every fine-grid point is the child of exactly one parent (the refinement partitions the grid)
    assert torch.equal(torch.sort(children.reshape(-1)).values, torch.arange(8 * n))
    parent_q = g.so3_grid(level).numpy()
    fine_q = g.so3_grid(level + 1).numpy()
    d = _angle_between(parent_q, fine_q)
    nearest8 = np.sort(d, axis=1)[:, :8]
    child_d = np.take_along_axis(d, children.numpy(), axis=1)
    np.testing.assert_allclose(np.sort(child_d, axis=1), nearest8, atol=1e-12)
    # and they are much closer than a random fine point
    assert child_d.max() < 0.5 * np.median(d)


def test_children_at_level2_contain_the_nearest_point():
    n = g.so3_grid_size(2)
    parents = torch.arange(0, n, 29)
    children = g.so3_grid_children(parents, 2)
    d = _angle_between(g.so3_grid(2).numpy()[parents.numpy()], g.so3_grid(3).numpy())
    child_d = np.take_along_axis(d, children.numpy(), axis=1)
    np.testing.assert_allclose(child_d.min(1), d.min(1), atol=1e-12)
    exact = np.isclose(np.sort(child_d, 1), np.sort(d, 1)[:, :8], atol=1e-12).all(1)
    assert exact.mean() > 0.85
    assert child_d.max() < 1.6 * np.sort(d, 1)[:, 7].max()


def test_shift_grid_and_validation():
    s = g.shift_grid(10.0, 4)
    assert s.shape == (16, 2)
    np.testing.assert_allclose(s[:4, 0].numpy(), [-7.5, -2.5, 2.5, 7.5])  # x varies fastest
    np.testing.assert_allclose(s[::4, 1].numpy(), [-7.5, -2.5, 2.5, 7.5])
    with pytest.raises(InputError):
        g.pix2ang(3, [0])
    with pytest.raises(InputError):
        g.so3_grid_children([576], 0)

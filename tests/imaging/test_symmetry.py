"""Point groups (RELION's orientations), symmetry-equivalent poses, canonical poses and the asymmetric
unit, and pose accuracy up to symmetry."""

import numpy as np
import pytest
import torch
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

from cryoscape.analysis.pose_accuracy import pose_accuracy
from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft3_center
from cryoscape.imaging.rotations import random_rotations
from cryoscape.imaging.slicing import extract_central_slices
from cryoscape.imaging.so3_grid import so3_grid_rotations
from cryoscape.imaging.symmetry import (
    canonical_poses,
    in_asymmetric_unit,
    symmetry_equivalent_poses,
    symmetry_group,
)

NAMES = ["C1", "C2", "C5", "D2", "D3", "D7", "T", "O", "I", "I1", "I2", "I3", "I4"]
ORDERS = {"C1": 1, "C2": 2, "C5": 5, "D2": 4, "D3": 6, "D7": 14, "T": 12, "O": 24}
PHI = (1 + 5**0.5) / 2


def _rot(n, seed):
    return random_rotations(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).numpy()


def _same_set(A, B, atol=1e-9):
    """A and B (G, 3, 3) hold the same matrices, in any order."""
    dist = np.abs(A[:, None] - B[None]).max(axis=(2, 3))
    return len(A) == len(B) and bool((dist.min(1) < atol).all() and (dist.min(0) < atol).all())


def _has_axis(group, axis, fold, atol=1e-6):
    """``group`` holds the rotation by 360°/fold about ``axis`` (RELION's values are rounded)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    r = Rotation.from_rotvec(a * 2 * np.pi / fold).as_matrix()
    return np.abs(group - r).max(axis=(1, 2)).min() < atol


def _angles_deg(A, B):
    cos = (np.einsum("...ij,...ij->...", A, B) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_groups_are_closed_rotation_groups_of_the_right_order(name):
    G = symmetry_group(name)
    assert G.shape == (ORDERS.get(name, 60), 3, 3) and G.dtype == np.float64
    np.testing.assert_allclose(G[0], np.eye(3))
    np.testing.assert_allclose(G @ G.transpose(0, 2, 1), np.broadcast_to(np.eye(3), G.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(G), 1, atol=1e-12)
    products = (G[:, None] @ G[None]).reshape(-1, 3, 3)
    assert np.abs(products[:, None] - G[None]).max(axis=(2, 3)).min(1).max() < 1e-9  # closure
    dist = np.abs(G[:, None] - G[None]).max(axis=(2, 3)) + np.eye(len(G))
    assert dist.min() > 0.1  # distinct


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 12])
def test_cyclic_and_dihedral_groups_match_scipy_with_axis_z(n):
    C = symmetry_group(f"C{n}")
    assert _same_set(C, Rotation.create_group(f"C{n}", axis="Z").as_matrix())
    assert _has_axis(C, (0, 0, 1), n)
    np.testing.assert_allclose(C[1 % n], Rotation.from_rotvec([0, 0, 2 * np.pi / n]).as_matrix(), atol=1e-12)
    if n >= 2:
        D = symmetry_group(f"d{n}")  # case-insensitive
        assert _same_set(D, Rotation.create_group(f"D{n}", axis="Z").as_matrix())
        assert _has_axis(D, (0, 0, 1), n) and _has_axis(D, (1, 0, 0), 2)  # RELION: the 2-fold along x


def test_polyhedral_groups_match_scipy_in_relions_orientations():
    # O: scipy's cube orientation is RELION's (4-fold along z, 3-fold along (1, 1, 1))
    assert _same_set(symmetry_group("O"), Rotation.create_group("O").as_matrix())
    # T: scipy has 2-folds along x, y, z; RELION a 3-fold along z and a 2-fold along (0, .816, .577)
    Q, _ = Rotation.align_vectors([[0, 0, 1], [0, 2**0.5, 1]], [[1, 1, 1], [0, 0, 1]])
    M = Q.as_matrix()
    assert _same_set(symmetry_group("T"), M @ Rotation.create_group("T").as_matrix() @ M.T)
    # I1 is scipy's I; I2 (= I) is it turned 90° about y
    scipy_i = Rotation.create_group("I").as_matrix()
    Ry = Rotation.from_rotvec([0, np.pi / 2, 0]).as_matrix()
    assert _same_set(symmetry_group("I1"), scipy_i)
    assert _same_set(symmetry_group("I2"), Ry @ scipy_i @ Ry.T)
    assert _same_set(symmetry_group("I"), symmetry_group("I2"))
    # I3, I4: scipy's I turned to put its 5-fold (φ, 0, -1) along z and its 2-fold x at (∓1, 0, φ)
    for name, sign in [("I3", -1), ("I4", 1)]:
        Q, _ = Rotation.align_vectors([[0, 0, 1], [sign, 0, PHI]], [[PHI, 0, -1], [1, 0, 0]])
        M = Q.as_matrix()
        assert _same_set(symmetry_group(name), M @ scipy_i @ M.T)


def test_groups_hold_the_axes_relion_generates_them_from():
    # the axes of RELION's SymList::fill_symmetry_class (with RELION's rounding)
    relion = {
        "T": [((0, 0, 1), 3), ((0.0, 0.816496, 0.577350), 2)],
        "O": [((0.5773502, 0.5773502, 0.5773502), 3), ((0, 0, 1), 4)],
        "I2": [((0, 0, 1), 2), ((0.525731114, 0, 0.850650807), 5), ((0, 0.356822076, 0.934172364), 3)],
        "I1": [((1, 0, 0), 2), ((0.85065080702670, 0, -0.5257311142635), 5), ((0.9341723640, 0.3568220765, 0), 3)],
        "I3": [
            ((-0.5257311143, 0, 0.8506508070), 2),
            ((0, 0, 1), 5),
            ((-0.4911234778630044, 0.3568220764705179, 0.7946544753759428), 3),
        ],
        "I4": [
            ((0.5257311143, 0, 0.8506508070), 2),
            ((0.8944271932547096, 0, 0.4472135909903704), 5),
            ((0.4911234778630044, 0.3568220764705179, 0.7946544753759428), 3),
        ],
    }
    for name, axes in relion.items():
        G = symmetry_group(name)
        assert all(_has_axis(G, a, n) for a, n in axes), name
    assert not _same_set(symmetry_group("I3"), symmetry_group("I4"))
    assert not _same_set(symmetry_group("I1"), symmetry_group("I2"))


@pytest.mark.parametrize("bad", ["C0", "D1", "D", "X3", "I5", "C2.5", "", "C-2", 3])
def test_unknown_names_raise_one_clear_line(bad):
    with pytest.raises(InputError, match=r"unknown symmetry .*C<n>.*D<n>.*T, O, I") as info:
        symmetry_group(bad)
    assert "\n" not in str(info.value)


# --- maps: V(g x) = V(x) with x = (x, y, z) and volumes indexed [z, y, x] -----------------------

D = 32


def _turn(volume, g, order=3):
    """W(x) = V(g x) (coordinates (x, y, z) from index D//2; arrays [z, y, x])."""
    M = g[::-1, ::-1]  # the same map in (z, y, x) index order
    c = np.full(3, D // 2, float)
    return affine_transform(volume, M, offset=c - M @ c, order=order, mode="constant")


def _blobs(centres, widths, amplitudes):
    """Sum of Gaussians at ``centres`` (K, 3) (x, y, z) voxels from the origin."""
    t = np.arange(D) - D // 2
    z, y, x = np.meshgrid(t, t, t, indexing="ij")
    pts = np.stack([x, y, z], -1)[..., None, :]
    r2 = ((pts - centres) ** 2).sum(-1)
    return (amplitudes * np.exp(-r2 / (2 * widths**2))).sum(-1)


def _asymmetric_blobs(seed, k=5):
    rng = np.random.default_rng(seed)
    return rng.uniform(-7, 7, (k, 3)), rng.uniform(1.5, 2.5, k), rng.uniform(0.5, 1.5, k)


@pytest.mark.parametrize("name", ["C3", "D4", "T", "O", "I"])
def test_a_map_symmetrised_with_the_group_is_invariant_under_it(name):
    G = symmetry_group(name)
    V = _blobs(*_asymmetric_blobs(0))
    S = np.mean([_turn(V, g) for g in G], axis=0)
    norm = np.linalg.norm(S)
    for g in G[1 :: max(1, len(G) // 12)]:  # (every 5th of I's elements, for time)
        assert np.linalg.norm(_turn(S, g) - S) < 0.01 * norm  # cubic-spline interpolation error
    other = Rotation.from_rotvec([0.3, -0.5, 0.4]).as_matrix()  # not in any of these groups
    assert np.linalg.norm(_turn(S, other) - S) > 0.2 * norm
    assert np.linalg.norm(_turn(V, G[1]) - V) > 0.5 * np.linalg.norm(V)  # V itself was not symmetric


@pytest.mark.parametrize("name", ["C4", "D3", "T"])
def test_equivalent_poses_give_the_same_slices(name):
    G = symmetry_group(name)
    centres, widths, amps = _asymmetric_blobs(1)
    # exactly symmetric: the blobs at g·c for every g
    S = _blobs(np.concatenate([centres @ g.T for g in G]), np.tile(widths, len(G)), np.tile(amps, len(G)))
    F = fft3_center(torch.from_numpy(np.pad(S, D // 2)))  # padded: finer Fourier sampling
    R = _rot(3, 2)
    eq = symmetry_equivalent_poses(R, G)
    assert eq.shape == (3, len(G), 3, 3)
    np.testing.assert_allclose(eq[:, 0], R)
    base = extract_central_slices(F, torch.from_numpy(R))[:, None]
    norm = torch.linalg.vector_norm(base, dim=(2, 3))
    same = extract_central_slices(F, torch.from_numpy(eq.reshape(-1, 3, 3))).reshape(3, len(G), 2 * D, 2 * D)
    wrong = extract_central_slices(F, torch.from_numpy((G[None] @ R[:, None]).reshape(-1, 3, 3)))  # g·R
    assert (torch.linalg.vector_norm(same - base, dim=(2, 3)) < 0.03 * norm).all()
    off = torch.linalg.vector_norm(wrong.reshape(3, len(G), 2 * D, 2 * D) - base, dim=(2, 3))[:, 1:]
    assert (off > 0.1 * norm).all()  # g·R turns the image, not the map
    unrelated = extract_central_slices(F, torch.from_numpy(_rot(3, 3)))
    assert (torch.linalg.vector_norm(unrelated - base[:, 0], dim=(1, 2)) > 0.1 * norm[:, 0]).all()


def test_equivalent_poses_keep_torch_tensors():
    R = torch.from_numpy(_rot(4, 4)).float()
    eq = symmetry_equivalent_poses(R, symmetry_group("D2"))
    assert isinstance(eq, torch.Tensor) and eq.dtype == torch.float32 and eq.shape == (4, 4, 3, 3)
    assert isinstance(in_asymmetric_unit(R, symmetry_group("C2")), torch.Tensor)
    with pytest.raises(InputError):
        symmetry_equivalent_poses(np.eye(3), symmetry_group("C2"))


# --- canonical poses and the asymmetric unit --------------------------------------------------


@pytest.mark.parametrize("name", ["C2", "D3", "O"])
def test_equivalent_poses_have_one_canonical_pose(name):
    G = symmetry_group(name)
    R = _rot(200, 5)
    canon = canonical_poses(R, G)
    for j in range(len(G)):
        np.testing.assert_allclose(canonical_poses(R @ G[j], G), canon, atol=1e-9)
    # canonical poses are equivalents of R, are nearest the identity, and are in the unit
    steps = np.swapaxes(R, 1, 2) @ canon  # R⁻¹·canonical must be a group element
    assert np.abs(steps[:, None] - G[None]).max(axis=(2, 3)).min(1).max() < 1e-9
    traces = np.einsum("nij,gji->ng", R, G)
    np.testing.assert_allclose(np.trace(canon, axis1=1, axis2=2), traces.max(1))
    assert in_asymmetric_unit(canon, G).all()
    # continuity: a small turn of R moves its canonical pose a little (away from the region's edge)
    margin = np.sort(traces, 1)[:, -1] - np.sort(traces, 1)[:, -2] if len(G) > 1 else np.ones(len(R))
    inside = margin > 0.05
    assert inside.mean() > 0.5
    nudge = R @ Rotation.from_rotvec([1e-3, 0, 0]).as_matrix()
    assert _angles_deg(canonical_poses(nudge, G)[inside], canon[inside]).max() < 0.1


@pytest.mark.parametrize("name", ["C2", "C4", "D2", "D7"])
def test_the_asymmetric_unit_keeps_one_grid_point_in_G_and_covers_so3(name):
    G = symmetry_group(name)
    R = so3_grid_rotations(np.arange(4608), 2).numpy()  # ~15° apart
    kept = in_asymmetric_unit(R, G)
    assert abs(kept.mean() * len(G) - 1) < 0.03
    # every grid rotation has an equivalent within the grid spacing among those kept
    eq = symmetry_equivalent_poses(R, G).reshape(-1, 9)
    cos = (eq @ R[kept].reshape(-1, 9).T - 1) / 2
    nearest = np.degrees(np.arccos(np.clip(cos.reshape(len(R), -1).max(1), -1, 1)))
    assert nearest.max() <= 15.0 + 1e-6


# --- pose accuracy up to symmetry -------------------------------------------------------------


@pytest.mark.parametrize("name", ["C4", "D3", "T"])
def test_pose_accuracy_sees_through_symmetry_a_global_turn_and_a_mirror(name):
    G = symmetry_group(name)
    truth = _rot(300, 6)
    Q = _rot(1, 7)[0]
    g = G[np.random.default_rng(8).integers(0, len(G), len(truth))]
    J = np.diag([1.0, 1.0, -1.0])
    found = truth @ g @ Q
    assert pose_accuracy(found, truth).median_deg > 10  # without the group: large errors
    turned = pose_accuracy(found, truth, group=G)
    assert turned.errors_deg.max() < 1e-4 and not turned.mirrored
    assert _same_set(G @ turned.rotation, G @ Q, atol=1e-6)  # Q up to the group
    mirrored = pose_accuracy(J @ truth @ g @ J @ Q, truth, group=G)
    assert mirrored.errors_deg.max() < 1e-4 and mirrored.mirrored
    # noisy poses, a third of them wrong: the good ones still come out at their noise level
    noise = Rotation.from_rotvec(np.random.default_rng(9).normal(0, np.radians(2), (300, 3))).as_matrix()
    noisy = found @ noise
    noisy[::3] = _rot(100, 10)
    result = pose_accuracy(noisy, truth, group=G)
    good = np.ones(300, bool)
    good[::3] = False
    assert np.median(result.errors_deg[good]) < 5 and result.fraction_within(8) > 0.6


def test_pose_accuracy_with_the_trivial_group_matches_none():
    truth, found = _rot(100, 11), _rot(100, 12)
    found[:60] = truth[:60] @ _rot(1, 13)[0] @ Rotation.from_rotvec([0.01, 0, 0]).as_matrix()
    a, b = pose_accuracy(found, truth), pose_accuracy(found, truth, group=symmetry_group("C1"))
    np.testing.assert_allclose(b.errors_deg, a.errors_deg, atol=1e-6)
    np.testing.assert_allclose(b.rotation, a.rotation, atol=1e-8)
    assert a.mirrored == b.mirrored

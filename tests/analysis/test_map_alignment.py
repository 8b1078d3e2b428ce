"""Map superposition and hand flipping (cryoscape.analysis.map_alignment), checked against maps moved
independently: atomic coordinates turned and shifted before the density is computed, analytic
Gaussian blobs, and scipy.ndimage.affine_transform."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

from cryoscape.analysis import pose_accuracy
from cryoscape.analysis.map_alignment import align_maps, flip_hand, transform_map
from cryoscape.errors import InputError
from cryoscape.imaging.atoms import atoms_to_volume
from cryoscape.imaging.fsc import fsc
from cryoscape.imaging.slicing import project_real_space
from cryoscape.io.atomic_model import read_atomic_model

J = np.diag([1.0, 1.0, -1.0])
D, APIX = 40, 2.0
PDB = Path(__file__).resolve().parents[2] / "cryoscape" / "simulate" / "structures" / "adk_open.pdb"


def _angle_deg(A, B):
    return float(np.degrees(np.arccos(np.clip((np.trace(A.T @ B) - 1) / 2, -1, 1))))


@pytest.fixture(scope="module")
def adk():
    """Reference map F of adenylate kinase and M, the same atoms turned by R and shifted by t (Å) about
    the box centre, so that M(q) = F(Rᵀ(q − t)), i.e. F(p) = M(R·p + t)."""
    model = read_atomic_model(PDB)[0]
    centre = model.coords_A.mean(0)
    R = Rotation.from_euler("zyx", [40.0, -115.0, 70.0], degrees=True).as_matrix()
    t = np.array([3.3, -2.6, 1.7])  # Å: 1.65, -1.3, 0.85 voxels
    moved = (model.coords_A - centre) @ R.T + t + centre
    F = atoms_to_volume(model.coords_A, model.elements, D, APIX, center_A=centre).numpy()
    M = atoms_to_volume(moved, model.elements, D, APIX, center_A=centre).numpy()
    return F, M, R, t


@pytest.fixture(scope="module")
def mirrored_alignment(adk):
    F, M, _, _ = adk
    return align_maps(flip_hand(M), F, APIX)


def _blobs(D, centres, covariances, weights=None):
    """Sum of anisotropic Gaussians evaluated at voxel positions p = index − D//2 (x, y, z)."""
    a = np.arange(D) - D // 2
    z, y, x = np.meshgrid(a, a, a, indexing="ij")
    p = np.stack([x, y, z], -1).astype(np.float64)
    V = np.zeros((D, D, D))
    for k, (c, C) in enumerate(zip(centres, covariances)):
        d = p - c
        V += (1.0 if weights is None else weights[k]) * np.exp(
            -0.5 * np.einsum("...i,ij,...j->...", d, np.linalg.inv(C), d)
        )
    return V


def _random_blobs(D, rng, n=6):
    centres = rng.uniform(-0.25, 0.25, (n, 3)) * D
    axes = Rotation.random(n, random_state=7).as_matrix()
    covariances = [Q @ np.diag(rng.uniform(0.03, 0.08, 3) * D) ** 2 @ Q.T for Q in axes]
    return centres, covariances


@pytest.mark.parametrize("size", [16, 17, 32])
def test_flip_hand_twice_gives_the_input_and_keeps_the_centre(size):
    V = np.random.default_rng(size).normal(size=(size, size, size)).astype(np.float32)
    W = flip_hand(V)
    assert np.array_equal(flip_hand(W), V)
    c = size // 2
    assert np.array_equal(W[c], V[c])  # the centre plane stays in place
    assert np.array_equal(W[c + 1], V[c - 1]) and np.array_equal(W[c - 1], V[c + 1])
    assert np.array_equal(W[:, :, ::-1], flip_hand(V[:, :, ::-1]))  # only z moves


def test_flip_hand_is_the_mirror_J_of_pose_accuracy():
    """flip_hand(V) read at p equals V read at J·p, with J = pose_accuracy's mirror; hence particles
    of the mirrored map have poses J·R·J (pose_accuracy's rule): their projections are the same."""
    assert np.array_equal(pose_accuracy._J, J)
    centres, covariances = _random_blobs(32, np.random.default_rng(1))
    V = _blobs(32, centres, covariances)
    V_mirror = _blobs(32, [J @ c for c in centres], [J @ C @ J for C in covariances])  # V_mirror(p) = V(J p)
    assert np.abs(V).max() > 0.5
    # every plane but z index 0 (z = −D/2, whose mirror +D/2 lies outside the box: the flip keeps it)
    np.testing.assert_allclose(flip_hand(V)[1:], V_mirror[1:], atol=1e-12)

    poses = torch.as_tensor(Rotation.random(3, random_state=2).as_matrix())
    Jt = torch.as_tensor(J)
    direct = project_real_space(torch.as_tensor(V), poses)
    mirrored = project_real_space(torch.as_tensor(flip_hand(V)), Jt @ poses @ Jt)
    np.testing.assert_allclose(
        mirrored.numpy(), direct.numpy(), atol=1e-4 * float(direct.abs().max())
    )  # z = ±D/2 differ


def test_transform_map_convention_matches_scipy():
    """transform_map(V, R, t)(p) = V(R·p + t): compared with scipy's affine_transform, which reads
    input[matrix·o + offset] at output index o ([z, y, x]), on a map that stays inside the box."""
    rng = np.random.default_rng(3)
    centres, covariances = _random_blobs(32, rng)
    V = _blobs(32, 0.6 * centres, [0.5 * C for C in covariances]).astype(np.float32)
    R = Rotation.random(random_state=4).as_matrix()
    t_A = np.array([2.5, -1.0, 3.0])
    apix = 1.5
    P = np.eye(3)[::-1]  # (x, y, z) <-> [z, y, x]
    c = np.full(3, 16.0)
    expected = affine_transform(V, P @ R @ P, offset=c - P @ R @ P @ c + P @ t_A / apix, order=1, cval=0.0)
    got = transform_map(V, R, t_A, apix)
    assert V[:2].max() < 1e-6 * V.max() and expected.max() > 0.5 * V.max()
    np.testing.assert_allclose(got, expected, atol=1e-5 * float(V.max()))


def test_alignment_convention_and_poses(adk):
    """F(p) = M(R·p + t) holds for the fixture's maps (the convention align_maps reports), and particles
    of M have poses P·Rᵀ where those of F have P (t = 0 here)."""
    F, M, R, t = adk
    A = transform_map(M, R, t, APIX)
    assert np.corrcoef(A.ravel(), F.ravel())[0, 1] > 0.99
    model = read_atomic_model(PDB)[0]
    centre = model.coords_A.mean(0)
    M0 = atoms_to_volume((model.coords_A - centre) @ R.T + centre, model.elements, D, APIX, center_A=centre)
    P = torch.as_tensor(Rotation.random(2, random_state=5).as_matrix())
    from_F = project_real_space(torch.as_tensor(F), P)
    from_M = project_real_space(M0, (P @ torch.as_tensor(R).T).float())
    assert np.corrcoef(from_F.numpy().ravel(), from_M.numpy().ravel())[0, 1] > 0.99


def test_align_recovers_rotation_and_shift(adk):
    F, M, R, t = adk
    result = align_maps(M, F, APIX)
    assert not result.flipped
    assert _angle_deg(result.rotation, R) < 2.0
    assert np.abs(result.shift_A - t).max() < 0.5 * APIX
    assert result.correlation > 0.98 and result.other_hand_correlation < result.correlation - 0.1
    curve = fsc(result.aligned, F, apix=APIX)
    assert curve.fsc[1 : D // 4].min() > 0.9  # up to 4·apix = 8 Å
    assert result.aligned.shape == F.shape and result.aligned.dtype == np.float32


def test_align_detects_the_mirror_image(adk, mirrored_alignment):
    F, _, R, t = adk
    result = mirrored_alignment
    assert result.flipped
    assert _angle_deg(result.rotation, R) < 2.0  # rotation and shift apply to the flipped-back map
    assert np.abs(result.shift_A - t).max() < 0.5 * APIX
    assert fsc(result.aligned, F, apix=APIX).fsc[1 : D // 4].min() > 0.9


def test_no_flip_keeps_the_wrong_hand_with_a_worse_fit(adk, mirrored_alignment):
    F, M, _, _ = adk
    result = align_maps(flip_hand(M), F, APIX, flip=False)
    assert not result.flipped and result.other_hand_correlation is None
    assert result.correlation < mirrored_alignment.correlation - 0.1


def test_max_resolution_limits_the_work_but_still_aligns(adk):
    F, M, R, t = adk
    result = align_maps(M, F, APIX, flip=False, max_resolution_A=10.0)
    assert _angle_deg(result.rotation, R) < 3.0
    assert np.abs(result.shift_A - t).max() < 0.5 * APIX


def test_bad_input():
    a = np.random.default_rng(0).normal(size=(32, 32, 32))
    with pytest.raises(InputError, match="same box"):
        align_maps(a, a[:16, :16, :16], 1.0)
    with pytest.raises(InputError, match="constant"):
        align_maps(np.zeros_like(a), a, 1.0)
    with pytest.raises(InputError, match="resolution"):
        align_maps(a, a, 1.0, max_resolution_A=-1)
    with pytest.raises(InputError, match="3D"):
        flip_hand(a[0])

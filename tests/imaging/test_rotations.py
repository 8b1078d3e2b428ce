import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.transform import Rotation

from cryoscape.errors import InputError
from cryoscape.imaging import rotations as rot


def relion_formula(angles_deg):
    """RELION's Euler_angles2matrix written out entry by entry (φ = rot, θ = tilt, ψ = psi)."""
    f, t, p = np.deg2rad(np.asarray(angles_deg)).T
    cf, sf, ct, st, cp, sp = np.cos(f), np.sin(f), np.cos(t), np.sin(t), np.cos(p), np.sin(p)
    A = np.empty(f.shape + (3, 3))
    A[..., 0, 0] = cp * ct * cf - sp * sf
    A[..., 0, 1] = cp * ct * sf + sp * cf
    A[..., 0, 2] = -cp * st
    A[..., 1, 0] = -sp * ct * cf - cp * sf
    A[..., 1, 1] = -sp * ct * sf + cp * cf
    A[..., 1, 2] = sp * st
    A[..., 2, 0] = st * cf
    A[..., 2, 1] = st * sf
    A[..., 2, 2] = ct
    return A


@pytest.fixture
def random_angles():
    rng = np.random.default_rng(0)
    a = rng.uniform(-180, 180, size=(500, 3))
    a[:, 1] = rng.uniform(0, 180, size=500)
    return a


def test_euler_matches_relion_formula_and_scipy_transposed(random_angles):
    A = rot.euler_relion_to_matrix(random_angles)
    np.testing.assert_allclose(A, relion_formula(random_angles), atol=1e-14)
    scipy_T = Rotation.from_euler("ZYZ", random_angles, degrees=True).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(A, scipy_T, atol=1e-14)
    # the untransposed scipy matrix is a different rotation: the convention matters
    untransposed = Rotation.from_euler("ZYZ", random_angles, degrees=True).as_matrix()
    assert np.median(np.abs(A - untransposed).max(axis=(1, 2))) > 0.5


def test_euler_torch_input_returns_torch(random_angles):
    A = rot.euler_relion_to_matrix(torch.from_numpy(random_angles))
    assert isinstance(A, torch.Tensor) and A.dtype == torch.float64
    np.testing.assert_allclose(A.numpy(), relion_formula(random_angles), atol=1e-14)


def test_matrix_to_euler_round_trip_random(random_angles):
    A = rot.euler_relion_to_matrix(random_angles)
    e = rot.matrix_to_euler_relion(A)
    np.testing.assert_allclose(rot.euler_relion_to_matrix(e), A, atol=1e-10)
    np.testing.assert_allclose(e, random_angles, atol=1e-8)  # unique away from gimbal lock
    R = Rotation.random(500, random_state=1).as_matrix()
    np.testing.assert_allclose(rot.euler_relion_to_matrix(rot.matrix_to_euler_relion(R)), R, atol=1e-10)


@pytest.mark.parametrize("tilt", [0.0, 1e-13, 1e-9, 1e-5, 180.0, 180 - 1e-9, 180 - 1e-5])
def test_matrix_to_euler_gimbal_lock(tilt):
    angles = np.array([[30.0, tilt, 20.0], [-170.0, tilt, 95.0]])
    A = rot.euler_relion_to_matrix(angles)
    e = rot.matrix_to_euler_relion(A)
    np.testing.assert_allclose(rot.euler_relion_to_matrix(e), A, atol=1e-10)
    if tilt in (0.0, 180.0):
        assert np.all(e[:, 2] == 0)  # everything in rot
        expected_rot = angles[:, 0] + angles[:, 2] if tilt == 0 else angles[:, 0] - angles[:, 2]
        np.testing.assert_allclose(np.exp(1j * np.deg2rad(e[:, 0])), np.exp(1j * np.deg2rad(expected_rot)))


def test_axis_angle_and_quaternions_match_scipy():
    R = Rotation.random(400, random_state=2)
    M = R.as_matrix()
    np.testing.assert_allclose(rot.axis_angle_to_matrix(R.as_rotvec()), M, atol=1e-14)
    np.testing.assert_allclose(rot.matrix_to_axis_angle(M), R.as_rotvec(), atol=1e-12)
    xyzw = R.as_quat()
    wxyz = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1)
    wxyz *= np.sign(wxyz[:, :1])
    np.testing.assert_allclose(rot.quaternion_to_matrix(wxyz), M, atol=1e-14)
    np.testing.assert_allclose(rot.matrix_to_quaternion(M), wxyz, atol=1e-14)
    # the (x, y, z, w) ordering would be a different rotation
    assert np.abs(rot.quaternion_to_matrix(xyzw) - M).max() > 0.1


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-7, np.pi - 1e-7, np.pi])
def test_axis_angle_stable_near_zero_and_pi(angle):
    axis = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    v = axis * angle
    M = Rotation.from_rotvec(v).as_matrix()
    np.testing.assert_allclose(rot.axis_angle_to_matrix(v), M, atol=1e-14)
    back = rot.matrix_to_axis_angle(M)
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), M, atol=1e-12)
    assert np.linalg.norm(back) == pytest.approx(angle, abs=1e-8)


def test_random_rotations_are_uniform():
    g = torch.Generator().manual_seed(0)
    R = rot.random_rotations(20000, generator=g).numpy()
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    assert np.allclose(np.linalg.det(R), 1)
    # R·e_z is uniform on the sphere: its z component is uniform on [-1, 1]
    assert stats.kstest(R[:, 2, 2], stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    # Haar measure: the rotation angle θ has density (1 - cos θ)/π, CDF (θ - sin θ)/π
    theta = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert stats.kstest(theta, lambda t: (t - np.sin(t)) / np.pi).pvalue > 1e-3
    # ... which a naive uniform-Euler-angle sampler fails
    naive = Rotation.from_euler("ZYZ", np.random.default_rng(0).uniform(0, 180, (20000, 3)), degrees=True)
    assert stats.kstest(naive.magnitude(), lambda t: (t - np.sin(t)) / np.pi).pvalue < 1e-6
    assert rot.random_rotations(3, dtype=torch.float32).dtype == torch.float32


def test_bad_shapes_raise():
    with pytest.raises(InputError):
        rot.euler_relion_to_matrix(np.zeros((4, 2)))
    with pytest.raises(InputError):
        rot.matrix_to_quaternion(np.zeros((3, 4)))

"""Rotation conversions: RELION Euler angles, axis-angle vectors, quaternions; uniform sampling.

Convention: a rotation matrix R (..., 3, 3) left-multiplies column vectors (x, y, z). The pose
matrix of a particle is RELION's ``Euler_angles2matrix(rot, tilt, psi)`` A = R_z(psi) R_y(tilt)
R_z(rot) (passive ZYZ), equal to scipy ``Rotation.from_euler('ZYZ', [rot, tilt, psi],
degrees=True).as_matrix().T``. It maps volume coordinates into the image frame: an atom at r
projects to image position (R r)_{x,y}, and the Fourier slice of the image samples the volume's
transform at R^T (kx, ky, 0).

Quaternions are (w, x, y, z) and describe the same active rotation as the matrix they map to
(scipy's ``as_matrix`` of ``from_quat([x, y, z, w])``). Axis-angle vectors are v = angle · axis
(radians), as in scipy's ``as_rotvec`` and cryoSPARC's ``alignments3D/pose``.

Every conversion accepts numpy arrays or torch tensors and returns the same kind (computing in
float64 for numpy inputs and in the input dtype for torch inputs).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cryoscape.errors import InputError

# Below this |sin(tilt)| the Euler angles are in gimbal lock: rot and psi turn about the same axis,
# so everything goes into rot and psi = 0 (the matrix error this causes is < 2e-12).
_GIMBAL_SIN = 1e-12


def _to_torch(x, last: tuple[int, ...], name: str) -> tuple[torch.Tensor, bool]:
    is_numpy = not isinstance(x, torch.Tensor)
    t = torch.from_numpy(np.asarray(x, dtype=np.float64)) if is_numpy else x
    if not t.is_floating_point():
        t = t.double()
    if t.shape[t.ndim - len(last) :] != last:
        raise InputError(f"{name} must have shape (..., {', '.join(map(str, last))}), got {tuple(t.shape)}")
    return t, is_numpy


def _back(t: torch.Tensor, is_numpy: bool):
    return t.numpy() if is_numpy else t


def euler_relion_to_matrix(angles_deg):
    """RELION (rot, tilt, psi) in degrees (..., 3) -> rotation matrices A (..., 3, 3).

    A = R_z(psi) R_y(tilt) R_z(rot) with R_z(a) = [[c, s, 0], [-s, c, 0], [0, 0, 1]] and
    R_y(a) = [[c, 0, -s], [0, 1, 0], [s, 0, c]] (RELION's ``Euler_angles2matrix``).
    """
    a, is_numpy = _to_torch(angles_deg, (3,), "angles_deg")
    rot, tilt, psi = torch.deg2rad(a).unbind(-1)
    cf, sf = torch.cos(rot), torch.sin(rot)
    ct, st = torch.cos(tilt), torch.sin(tilt)
    cp, sp = torch.cos(psi), torch.sin(psi)
    rows = [
        torch.stack([cp * ct * cf - sp * sf, cp * ct * sf + sp * cf, -cp * st], -1),
        torch.stack([-sp * ct * cf - cp * sf, -sp * ct * sf + cp * cf, sp * st], -1),
        torch.stack([st * cf, st * sf, ct], -1),
    ]
    return _back(torch.stack(rows, -2), is_numpy)


def matrix_to_euler_relion(R):
    """Rotation matrices (..., 3, 3) -> RELION (rot, tilt, psi) in degrees (..., 3).

    tilt is in [0, 180], rot and psi in (-180, 180]. In gimbal lock (|sin tilt| < 1e-12) rot holds
    the whole in-plane angle and psi = 0. Near gimbal lock rot + psi (tilt < 90) or rot - psi
    (tilt > 90) is taken from the in-plane block, so that euler -> matrix reproduces R closely.
    """
    A, is_numpy = _to_torch(R, (3, 3), "R")
    sin_t = 0.5 * (torch.hypot(A[..., 2, 0], A[..., 2, 1]) + torch.hypot(A[..., 0, 2], A[..., 1, 2]))
    tilt = torch.atan2(sin_t, A[..., 2, 2])
    rot = torch.atan2(A[..., 2, 1], A[..., 2, 0])
    # rot + psi from (A00 + A11, A01 - A10) = (1 + cos t)(cos, sin)(rot + psi);
    # rot - psi from (A11 - A00, -(A01 + A10)) = (1 - cos t)(cos, sin)(rot - psi).
    plus = torch.atan2(A[..., 0, 1] - A[..., 1, 0], A[..., 0, 0] + A[..., 1, 1])
    minus = torch.atan2(-(A[..., 0, 1] + A[..., 1, 0]), A[..., 1, 1] - A[..., 0, 0])
    upper = A[..., 2, 2] >= 0
    gimbal = sin_t < _GIMBAL_SIN
    rot = torch.where(gimbal, torch.where(upper, plus, minus), rot)
    psi = torch.where(upper, plus - rot, rot - minus)
    psi = torch.where(gimbal, torch.zeros_like(psi), torch.atan2(torch.sin(psi), torch.cos(psi)))
    return _back(torch.rad2deg(torch.stack([rot, tilt, psi], -1)), is_numpy)


def quaternion_to_matrix(q):
    """Quaternions (w, x, y, z) (..., 4), normalised here, -> rotation matrices (..., 3, 3)."""
    t, is_numpy = _to_torch(q, (4,), "q")
    norm = torch.linalg.vector_norm(t, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise InputError("quaternions must be non-zero")
    w, x, y, z = (t / norm).unbind(-1)
    rows = [
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ]
    return _back(torch.stack(rows, -2), is_numpy)


def _matrix_to_quaternion(A: torch.Tensor) -> torch.Tensor:
    """Shepperd's method: build q from the largest of 4|w|, 4|x|, 4|y|, 4|z| (stable everywhere)."""
    a00, a01, a02 = A[..., 0, 0], A[..., 0, 1], A[..., 0, 2]
    a10, a11, a12 = A[..., 1, 0], A[..., 1, 1], A[..., 1, 2]
    a20, a21, a22 = A[..., 2, 0], A[..., 2, 1], A[..., 2, 2]
    two_abs = torch.sqrt(
        torch.stack([1 + a00 + a11 + a22, 1 + a00 - a11 - a22, 1 - a00 + a11 - a22, 1 - a00 - a11 + a22], -1).clamp_min(
            0.0
        )
    )
    candidates = torch.stack(
        [
            torch.stack([two_abs[..., 0] ** 2, a21 - a12, a02 - a20, a10 - a01], -1),
            torch.stack([a21 - a12, two_abs[..., 1] ** 2, a10 + a01, a02 + a20], -1),
            torch.stack([a02 - a20, a10 + a01, two_abs[..., 2] ** 2, a12 + a21], -1),
            torch.stack([a10 - a01, a20 + a02, a21 + a12, two_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2 * two_abs.clamp_min(1e-3)[..., None])
    best = two_abs.argmax(-1)
    q = torch.take_along_dim(candidates, best[..., None, None], dim=-2).squeeze(-2)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_quaternion(R):
    """Rotation matrices (..., 3, 3) -> unit quaternions (w, x, y, z) (..., 4) with w >= 0."""
    A, is_numpy = _to_torch(R, (3, 3), "R")
    return _back(_matrix_to_quaternion(A), is_numpy)


def axis_angle_to_matrix(v):
    """Axis-angle vectors v = angle·axis (radians) (..., 3) -> rotation matrices (..., 3, 3).

    Rodrigues' formula with sin(θ)/θ and (1 - cos θ)/θ² written as sinc functions, exact at θ = 0.
    """
    t, is_numpy = _to_torch(v, (3,), "v")
    theta = torch.linalg.vector_norm(t, dim=-1)[..., None, None]
    x, y, z = t.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], -2
    )
    eye = torch.eye(3, dtype=t.dtype, device=t.device)
    a = torch.sinc(theta / math.pi)
    b = 0.5 * torch.sinc(theta / (2 * math.pi)) ** 2
    return _back(eye + a * K + b * (K @ K), is_numpy)


def matrix_to_axis_angle(R):
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3), angle in [0, π] (radians).

    Goes through the quaternion (w >= 0): angle = 2·atan2(|xyz|, w), stable near 0 and near π.
    """
    A, is_numpy = _to_torch(R, (3, 3), "R")
    q = _matrix_to_quaternion(A)
    n = torch.linalg.vector_norm(q[..., 1:], dim=-1, keepdim=True)
    w = q[..., :1]
    factor = torch.where(n > 1e-8, 2 * torch.atan2(n, w) / n.clamp_min(1e-300), 2 / w * (1 - n**2 / (3 * w**2)))
    return _back(factor * q[..., 1:], is_numpy)


def random_rotations(
    n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """(n, 3, 3) rotation matrices drawn uniformly (Haar measure) on SO(3).

    Uses normalised 4D Gaussian vectors as quaternions (uniform on S³, hence Haar on SO(3)).
    """
    if int(n) != n or n < 0:
        raise InputError(f"number of rotations must be a non-negative integer, got {n}")
    q = torch.randn(int(n), 4, generator=generator, dtype=torch.float64)
    return quaternion_to_matrix(q).to(dtype)


def geodesic_angle_deg(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Angle (degrees) of the rotation taking each R_a to R_b, shape (N,)."""
    # ||A - B||_F = 2√2 sin(θ/2): accurate for small angles, unlike arccos of the trace
    chord = np.sqrt(np.sum((np.asarray(rot_a) - np.asarray(rot_b)) ** 2, axis=(-2, -1)))
    return np.degrees(2.0 * np.arcsin(np.clip(chord / (2.0 * np.sqrt(2.0)), 0.0, 1.0)))

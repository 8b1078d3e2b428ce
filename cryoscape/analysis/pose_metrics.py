"""Pose accuracy against ground truth, after a global alignment of the two reference frames.

A reconstruction is defined only up to a global rotation G of its frame (and, ab initio, up to its
hand). If the map is rotated, V'(r) = V(Gᵀ r), the poses that produce the same images are
R'_i = R_i Gᵀ. A mirrored map V'(r) = V(J r), J = diag(1, 1, -1), gives R'_i = J R_i J with the same
in-plane shifts. ``align_rotations`` finds G (and the hand) that best maps the true poses onto the
estimated ones, by orthogonal Procrustes on SO(3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryoscape.errors import InputError
from cryoscape.imaging.rotations import geodesic_angle_deg

_MIRROR = np.diag([1.0, 1.0, -1.0])


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _fit_global(true_rot: np.ndarray, est_rot: np.ndarray) -> np.ndarray:
    """Gᵀ = argmin Σ ||R_i Gᵀ − R̂_i||_F² over rotations, by Procrustes on Σ R_iᵀ R̂_i."""
    return _nearest_rotation(np.einsum("nji,njk->ik", true_rot, est_rot))


@dataclass
class PoseError:
    """Per-image errors after alignment.

    ``rotation_frobenius2``: ||R_i Gᵀ − R̂_i||_F² (the thesis's metric); ``rotation_deg``: the
    geodesic angle between them; ``translation2_A2``: ||t_i − t̂_i||² in Å²; ``mirrored``: whether the
    estimate has the opposite hand; ``global_rotation``: Gᵀ.
    """

    rotation_frobenius2: np.ndarray
    rotation_deg: np.ndarray
    translation2_A2: np.ndarray | None
    mirrored: bool
    global_rotation: np.ndarray

    def summary(self) -> dict[str, float]:
        out = {
            "rotation_frobenius2_mean": float(np.mean(self.rotation_frobenius2)),
            "rotation_frobenius2_median": float(np.median(self.rotation_frobenius2)),
            "rotation_deg_mean": float(np.mean(self.rotation_deg)),
            "rotation_deg_median": float(np.median(self.rotation_deg)),
            "mirrored": bool(self.mirrored),
        }
        if self.translation2_A2 is not None:
            out["translation2_A2_mean"] = float(np.mean(self.translation2_A2))
            out["translation2_A2_median"] = float(np.median(self.translation2_A2))
        return out


def align_rotations(true_rot: np.ndarray, est_rot: np.ndarray, consider_mirror: bool = True) -> tuple[np.ndarray, bool]:
    """The global Gᵀ (3, 3) and hand that best map ``true_rot`` onto ``est_rot``."""
    true_rot, est_rot = np.asarray(true_rot, np.float64), np.asarray(est_rot, np.float64)
    if true_rot.shape != est_rot.shape or true_rot.shape[1:] != (3, 3):
        raise InputError(f"pose arrays must both be (N, 3, 3), got {true_rot.shape} and {est_rot.shape}")
    g = _fit_global(true_rot, est_rot)
    best = (np.sum((true_rot @ g - est_rot) ** 2), g, False)
    if consider_mirror:
        mirrored = _MIRROR @ true_rot @ _MIRROR
        gm = _fit_global(mirrored, est_rot)
        err = np.sum((mirrored @ gm - est_rot) ** 2)
        if err < best[0]:
            best = (err, gm, True)
    return best[1], best[2]


def pose_error(true_rot, est_rot, true_shift_A=None, est_shift_A=None, consider_mirror: bool = True) -> PoseError:
    """Rotation and translation errors of estimated poses against the truth (see module doc)."""
    g, mirrored = align_rotations(true_rot, est_rot, consider_mirror)
    reference = _MIRROR @ np.asarray(true_rot, np.float64) @ _MIRROR if mirrored else np.asarray(true_rot, np.float64)
    aligned = reference @ g
    est = np.asarray(est_rot, np.float64)
    trans = None
    if true_shift_A is not None and est_shift_A is not None:
        trans = np.sum((np.asarray(true_shift_A, np.float64) - np.asarray(est_shift_A, np.float64)) ** 2, axis=1)
    return PoseError(
        rotation_frobenius2=np.sum((aligned - est) ** 2, axis=(1, 2)),
        rotation_deg=geodesic_angle_deg(aligned, est),
        translation2_A2=trans,
        mirrored=mirrored,
        global_rotation=g,
    )

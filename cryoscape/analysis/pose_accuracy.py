"""Accuracy of poses found ab initio against known ones, up to what no method can know: the map's
orientation (one global rotation) and its hand (a mirror).

If the reconstruction is the true map turned by Q (read at Q·p where the truth is read at p), its
poses are R_i' = R_i·Q; if it is the mirror image (through z), R_i' = J·R_i·J·Q with J = diag(1, 1, −1).
Q is the rotation nearest to Σ R_iᵀ R_i' (polar decomposition), and each pose's error is the angle of
R_i' against R_i·Q (degrees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_J = np.diag([1.0, 1.0, -1.0])


@dataclass(frozen=True)
class PoseAccuracy:
    """``errors_deg`` (N,); ``rotation`` Q (3, 3); ``mirrored``: the hand came out inverted."""

    errors_deg: np.ndarray
    rotation: np.ndarray
    mirrored: bool

    @property
    def median_deg(self) -> float:
        return float(np.median(self.errors_deg))

    def fraction_within(self, degrees: float) -> float:
        return float(np.mean(self.errors_deg < degrees))


def _nearest_rotation(M: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _errors(found: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Q = _nearest_rotation(np.einsum("nji,njk->ik", truth, found))
    cos = (np.einsum("nij,nij->n", found, truth @ Q) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), Q


def pose_accuracy(found: np.ndarray, truth: np.ndarray) -> PoseAccuracy:
    """Compare rotations ``found`` and ``truth`` (N, 3, 3) (the particle table's convention)."""
    found, truth = np.asarray(found, np.float64), np.asarray(truth, np.float64)
    direct, q_direct = _errors(found, truth)
    mirror, q_mirror = _errors(found, _J @ truth @ _J)
    if np.median(mirror) < np.median(direct):
        return PoseAccuracy(mirror, q_mirror, True)
    return PoseAccuracy(direct, q_direct, False)

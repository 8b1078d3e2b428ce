"""Accuracy of poses found ab initio against known ones, up to what no method can know: the map's
orientation (one global rotation) and its hand (a mirror).

If the reconstruction is the true map turned by Q (read at Q·p where the truth is read at p), its
poses are R_i' = R_i·Q; if it is the mirror image (through z), R_i' = J·R_i·J·Q with J = diag(1, 1, −1).
Q is the rotation nearest to Σ R_iᵀ R_i' (polar decomposition), and each pose's error is the angle of
R_i' against R_i·Q (degrees).

For a map with point-group symmetry G (:mod:`cryoscape.imaging.symmetry`), the poses R_i·g (g in G)
give the same images, so R_i' is compared with the nearest R_i·g_i·Q (mirrored: J·R_i·g_i·J·Q). Q is
defined only up to G (g·Q fits as well); a reconstruction symmetrised in its own frame has Q in G's
normaliser, whose other elements do change the errors. Q starts as the rotation that makes one pose
exact, the best of up to 64 such seeds (median fit over up to 2,000 poses), then alternates a few
times between picking each g_i and refitting Q.

The map's origin is as undetermined as its orientation: a point x of the map lands at (R_i·x)[:2]
in image i, so the shifts of a reconstruction moved by d (the truth's frame) are the truth's plus
(R_i·d)[:2] (the particle table's shift convention; tests/inference/test_pose_search.py moves the true
map by whole voxels and searches). :func:`global_translation` fits d by least squares; what remains
is each image's own shift error.
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


def _cosines(found: np.ndarray, truth: np.ndarray, Q: np.ndarray, group: np.ndarray) -> np.ndarray:
    """(N, G) cosines of the angles between found_i and truth_i·g·Q."""
    A = np.einsum("ij,nkj,nkl->nil", Q, found, truth)  # Q·found_iᵀ·truth_i; trace(A·g) = 1 + 2 cos
    return (np.einsum("nil,gli->ng", A, group) - 1) / 2


def _fit_symmetric(found: np.ndarray, truth: np.ndarray, group: np.ndarray, rounds: int = 5) -> np.ndarray:
    n = len(found)
    seeds = np.unique(np.linspace(0, n - 1, min(n, 64)).astype(int))
    sub = np.unique(np.linspace(0, n - 1, min(n, 2000)).astype(int))
    candidates = np.swapaxes(truth[seeds], 1, 2) @ found[seeds]  # each makes one pose exact
    scores = [np.median(_cosines(found[sub], truth[sub], Q, group).max(1)) for Q in candidates]
    Q = candidates[int(np.argmax(scores))]
    for _ in range(rounds):
        chosen = truth @ group[_cosines(found, truth, Q, group).argmax(1)]
        Q = _nearest_rotation(np.einsum("nji,njk->ik", chosen, found))
    return Q


def _errors(found: np.ndarray, truth: np.ndarray, group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    if group is None:
        Q = _nearest_rotation(np.einsum("nji,njk->ik", truth, found))
        cos = (np.einsum("nij,nij->n", found, truth @ Q) - 1) / 2
    else:
        Q = _fit_symmetric(found, truth, group)
        cos = _cosines(found, truth, Q, group).max(1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), Q


def pose_accuracy(found: np.ndarray, truth: np.ndarray, group: np.ndarray | None = None) -> PoseAccuracy:
    """Compare rotations ``found`` and ``truth`` (N, 3, 3) (the particle table's convention), up to
    the symmetry ``group`` (G, 3, 3), e.g. ``cryoscape.imaging.symmetry.symmetry_group("D7")``."""
    found, truth = np.asarray(found, np.float64), np.asarray(truth, np.float64)
    g = None if group is None else np.asarray(group, np.float64)
    direct, q_direct = _errors(found, truth, g)
    mirror, q_mirror = _errors(found, _J @ truth @ _J, None if g is None else _J @ g @ _J)
    if np.median(mirror) < np.median(direct):
        return PoseAccuracy(mirror, q_mirror, True)
    return PoseAccuracy(direct, q_direct, False)


def global_translation(found_shifts: np.ndarray, truth_shifts: np.ndarray, truth_rotations: np.ndarray) -> np.ndarray:
    """The move d (x, y, z; the shifts' unit) of the found map from the truth's that best explains
    ``found_shifts − truth_shifts`` (N, 2) as (R_i·d)[:2] over ``truth_rotations`` R_i (N, 3, 3);
    ``found_shifts − (R_i·d)[:2]`` are the found shifts with the map's origin put back on the truth's."""
    A = np.asarray(truth_rotations, np.float64)[:, :2, :].reshape(-1, 3)
    diff = (np.asarray(found_shifts, np.float64) - np.asarray(truth_shifts, np.float64)).reshape(-1)
    return np.linalg.lstsq(A, diff, rcond=None)[0]

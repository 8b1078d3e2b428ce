"""Independent references for the metadata tests (scipy, not cryoscape)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def relion_matrix(eulers_deg: np.ndarray) -> np.ndarray:
    """RELION's Euler matrix A = scipy intrinsic ZYZ (rot, tilt, psi), transposed."""
    return np.swapaxes(Rotation.from_euler("ZYZ", np.atleast_2d(eulers_deg), degrees=True).as_matrix(), -1, -2)

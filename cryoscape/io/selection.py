"""Particle selections: files of 0-based row numbers (.npy, text, or cryoDRGN's ind.pkl)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.legacy_pickle import safe_load_pickle
from cryoscape.io.paths import check_input


def read_selection(path: Path, n: int) -> np.ndarray:
    """0-based particle indices (int64) from a .npy, text or cryoDRGN ind .pkl file; each in ``[0, n)``."""
    path = check_input(path, "selection file")
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".pkl":
            values = np.asarray(safe_load_pickle(path, "index pickle"))
        else:
            text = path.read_text().replace(",", " ")
            values = np.array([float(v) for v in text.split()])
    except (ValueError, OSError) as err:
        raise InputError(
            f"{path} is not a list of particle indices ({str(err).splitlines()[0] if str(err) else err})"
        ) from None
    values = np.asarray(values).ravel()
    if values.dtype == bool:
        raise InputError(f"{path} holds a boolean mask; give 0-based particle indices instead")
    if values.size == 0:
        raise InputError(f"{path} selects no particles")
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise InputError(f"{path} holds non-integer values; expected 0-based particle indices")
    indices = values.astype(np.int64)
    bad = (indices < 0) | (indices >= n)
    if bad.any():
        raise InputError(f"{path}: index {int(indices[bad][0])} is out of range for {n} particles")
    return indices

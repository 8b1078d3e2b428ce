"""Choosing particles: by cluster label, by a region of a 2-D embedding or of PC coordinates, or by
an index file, combined with AND and optionally inverted. Masks are boolean (N,), input order."""

from __future__ import annotations

import numpy as np

from cryoscape.errors import InputError


def by_labels(labels: np.ndarray, keep: list[int]) -> np.ndarray:
    """Particles whose label is one of ``keep``; every asked label must exist."""
    labels = np.asarray(labels).ravel()
    missing = sorted(set(keep) - set(np.unique(labels).tolist()))
    if missing:
        raise InputError(
            f"label(s) {', '.join(map(str, missing))} do not occur (labels run from {labels.min()} to {labels.max()})"
        )
    return np.isin(labels, keep)


def in_polygon(coords: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Particles whose first two coordinates lie inside the polygon ``vertices`` (M, 2), M >= 3."""
    from matplotlib.path import Path as Polygon  # noqa: PLC0415

    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 2)
    if len(vertices) < 3:
        raise InputError(f"a polygon needs at least 3 vertices, got {len(vertices)}")
    coords = _two_columns(coords)
    return Polygon(vertices).contains_points(coords)


def in_range(coords: np.ndarray, column: int, low: float, high: float) -> np.ndarray:
    """Particles with ``low <= coords[:, column] <= high`` (column 0-based)."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or not 0 <= column < coords.shape[1]:
        raise InputError(
            f"coordinate {column + 1} does not exist (the coordinates have "
            f"{coords.shape[1] if coords.ndim == 2 else 1} columns)"
        )
    if low > high:
        raise InputError(f"range {low}..{high} is empty (low > high)")
    return (coords[:, column] >= low) & (coords[:, column] <= high)


def by_index(index: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[np.asarray(index)] = True
    return mask


def combine(masks: list[np.ndarray], n: int, invert: bool = False, universe: np.ndarray | None = None) -> np.ndarray:
    """0-based indices (ascending) of the particles in every mask, or, with ``invert``, of those of
    ``universe`` (a mask; default all particles) in not all of them; raises InputError if the
    selection is empty."""
    if not masks:
        raise InputError("nothing to select by: give --labels with --keep, --ind, or --coords with --polygon/--range")
    for mask in masks:
        if len(mask) != n:
            raise InputError(f"a selection has {len(mask)} entries but there are {n} particles")
    chosen = np.logical_and.reduce(masks)
    if invert:
        chosen = ~chosen & (np.ones(n, dtype=bool) if universe is None else universe)
    if not chosen.any():
        raise InputError("the selection is empty: no particle matches" + (" (after --invert)" if invert else ""))
    return np.nonzero(chosen)[0]


def _two_columns(coords: np.ndarray) -> np.ndarray:
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] < 2:
        raise InputError(f"a polygon needs 2-D coordinates (N, 2+), got shape {coords.shape}")
    return coords[:, :2]

"""A bead model's start against the data: the consensus map of the given poses, the start model's
correlation with it (both hands), and a rigid fit of an atomic model into it (train-gmm --fit)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from cryoscape.analysis.map_alignment import align_maps, flip_hand
from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.filters import lowpass_volume
from cryoscape.inference.backprojection import backproject
from cryoscape.models.bead_start import StartBeads

log = logging.getLogger("cryoscape")

CHECK_RESOLUTION_A = 10.0  # both maps are low-passed here before the correlation
MIN_CORRELATION = 0.3  # a start model below this does not overlap the consensus map
CONSENSUS_PARTICLES = 5000  # at most this many particles make the consensus map


def consensus_map(source: ImageSource, table: ParticleTable, invert: bool, use_ctf: bool, seed: int = 0) -> np.ndarray:
    """The backprojection (D, D, D) of at most :data:`CONSENSUS_PARTICLES` particles (a random
    subset) at their given poses, in the units of the images."""
    index = np.arange(len(table))
    if len(table) > CONSENSUS_PARTICLES:
        index = np.sort(np.random.default_rng(seed).choice(len(table), CONSENSUS_PARTICLES, replace=False))
    subset = table.subset(index)
    sub_source = ImageSource.from_table(subset, lazy=True) if len(index) < len(table) else source
    return backproject(sub_source, subset, invert=invert, use_ctf=use_ctf, progress=False).volume


def _lowpassed(volume: np.ndarray, apix: float) -> np.ndarray:
    resolution = max(CHECK_RESOLUTION_A, 4 * apix)
    return lowpass_volume(torch.as_tensor(volume, dtype=torch.float32), apix, resolution).numpy()


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30))


def start_correlation(start: StartBeads, consensus: np.ndarray) -> tuple[float, float]:
    """Correlations of the start map with the consensus map, as given and mirrored (the other
    hand), both low-passed to :data:`CHECK_RESOLUTION_A`."""
    D = consensus.shape[-1]
    ref = _lowpassed(consensus, start.apix)
    mine = _lowpassed(start.volume(D), start.apix)
    return _pearson(mine, ref), _pearson(flip_hand(mine), ref)


def check_inside(start: StartBeads, D: int) -> None:
    """InputError when beads lie outside the box (a model in another frame)."""
    outside = np.abs(start.centers).max(axis=1) > D / 2 - 1
    if outside.any():
        centre = (start.centers.mean(0) + D // 2) * start.apix
        raise InputError(
            f"{int(outside.sum())} of {len(outside)} residues of the model lie outside the {D}-pixel box "
            f"(the model's centre is at {np.round(centre, 1).tolist()} Å in the frame of a map with origin 0, "
            f"the box centre at {D // 2 * start.apix:.1f} Å): fit it into the consensus map first, or give --fit"
        )


def fit_start(start: StartBeads, consensus: np.ndarray) -> StartBeads:
    """The start beads moved rigidly onto the consensus map: centred in the box, then rotated and
    shifted by :func:`~cryoscape.analysis.map_alignment.align_maps` (the hand is kept: a model's
    mirror image is not a protein)."""
    D = consensus.shape[-1]
    centred = start.moved(np.eye(3), -start.centers.mean(0))
    alignment = align_maps(centred.volume(D), consensus, start.apix, flip=False)
    # aligned(p) = model(R p + t): a bead at b moves to Rᵀ (b − t)
    R, t_px = alignment.rotation, alignment.shift_A / start.apix
    log.info("fitted the model into the consensus map: correlation %.3f", alignment.correlation)
    return centred.moved(R.T, -R.T @ t_px)


def checked_start(
    start: StartBeads, source: ImageSource, table: ParticleTable, invert: bool, use_ctf: bool, fit: bool
) -> StartBeads:
    """The start beads of an atomic model, fitted when ``fit``, and checked against the consensus map
    of the given poses: InputError when they lie outside the box or do not overlap it, a warning
    when the mirror image fits better."""
    D = table.box_size
    if not fit:
        check_inside(start, D)
    consensus = consensus_map(source, table, invert, use_ctf)
    if fit:
        start = fit_start(start, consensus)
    corr, mirrored = start_correlation(start, consensus)
    log.info(
        "start model against the consensus map of the given poses (%.0f Å): correlation %.3f (its mirror image: %.3f)",
        max(CHECK_RESOLUTION_A, 4 * start.apix),
        corr,
        mirrored,
    )
    if corr < MIN_CORRELATION:
        raise InputError(
            f"the start model does not overlap the consensus map of the given poses (correlation {corr:.2f} "
            f"< {MIN_CORRELATION}): fit it into the map first, or give --fit"
        )
    if mirrored > corr + 0.05:
        log.warning(
            "the mirror image of the start model fits the consensus map better (%.3f against %.3f): "
            "the poses (or the map it was fitted to) may have the other hand; see cryoscape flip-hand",
            mirrored,
            corr,
        )
    return start

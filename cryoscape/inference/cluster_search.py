"""Pose search of a heterogeneous dataset against per-cluster maps (the rounds of abinit-het).

A latent space splits the particles into clusters; each cluster has one map (its centre decoded).
Every particle is searched globally against its own cluster's map
(:func:`~cryoscape.inference.pose_search.search_poses`) and then refined locally below the grid
spacing (:func:`~cryoscape.inference.local_search.refine_poses_locally`); its current pose, refined
locally against the same map, competes, and the pose of lower error wins. The cost is one
homogeneous search of the dataset, whatever the number of clusters: each particle is searched
once, against one map, instead of against its own decoded map (cryoDRGN-AI's route, which renders
the search's slices from the network for every image).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.hartley_slicer import HartleySlicer
from cryoscape.inference.batches import make_batch
from cryoscape.inference.local_search import refine_poses_locally
from cryoscape.inference.pose_search import SearchSettings, search_poses
from cryoscape.progress import Progress


def search_by_cluster(
    source: ImageSource,
    table: ParticleTable,
    maps: list[np.ndarray],
    labels: np.ndarray,
    settings: SearchSettings,
    current: tuple[np.ndarray, np.ndarray],
    *,
    refine_steps: int = 6,
    batch_size: int = 128,
    invert: bool = False,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Poses of ``table``'s particles searched against ``maps[labels[i]]`` (each map (D, D, D) in
    the table's frame and pixel size), up to the search's last band limit (Fourier px); the local
    refinement starts at half the last grid level's spacing and 0.5 px. ``current``: the particles'
    poses now, rotations (N, 3, 3) and shifts (N, 2) px, each refined locally to compete with the
    search's. Returns rotations (N, 3, 3), shifts (N, 2) in pixels (the table's convention), the error
    per pixel of each (N,) and whether each came from the global search (N,) bool."""
    labels = np.asarray(labels)
    if labels.shape != (len(table),) or labels.min() < 0 or labels.max() >= len(maps):
        raise InputError(f"cluster labels must be one per particle, in 0..{len(maps) - 1}")
    bare = replace(table, rotations=None, shifts_A=None)
    rotations, shifts = np.zeros((len(table), 3, 3)), np.zeros((len(table), 2))
    errors, searched = np.zeros(len(table)), np.zeros(len(table), dtype=bool)
    step_deg = settings.grid_spacing_deg() / 2
    band = settings.band_limit(settings.levels, table.box_size)
    with Progress(len(table), "search by cluster", "images", progress) as bar:
        for k, volume in enumerate(maps):
            render = HartleySlicer(torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)))
            members = np.flatnonzero(labels == k)
            for start in range(0, len(members), batch_size):
                part = members[start : start + batch_size]
                batch = make_batch(torch.from_numpy(source.get(part)), bare, part, 1.0, invert=invert,
                                   use_ctf=table.ctf is not None)  # fmt: skip
                found = search_poses(render, batch.images_ht, batch.ctf, settings)
                R, t, error = refine_poses_locally(
                    render, batch.images_ht, batch.ctf, found.rotations[:, 0].double(),
                    found.shifts_px[:, 0].double(), band, step_deg, 0.5, refine_steps,
                )  # fmt: skip
                R_now, t_now, error_now = refine_poses_locally(
                    render, batch.images_ht, batch.ctf, torch.from_numpy(current[0][part]),
                    torch.from_numpy(current[1][part]), band, step_deg, 0.5, refine_steps,
                )  # fmt: skip
                better = (error < error_now).numpy()
                rotations[part] = np.where(better[:, None, None], R.numpy(), R_now.numpy())
                shifts[part] = np.where(better[:, None], t.numpy(), t_now.numpy())
                errors[part] = torch.minimum(error, error_now).double().numpy() / found.pixels
                searched[part] = better
                bar.update(len(part))
    return rotations, shifts, errors, searched

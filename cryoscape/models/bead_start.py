"""Where a bead model starts: one bead per residue of an atomic model (cryoSPHERE, cryofold), or
beads fitted to a consensus map (e2gmm's "neutral" model).

Units and frame: :class:`StartBeads` holds centres in pixels from the box origin (index D//2),
(x, y, z), masses in electrons (atomic models) or map units × voxels (maps), widths σ in pixels. An
atomic model is placed in the frame of the map it was fitted into: a map file with origin 0 puts
voxel i at i · apix Å, so an atom at x Å sits at x / apix − D//2 pixels from the box origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.gaussians import bead_volume
from cryoscape.io.atomic_model import AtomicModel

# representative atom of a residue: Cα of amino acids, C1' of nucleotides (as cryoSPHERE)
_REPRESENTATIVE = ("CA", "C1'")
_ATOMIC_NUMBER = {"H": 1, "D": 1, "C": 6, "N": 7, "O": 8, "P": 15, "S": 16, "Se": 34, "Fe": 26, "Zn": 30, "Mg": 12}
BOND_MAX_A = 4.5  # consecutive representative atoms closer than this (Å) are bonded (Cα–Cα: 3.8 Å)


@dataclass
class StartBeads:
    """``centers`` (M, 3) pixels from the origin (x, y, z); ``masses`` (M,); ``sigmas`` (M,) pixels;
    ``bonds`` (P, 2) pairs of bead indices held together (consecutive residues of a chain, empty for
    map beads); ``apix`` Å per pixel; ``frame`` (3, 4) [A | b]: the atomic model's coordinates x (Å,
    file frame) sit at A x + b pixels from the origin (bead j is residue j of that model); None for
    map beads."""

    centers: np.ndarray
    masses: np.ndarray
    sigmas: np.ndarray
    bonds: np.ndarray
    apix: float
    frame: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.centers = np.asarray(self.centers, dtype=np.float64).reshape(-1, 3)
        M = len(self.centers)
        self.masses = np.asarray(self.masses, dtype=np.float64).reshape(M)
        self.sigmas = np.asarray(self.sigmas, dtype=np.float64).reshape(M)
        self.bonds = np.asarray(self.bonds, dtype=np.int64).reshape(-1, 2)
        if M == 0:
            raise InputError("a bead model needs at least one bead")

    def to_json(self) -> dict:
        return {
            "centers": self.centers.tolist(),
            "masses": self.masses.tolist(),
            "sigmas": self.sigmas.tolist(),
            "bonds": self.bonds.tolist(),
            "apix": self.apix,
            "frame": None if self.frame is None else np.asarray(self.frame).tolist(),
        }

    @classmethod
    def from_json(cls, values: dict) -> StartBeads:
        frame = values.get("frame")
        return cls(
            values["centers"],
            values["masses"],
            values["sigmas"],
            values["bonds"],
            float(values["apix"]),
            None if frame is None else np.asarray(frame, dtype=np.float64),
        )

    def to_pixels(self, coords_A: np.ndarray) -> np.ndarray:
        """Atomic-model coordinates (N, 3) Å (file frame) -> pixels from the origin (N, 3)."""
        if self.frame is None:
            raise InputError("these beads were not made from an atomic model")
        return coords_A @ self.frame[:, :3].T + self.frame[:, 3]

    def from_pixels(self, points_px: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_pixels`."""
        if self.frame is None:
            raise InputError("these beads were not made from an atomic model")
        return np.linalg.solve(self.frame[:, :3], (points_px - self.frame[:, 3]).T).T

    def moved(self, rotation: np.ndarray, shift_px: np.ndarray) -> StartBeads:
        """The beads (and frame) moved rigidly: p -> rotation · p + shift_px."""
        frame = (
            None
            if self.frame is None
            else np.concatenate([rotation @ self.frame[:, :3], (rotation @ self.frame[:, 3] + shift_px)[:, None]], 1)
        )
        return StartBeads(self.centers @ rotation.T + shift_px, self.masses, self.sigmas, self.bonds, self.apix, frame)

    def volume(self, D: int) -> np.ndarray:
        """The start map (D, D, D) float32, masses per voxel sum."""
        c, m, s = (torch.as_tensor(x, dtype=torch.float32) for x in (self.centers, self.masses, self.sigmas))
        return bead_volume(c, m, s, D).numpy()


def electrons(elements: np.ndarray) -> np.ndarray:
    """Atomic numbers (electrons of the neutral atoms) of element symbols; 6 for unknown ones."""
    return np.array([_ATOMIC_NUMBER.get(str(e), 6) for e in elements], dtype=np.float64)


def residue_beads(model: AtomicModel, D: int, apix: float, sigma_A: float = 2.0) -> StartBeads:
    """One bead per residue at its Cα (C1′ for nucleotides; the residues' centroid when it has
    neither), mass = the electrons of its atoms, width ``sigma_A`` (cryoSPHERE's 2 Å), in the frame of
    a map of D voxels of ``apix`` Å with origin 0. Bonds join consecutive residues of a chain whose
    representative atoms lie within :data:`BOND_MAX_A`. InputError for a model with only hydrogens."""
    heavy = ~np.isin(model.elements, ("H", "D"))
    if not heavy.any():
        raise InputError("the atomic model has no atoms other than hydrogens")
    n = model.n_residues
    per_residue = electrons(model.elements)
    masses = np.bincount(model.residue_index, weights=per_residue, minlength=n)
    counts = np.bincount(model.residue_index, minlength=n)
    centroid = np.stack(
        [np.bincount(model.residue_index, weights=model.coords_A[:, i], minlength=n) for i in range(3)], 1
    )
    positions = centroid / np.maximum(counts, 1)[:, None]
    representative = np.isin(model.atom_names, _REPRESENTATIVE)
    positions[model.residue_index[representative]] = model.coords_A[representative]
    chain = np.empty(n, dtype=object)
    chain[model.residue_index] = model.chain_ids  # every residue has atoms (read_atomic_model)
    gap = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    j = np.flatnonzero((chain[1:] == chain[:-1]) & (gap < BOND_MAX_A))
    frame = np.concatenate([np.eye(3) / apix, np.full((3, 1), -float(D // 2))], 1)
    start = StartBeads(
        np.zeros_like(positions), masses, np.full(n, sigma_A / apix), np.stack([j, j + 1], 1), apix, frame
    )
    start.centers = start.to_pixels(positions)
    return start


def map_beads(volume: np.ndarray, apix: float, n_beads: int, steps: int = 300, seed: int = 0) -> StartBeads:
    """``n_beads`` beads fitted to a map (D, D, D) [z, y, x] (e2gmm's neutral model): centres drawn
    from the positive density, then centres, masses and widths adjusted by Adam to minimise the
    squared difference between the bead map and the map. Widths start at the spacing the beads
    would have if they filled the density evenly (σ₀), and stay within [0.7 px, 2σ₀] (a bead fitting
    noise would otherwise spread over the box)."""
    D = volume.shape[-1]
    target = torch.from_numpy(np.array(volume, dtype=np.float32))  # a copy: maps read from files are read-only
    positive = target.clamp(min=0).reshape(-1)
    if n_beads < 1 or float(positive.sum()) <= 0:
        raise InputError("fitting beads needs a map with positive density and at least one bead")
    generator = torch.Generator().manual_seed(seed)
    picked = torch.multinomial(positive, n_beads, replacement=False, generator=generator)
    zyx = torch.stack(torch.unravel_index(picked, (D, D, D)), 1).float()
    centers = (zyx.flip(1) - D // 2 + torch.rand(n_beads, 3, generator=generator) - 0.5).requires_grad_(True)
    occupied = float((target > 0.2 * target.max()).sum())
    spacing = (occupied / n_beads) ** (1 / 3)
    sigma0 = max(1.0, 0.5 * spacing)
    log_sigma = torch.full((n_beads,), math.log(sigma0)).requires_grad_(True)
    log_mass = torch.full((n_beads,), math.log(float(positive.sum()) / n_beads)).requires_grad_(True)
    optimizer = torch.optim.Adam([centers, log_sigma, log_mass], lr=0.05)
    scale = float(target.square().mean())
    for _ in range(steps):
        optimizer.zero_grad()
        fit = bead_volume(centers, log_mass.exp(), log_sigma.exp().clamp(0.7, 2 * sigma0), D)
        loss = (fit - target).square().mean() / scale
        loss.backward()
        optimizer.step()
    return StartBeads(
        centers.detach().numpy(),
        log_mass.exp().detach().numpy(),
        log_sigma.exp().clamp(0.7, 2 * sigma0).detach().numpy(),
        np.zeros((0, 2)),
        apix,
    )


def beads_for_resolution(volume: np.ndarray, apix: float, resolution_A: float) -> int:
    """e2gmm's rule of thumb: as many beads as resolution elements (cubes of (resolution/2)³) the
    particle occupies (voxels above 20% of the map's maximum), at least 16."""
    occupied_A3 = float((volume > 0.2 * volume.max()).sum()) * apix**3
    return max(16, round(occupied_A3 / (resolution_A / 2) ** 3))

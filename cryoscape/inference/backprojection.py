"""Homogeneous reconstruction by Fourier-space backprojection with known poses and CTF.

Each image goes through the adjoint of the forward model (:func:`cryoscape.imaging.forward.adjoint_images`:
Fourier transformed, re-centred by +shift (RELION's origin convention), multiplied by its CTF c,
RELION sign) and is inserted as a central slice at Rᵀ(kx, ky, 0) by trilinear
scatter; the weights c² are inserted the same way. Only half of each (Hermitian) slice is inserted
and the sums are completed by symmetry, which halves the work. The map is the Wiener-style ratio

    V̂(k) = Σ_i c_i X_i(k) / (Σ_i c_i²(k) + λ(|k|)),

with λ per shell = (mean weight in the shell) / SSNR(shell), and SSNR from the FSC of two
independently reconstructed random halves (gold standard). Without noise the FSC is ~1 and λ is
negligible. Voxels beyond radius D/2 (Nyquist) are zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.fft import ifft3_center
from cryoscape.imaging.forward import adjoint_images
from cryoscape.imaging.fsc import FSCCurve, fsc, ssnr_from_half_map_fsc
from cryoscape.imaging.grids import radial_index_3d
from cryoscape.imaging.slicing import hermitian_complete, insert_central_slices
from cryoscape.progress import Progress


@dataclass
class FourierAccumulator:
    """Running sums of CTF-weighted slices (complex) and of CTF² weights on a D³ centred grid. With a
    point ``group`` (G, 3, 3) (:func:`cryoscape.imaging.symmetry.symmetry_group`) each image is
    inserted at its G equivalent poses R·g, which makes the map symmetric."""

    D: int
    device: torch.device | str = "cpu"
    group: torch.Tensor | None = None
    data: torch.Tensor = field(init=False)
    weight: torch.Tensor = field(init=False)
    count: int = 0

    def __post_init__(self):
        self.data = torch.zeros((self.D,) * 3, dtype=torch.complex64, device=self.device)
        self.weight = torch.zeros((self.D,) * 3, dtype=torch.float32, device=self.device)

    def add(self, slices: torch.Tensor, weights: torch.Tensor, rotations: torch.Tensor) -> None:
        if len(slices) == 0:
            return
        count = len(slices)
        if self.group is not None:
            G = len(self.group)
            rotations = (rotations[:, None] @ self.group.to(rotations)).reshape(-1, 3, 3)
            slices, weights = slices.repeat_interleave(G, 0), weights.repeat_interleave(G, 0)
        data, weight = insert_central_slices(slices, rotations, self.D, weights, half_plane=True)
        self.data += hermitian_complete(data)
        self.weight += hermitian_complete(weight)
        self.count += count

    def merged(self, other: FourierAccumulator) -> FourierAccumulator:
        out = FourierAccumulator(self.D, self.device, self.group)
        out.data, out.weight, out.count = self.data + other.data, self.weight + other.weight, self.count + other.count
        return out

    def reconstruct(self, ssnr: np.ndarray | None = None, floor: float = 1e-3) -> np.ndarray:
        """(D, D, D) real map. ``ssnr`` per shell (0..D//2) sets λ = mean shell weight / SSNR;
        without it λ = ``floor`` × the mean weight of the shell (a minimal regularizer)."""
        shells = radial_index_3d(self.D, self.device)
        n = self.D // 2 + 1
        inside = shells < n
        s = shells[inside]
        mean_w = torch.bincount(s, weights=self.weight[inside].double(), minlength=n)
        mean_w = mean_w / torch.bincount(s, minlength=n).clamp(min=1)
        inv_ssnr = (
            torch.full((n,), floor, dtype=torch.float64, device=self.device)
            if ssnr is None
            else 1.0 / torch.as_tensor(ssnr, dtype=torch.float64, device=self.device)
        )
        lam = torch.zeros((self.D,) * 3, dtype=torch.float64, device=self.device)
        lam[inside] = (mean_w * inv_ssnr)[s]
        denom = self.weight.double() + lam
        ft = torch.where(inside & (denom > 0), self.data.to(torch.complex128) / denom.clamp(min=1e-30), 0)
        return ifft3_center(ft).real.float().cpu().numpy()


@dataclass
class Reconstruction:
    """Result of :func:`backproject`: full and half maps (D³, float32) and the half-map FSC."""

    volume: np.ndarray
    half_maps: tuple[np.ndarray, np.ndarray]
    half_map_fsc: FSCCurve
    apix: float
    n_particles: tuple[int, int]


def split_halves(table: ParticleTable, seed: int = 0) -> np.ndarray:
    """(N,) half index in {0, 1}: RELION's ``_rlnRandomSubset`` (1/2) when the table has it, else a
    random balanced split with ``seed``."""
    meta = table.metadata
    if len(meta) == len(table) and "rlnRandomSubset" in meta.columns:
        subset = meta["rlnRandomSubset"].to_numpy()
        if set(np.unique(subset)) <= {1, 2}:
            return (subset - 1).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(table))
    halves = np.zeros(len(table), dtype=np.int64)
    halves[order[len(table) // 2 :]] = 1
    return halves


def accumulate(
    source: ImageSource,
    table: ParticleTable,
    halves: np.ndarray,
    *,
    batch_size: int = 256,
    invert: bool = False,
    use_ctf: bool = True,
    progress: bool = True,
    device: torch.device | str = "cpu",
    symmetry: np.ndarray | None = None,
) -> tuple[FourierAccumulator, FourierAccumulator]:
    """Backproject every particle into the accumulator of its half (see module docstring), at each
    of its poses equivalent under the point group ``symmetry`` (G, 3, 3) when given."""
    if batch_size < 1:
        raise InputError(f"the batch size must be at least 1, got {batch_size}")
    rotations = table.rotations
    if rotations is None:
        raise InputError("backprojection needs poses: the particle file has no angles (pass --poses)")
    if use_ctf and table.ctf is None:
        raise InputError("the particle file has no CTF parameters; pass --ctf, or --no-ctf for CTF-free data")
    D = table.box_size
    group = None if symmetry is None else torch.from_numpy(np.asarray(symmetry, dtype=np.float32)).to(device)
    acc = (FourierAccumulator(D, device, group), FourierAccumulator(D, device, group))
    bar = Progress(len(table), "backproject", "images", progress)
    any_signal = False
    for start in range(0, len(table), batch_size):
        index = np.arange(start, min(start + batch_size, len(table)))
        bar.update(len(index))
        images = torch.from_numpy(source.get(index)).to(device)
        any_signal = any_signal or bool(images.abs().amax() > 0)
        if invert:
            images = -images
        ctf = table.ctf_images(index, device) if use_ctf else None
        shifts = table.shifts_px_of(index)
        shifts_px = None if shifts is None else torch.from_numpy(shifts).float().to(device)
        slices, weights = adjoint_images(images, shifts_px, ctf)
        rot = torch.from_numpy(rotations[index]).float().to(device)
        for h in (0, 1):
            sel = torch.from_numpy(halves[index] == h).to(device)
            acc[h].add(slices[sel], weights[sel], rot[sel])
    bar.close()
    if not any_signal:  # the maps would be zero, their FSC 0/0
        raise InputError(f"{table.describe_images(np.arange(len(table)))} are all zero: nothing to reconstruct")
    return acc


def backproject(
    source: ImageSource,
    table: ParticleTable,
    *,
    batch_size: int = 256,
    invert: bool = False,
    use_ctf: bool = True,
    seed: int = 0,
    progress: bool = True,
    device: torch.device | str = "cpu",
    symmetry: np.ndarray | None = None,
) -> Reconstruction:
    """Gold-standard reconstruction: two half maps, their FSC, and the full map, all Wiener-filtered
    with the SSNR that the half-map FSC implies; symmetric under the point group ``symmetry``
    (G, 3, 3) when given."""
    if len(table) < 2:
        raise InputError("backprojection needs at least 2 particles (one per half)")
    halves = split_halves(table, seed)
    acc = accumulate(
        source, table, halves, batch_size=batch_size, invert=invert, use_ctf=use_ctf, progress=progress,
        device=device, symmetry=symmetry,
    )  # fmt: skip
    apix = float(np.median(table.apix))
    first = fsc(acc[0].reconstruct(), acc[1].reconstruct(), apix=apix)
    ssnr_half = ssnr_from_half_map_fsc(first.fsc, 1)
    half_maps = (acc[0].reconstruct(ssnr_half), acc[1].reconstruct(ssnr_half))
    full = acc[0].merged(acc[1]).reconstruct(ssnr_from_half_map_fsc(first.fsc, 2))
    return Reconstruction(
        volume=full,
        half_maps=half_maps,
        half_map_fsc=fsc(*half_maps, apix=apix),
        apix=apix,
        n_particles=(acc[0].count, acc[1].count),
    )

"""Atomic models -> electron-scattering density maps and analytic projections.

Each atom contributes the 5-Gaussian electron scattering factor of its element (International
Tables Vol. C Table 4.3.2.2, from ``gemmi.Element(sym).c4322``), f(s) = Σ_i a_i exp(-b_i s²/4) with
s = |k| in 1/Å, blurred by a B-factor B (Å²): in real space
ρ(r) = Σ_i a_i (4π/(b_i+B))^{3/2} exp(-4π² r²/(b_i+B))   (units: Å of scattering length per Å³).

Units on the grid: a voxel holds ρ at its centre times apix³ (the scattering in the voxel), and a
pixel of a projection holds apix² ∫ρ dz, so summing a map over z gives the projection of the same
atoms, and both sum to Σ_atoms f(0).

Geometry: voxel [z, y, x] with integer indices i sits at position (i - D//2)·apix + center (Å, for
each of x, y, z); ``center_A`` defaults to the mean of the atom coordinates (unweighted). A
projection with pose R places an atom at image position R (r - center), pixel [y, x] at
(index - D//2)·apix, consistent with :func:`cryoscape.imaging.slicing.project_real_space`.

Default blur: ``default_bfactor_A2(apix) = 8π² apix²`` adds a Gaussian of σ = 1 pixel to every
term, so that even the sharpest term is sampled without aliasing (its transform is < 1% at Nyquist).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size, check_rotations

_CUTOFF = 1e-5  # a Gaussian term is evaluated out to where it falls below this fraction of its peak
_CHUNK_ATOMS = 1024
_CHUNK_TERMS = 400_000  # (image, atom-term) pairs per batched matmul in project_atoms


def default_bfactor_A2(apix: float) -> float:
    """B-factor (Å²) of a Gaussian blur with σ = 1 pixel: 8π² apix²."""
    return 8 * math.pi**2 * float(apix) ** 2


@cache
def _element_coefficients(symbol: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    import gemmi

    element = gemmi.Element(symbol)
    if element.atomic_number == 0:
        raise InputError(f"unknown element symbol {symbol!r}")
    coef = element.c4322
    return tuple(coef.a), tuple(coef.b)


def scattering_coefficients(elements) -> tuple[np.ndarray, np.ndarray]:
    """Electron scattering Gaussians per atom: (a (N, 5) Å, b (N, 5) Å²) for element symbols (N,)."""
    symbols = [str(e).strip() for e in np.asarray(elements).reshape(-1)]
    table = {s: _element_coefficients(s.capitalize()) for s in set(symbols)}
    a = np.array([table[s][0] for s in symbols], dtype=np.float64).reshape(-1, 5)
    b = np.array([table[s][1] for s in symbols], dtype=np.float64).reshape(-1, 5)
    return a, b


def _prepare(coords_A, elements, D, apix, bfactor_A2, center_A):
    D = check_box_size(D)
    coords = torch.as_tensor(np.asarray(coords_A, dtype=np.float64))
    if coords.ndim != 2 or coords.shape[1] != 3 or coords.shape[0] == 0:
        raise InputError(f"coords_A must be a non-empty (N, 3) array, got {tuple(coords.shape)}")
    if len(np.asarray(elements).reshape(-1)) != coords.shape[0]:
        raise InputError(f"{len(np.asarray(elements).reshape(-1))} elements for {coords.shape[0]} atoms")
    if not apix > 0:
        raise InputError(f"apix must be positive, got {apix}")
    B = default_bfactor_A2(apix) if bfactor_A2 is None else float(bfactor_A2)
    if B < 0:
        raise InputError(f"bfactor_A2 must be >= 0, got {B}")
    center = coords.mean(0) if center_A is None else torch.as_tensor(np.asarray(center_A, dtype=np.float64))
    if center.shape != (3,):
        raise InputError(f"center_A must be (3,), got {tuple(center.shape)}")
    a, b = scattering_coefficients(elements)
    width = torch.as_tensor(b) + B  # (N, 5) Å²
    return D, coords - center, torch.as_tensor(a), width


def atoms_to_volume(
    coords_A, elements, D: int, apix: float, bfactor_A2: float | None = None, center_A=None
) -> torch.Tensor:
    """Density map (D, D, D) float32 [z, y, x] of atoms at ``coords_A`` (N, 3) Å (x, y, z).

    Voxel values are ρ(voxel centre)·apix³ (see module docstring); ``bfactor_A2=None`` uses
    :func:`default_bfactor_A2`. Each atom is evaluated (separably, x·y·z factors) in a cube of
    voxels reaching to where its widest term falls below 1e-5 of its peak; voxels outside the box
    are dropped.
    """
    D, rel, a, width = _prepare(coords_A, elements, D, apix, bfactor_A2, center_A)
    amp = a * (4 * math.pi / width) ** 1.5 * apix**3  # (N, 5)
    decay = 4 * math.pi**2 / width * apix**2  # (N, 5) per voxel²
    radius_px = math.ceil(math.sqrt(math.log(1 / _CUTOFF) / float(decay.min())))
    offsets = torch.arange(-radius_px, radius_px + 1)  # (K,)
    K = offsets.numel()
    u = rel / apix + D // 2  # (N, 3) fractional voxel index (x, y, z)
    flat = torch.zeros(D**3, dtype=torch.float64)
    for s in range(0, u.shape[0], _CHUNK_ATOMS):
        uc = u[s : s + _CHUNK_ATOMS]
        n = uc.shape[0]
        vox = torch.round(uc).long()[:, :, None] + offsets  # (n, 3, K) voxel index per axis
        # Gaussians are separable: exp(-c d²) = Π_axis exp(-c d_axis²); factors (n, 5, K) per axis.
        g = torch.exp(-decay[s : s + n, :, None, None] * (vox[:, None] - uc[:, None, :, None]) ** 2)
        g = g * ((vox >= 0) & (vox < D))[:, None]  # voxels outside the box get 0
        gx, gy, gz = g.unbind(2)
        zy = ((amp[s : s + n, :, None] * gz)[..., :, None] * gy[..., None, :]).reshape(n, 5, K * K)
        val = torch.bmm(zy.transpose(1, 2), gx)  # (n, K·K, K) [z, y, x]
        p = vox.clamp(0, D - 1)  # clamped voxels carry 0
        idx = (p[:, 2, :, None, None] * D + p[:, 1, None, :, None]) * D + p[:, 0, None, None, :]
        flat.index_add_(0, idx.reshape(-1), val.reshape(-1))
    return flat.reshape(D, D, D).to(torch.float32)


def project_atoms(
    coords_A, elements, rotations: torch.Tensor, D: int, apix: float, bfactor_A2: float | None = None, center_A=None
) -> torch.Tensor:
    """Analytic projections (B, D, D) float32 [y, x] of the atoms for poses ``rotations`` (B, 3, 3).

    Pixel values are apix² ∫ρ dz at pixel centres: each term projects to the 2D Gaussian
    a_i (4π/w_i) exp(-4π² d²/w_i), w_i = b_i + B, at image position (R (r - center))_{x,y}.
    Same scale as ``project_real_space(atoms_to_volume(...), rotations)``; no cut-off.
    """
    check_rotations(rotations)
    D, rel, a, width = _prepare(coords_A, elements, D, apix, bfactor_A2, center_A)
    R = rotations.to(torch.float64)
    pos = torch.einsum("bij,nj->bni", R, rel)[..., :2] / apix  # (B, N, 2) pixels from the origin
    amp = (a * (4 * math.pi / width) * apix**2).reshape(-1)  # (N·5,)
    decay = (4 * math.pi**2 / width * apix**2).reshape(-1)  # (N·5,) per pixel²
    grid = torch.arange(D, dtype=torch.float64) - D // 2
    out = torch.empty(R.shape[0], D, D, dtype=torch.float32)
    step = max(1, _CHUNK_TERMS // amp.numel())
    for s in range(0, R.shape[0], step):
        p = pos[s : s + step].repeat_interleave(5, dim=1)  # (b, N·5, 2)
        gx = torch.exp(-decay[:, None] * (grid - p[..., 0:1]) ** 2)  # (b, M, D) along x
        gy = torch.exp(-decay[:, None] * (grid - p[..., 1:2]) ** 2) * amp[:, None]
        out[s : s + step] = torch.matmul(gy.transpose(1, 2), gx).to(torch.float32)  # [y, x]
    return out

"""HEALPix sphere pixelisation and the Hopf-fibration grid on SO(3), with hierarchical refinement.

The SO(3) grid at level L (Yershova et al. 2010, as in cryoDRGN's pose search) is the product of
the HEALPix grid on S² with nside = 2^L (12·4^L viewing directions (θ, φ), nested ordering) and
6·2^L in-plane angles ψ_j = (j + ½)·2π/(6·2^L): N = 72·8^L rotations (72 at level 0, ~60° apart;
576 at level 1, ~30°; 4,608 at level 2, ~15°). Grid index = healpix_index · (6·2^L) + j.
A Hopf point maps to the quaternion (w, x, y, z) =
(cos(θ/2)cos(ψ/2), cos(θ/2)sin(ψ/2), sin(θ/2)cos(φ + ψ/2), sin(θ/2)sin(φ + ψ/2)).
"""

from __future__ import annotations

import math

import torch

from cryoscape.errors import InputError
from cryoscape.imaging.rotations import quaternion_to_matrix

# HEALPix base faces: ring index of the face's southern corner (in units of nside) and its
# longitude offset (in units of π/4).
_FACE_RING = torch.tensor([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4])
_FACE_LON = torch.tensor([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7])


def _check_level(level: int) -> int:
    if int(level) != level or level < 0:
        raise InputError(f"grid level must be a non-negative integer, got {level}")
    return int(level)


def _check_nside(nside: int) -> int:
    if int(nside) != nside or nside < 1 or int(nside) & (int(nside) - 1):
        raise InputError(f"nside must be a power of 2, got {nside}")
    return int(nside)


def _deinterleave(v: torch.Tensor, nbits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split Morton-ordered bits: even bits -> x, odd bits -> y."""
    x = torch.zeros_like(v)
    y = torch.zeros_like(v)
    for b in range(nbits):
        x |= ((v >> (2 * b)) & 1) << b
        y |= ((v >> (2 * b + 1)) & 1) << b
    return x, y


def pix2ang(nside: int, ipix) -> tuple[torch.Tensor, torch.Tensor]:
    """HEALPix nested-scheme pixel centres: (theta colatitude in [0, π], phi longitude in [0, 2π)).

    ``ipix`` is an int or integer array/tensor of indices in [0, 12·nside²); returns float64 tensors
    of the same shape (agrees with ``healpy.pix2ang(nside, ipix, nest=True)``).
    """
    nside = _check_nside(nside)
    p = torch.as_tensor(ipix, dtype=torch.long)
    if bool(((p < 0) | (p >= 12 * nside * nside)).any()):
        raise InputError(f"HEALPix index out of range [0, {12 * nside * nside}) for nside {nside}")
    face = p // (nside * nside)
    ix, iy = _deinterleave(p % (nside * nside), nside.bit_length() - 1)
    jr = _FACE_RING[face] * nside - ix - iy - 1  # ring number counted from the north pole, 1..4nside-1
    north, south = jr < nside, jr > 3 * nside
    nr = torch.where(north, jr, torch.where(south, 4 * nside - jr, torch.full_like(jr, nside)))
    nr_f = nr.double()
    z_equator = (2 * nside - jr).double() * 2.0 / (3 * nside)
    z = torch.where(
        north, 1 - nr_f**2 / (3.0 * nside**2), torch.where(south, -1 + nr_f**2 / (3.0 * nside**2), z_equator)
    )
    kshift = torch.where(north | south, torch.zeros_like(jr), (jr - nside) & 1)
    jp = (_FACE_LON[face] * nr + ix - iy + 1 + kshift) // 2
    jp = torch.where(jp > 4 * nside, jp - 4 * nside, jp)
    jp = torch.where(jp < 1, jp + 4 * nside, jp)
    phi = (jp.double() - (kshift.double() + 1) * 0.5) * (math.pi / 2) / nr_f
    # In the polar caps 1 - |z| = nr²/(3 nside²): use asin for full precision near the poles.
    cap = 2 * torch.asin((nr_f / (math.sqrt(6.0) * nside)).clamp(max=1.0))
    theta = torch.where(north, cap, torch.where(south, math.pi - cap, torch.arccos(z.clamp(-1.0, 1.0))))
    return theta, phi


def _n_psi(level: int) -> int:
    return 6 * 2**level


def _psi(level: int, j: torch.Tensor) -> torch.Tensor:
    return (j.double() + 0.5) * (2 * math.pi / _n_psi(level))


def hopf_to_quaternion(theta: torch.Tensor, phi: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """Hopf coordinates (θ, φ, ψ) (radians, same shapes) -> unit quaternions (w, x, y, z) (..., 4)."""
    c, s = torch.cos(theta / 2), torch.sin(theta / 2)
    return torch.stack(
        [c * torch.cos(psi / 2), c * torch.sin(psi / 2), s * torch.cos(phi + psi / 2), s * torch.sin(phi + psi / 2)], -1
    )


def _grid_quaternions(level: int, indices: torch.Tensor) -> torch.Tensor:
    n_psi = _n_psi(level)
    theta, phi = pix2ang(2**level, indices // n_psi)
    return hopf_to_quaternion(theta, phi, _psi(level, indices % n_psi))


def so3_grid_size(level: int) -> int:
    """Number of rotations 72·8^level of the SO(3) grid at ``level``."""
    return 72 * 8 ** _check_level(level)


def so3_grid(level: int) -> torch.Tensor:
    """(72·8^level, 4) float64 unit quaternions (w, x, y, z) of the Hopf grid at ``level``."""
    return _grid_quaternions(level, torch.arange(so3_grid_size(level)))


def so3_grid_matrices(level: int) -> torch.Tensor:
    """(72·8^level, 3, 3) float64 rotation matrices of :func:`so3_grid` (same order)."""
    return quaternion_to_matrix(so3_grid(level))


def so3_grid_rotations(indices, level: int) -> torch.Tensor:
    """(..., 3, 3) float64 rotation matrices of the grid points ``indices`` (any shape) at ``level``."""
    level = _check_level(level)
    idx = torch.as_tensor(indices, dtype=torch.long)
    if bool(((idx < 0) | (idx >= so3_grid_size(level))).any()):
        raise InputError(f"grid index out of range [0, {so3_grid_size(level)}) at level {level}")
    return quaternion_to_matrix(_grid_quaternions(level, idx.reshape(-1))).reshape(*idx.shape, 3, 3)


def so3_grid_children(indices, level: int) -> torch.Tensor:
    """(n,) grid indices at ``level`` -> (n, 8) long indices at level + 1, nearest first.

    Candidates are the 4 nested HEALPix children × the 12 in-plane angles 2j-5 .. 2j+6 (cyclic)
    around the parent's ψ_j; the 8 closest to the parent in quaternion distance
    min(|q - q'|², |q + q'|²) are kept. (cryoDRGN uses only 2j-1 .. 2j+2; since the Hopf
    quaternion couples ψ with φ, the wider window is needed for the children to be the 8 nearest
    grid points: exactly so at levels 0 and 1, and for ~90% of parents at level 2, where the other
    ~10% differ only through HEALPix children of neighbouring pixels.)
    """
    level = _check_level(level)
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    if bool(((idx < 0) | (idx >= so3_grid_size(level))).any()):
        raise InputError(f"grid index out of range [0, {so3_grid_size(level)}) at level {level}")
    n_psi, n_psi_next = _n_psi(level), _n_psi(level + 1)
    pix, j = idx // n_psi, idx % n_psi
    pix_children = 4 * pix[:, None] + torch.arange(4)  # (n, 4)
    psi_children = (2 * j[:, None] + torch.arange(-5, 7)) % n_psi_next  # (n, 12)
    cand = (pix_children[:, :, None] * n_psi_next + psi_children[:, None, :]).reshape(-1, 48)
    q_parent = _grid_quaternions(level, idx)[:, None, :]
    q_cand = _grid_quaternions(level + 1, cand)
    dist = torch.minimum(((q_cand - q_parent) ** 2).sum(-1), ((q_cand + q_parent) ** 2).sum(-1))
    order = torch.argsort(dist, dim=1, stable=True)[:, :8]
    return torch.take_along_dim(cand, order, dim=1)


def shift_grid(extent_px: float, n: int, dtype=torch.float64) -> torch.Tensor:
    """(n·n, 2) translations (x, y) in pixels on a regular grid covering [-extent, extent]².

    Points along each axis are -extent + (i + ½)·2·extent/n, i = 0..n-1; x varies fastest.
    """
    if int(n) != n or n < 1 or not extent_px >= 0:
        raise InputError(f"shift grid needs n >= 1 and extent >= 0, got n={n}, extent={extent_px}")
    t = -extent_px + (torch.arange(int(n), dtype=torch.float64) + 0.5) * (2 * extent_px / n)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).to(dtype)

"""Maps made of isotropic 3D Gaussians ("beads", e2gmm and cryoSPHERE): their analytic Hartley
slices, and the map sampled on the voxel grid.

Conventions (those of :mod:`cryoscape.imaging.slicing`): positions are (x, y, z) in pixels from the
box origin (index D//2); widths σ in pixels; a bead's ``mass`` is the integral of its density (the
sum of its voxels), so the bead j contributes mass_j (2πσ_j²)^(−3/2) exp(−|n − p_j|² / 2σ_j²) to
voxel n. Rotations R (B, 3, 3) are pose matrices: image b sees the beads at R_b p_j and projects
along z.

Slices: the centred 2D transform of a projected bead is mass · exp(−2π²σ²|k|²/D²) · exp(−2πi k·q/D)
(k in pixels from the centre, q = (R p)_{x,y}). It factors into an x and a y term, so the Hartley
slice H = Re F − Im F of B images of M beads is one (D × 2M) @ (2M × D) product per image:
H = Σ_j a_j(ky)·a_j(kx)·[cos φy (cos φx − sin φx) − sin φy (cos φx + sin φx)], φ = −2π k q / D.
Cost O(M·D²) per image, against O(D²·network) for a neural field. The continuous transform is
used: for σ ≥ 1 pixel the aliasing of the sampled Gaussian is below 1% of its mass.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size, check_rotations

_CHUNK_TERMS = 2**24  # image × bead × pixel terms held at once (~128 MB in float32 with both factors)


def _check_beads(centers: Tensor, masses: Tensor, sigmas: Tensor) -> None:
    M = centers.shape[-2]
    if centers.shape[-1] != 3 or M == 0:
        raise InputError(f"bead centres must be (..., M, 3) with M > 0, got {tuple(centers.shape)}")
    if masses.shape[-1] != M or sigmas.shape[-1] != M:
        raise InputError(f"{M} beads, but {masses.shape[-1]} masses and {sigmas.shape[-1]} widths")


def bead_slices(
    centers: Float[Tensor, "B M 3"],
    masses: Float[Tensor, "*B M"],
    sigmas: Float[Tensor, "*B M"],
    rotations: Float[Tensor, "B 3 3"],
    D: int,
) -> Float[Tensor, "B D D"]:
    """Centred Hartley slices (B, D, D) [ky, kx] of the projections of beads at ``centers`` (B, M, 3)
    (or (M, 3), shared by all images; pixels from the origin, (x, y, z)), ``masses`` and ``sigmas``
    (M,) or (B, M) (pixels), at poses ``rotations`` (B, 3, 3): the 2D Hartley transform of
    Σ_z of the bead map (see module docstring). Differentiable in every input; widths shared by
    all images ((M,)) give their Fourier envelope once, not once per image."""
    D = check_box_size(D)
    check_rotations(rotations)
    _check_beads(centers, masses, sigmas)
    B, M = rotations.shape[0], centers.shape[-2]
    centers, masses = centers.expand(B, M, 3), masses.expand(B, M)
    k = (torch.arange(D, device=rotations.device, dtype=centers.dtype) - D // 2) / D  # cycles per pixel
    envelope = torch.exp(-2 * math.pi**2 * sigmas[..., None] ** 2 * k**2)  # (M, D) or (B, M, D)
    envelope = envelope if envelope.dim() == 3 else envelope[None]  # (1 or B, M, D)
    step = max(1, _CHUNK_TERMS // (M * D))
    parts = []
    for s in range(0, B, step):
        q = torch.einsum("bij,bmj->bmi", rotations[s : s + step], centers[s : s + step])[..., :2]  # (b, M, 2)
        shared = envelope if len(envelope) == 1 else envelope[s : s + step]
        parts.append(_SeparableSlice.apply(q, masses[s : s + step], shared, k))
    return torch.cat(parts)


class _SeparableSlice(torch.autograd.Function):
    """H[b, ky, kx] = Σ_j a_bj e_j(ky) e_j(kx) [cos φy (cos φx − sin φx) − sin φy (cos φx + sin φx)],
    φ = −2π k q / D, as one (D × 2M) @ (2M × D) product per image, with a hand-written backward:
    the derivatives of the factors are the other factors (d/dφ of e(cos − sin) is −e(cos + sin),
    and so on), so the backward is two products and a few elementwise terms, where autograd would
    keep and replay every intermediate of the forward. Inputs: q (B, M, 2) pixels, a (B, M),
    e (B or 1, M, D), k (D,) cycles per pixel."""

    @staticmethod
    def forward(ctx, q: Tensor, a: Tensor, e: Tensor, k: Tensor) -> Tensor:
        phase = -2 * math.pi * q[..., None] * k  # (B, M, 2, D)
        cos, sin = phase.cos(), phase.sin()
        X = torch.cat([e * (cos[:, :, 0] - sin[:, :, 0]), e * (cos[:, :, 0] + sin[:, :, 0])], 1)  # (B, 2M, D)
        ay = a[..., None] * e
        Y = torch.cat([ay * cos[:, :, 1], -ay * sin[:, :, 1]], 1)
        ctx.save_for_backward(X, Y, cos, sin, a, e, k)
        return torch.bmm(Y.transpose(1, 2), X)  # [ky, kx]

    @staticmethod
    def backward(ctx, grad: Tensor):
        X, Y, cos, sin, a, e, k = ctx.saved_tensors
        M = a.shape[1]
        gX, gY = torch.bmm(Y, grad), torch.bmm(X, grad.transpose(1, 2))  # (B, 2M, D) over kx, over ky
        x1, x2, y1, y2 = X[:, :M], X[:, M:], Y[:, :M], Y[:, M:]
        gx1, gx2, gy1, gy2 = gX[:, :M], gX[:, M:], gY[:, :M], gY[:, M:]
        dk = -2 * math.pi * k
        g_q = torch.stack([((gx2 * x1 - gx1 * x2) * dk).sum(-1), ((gy1 * y2 - gy2 * y1) * dk).sum(-1)], -1)
        g_ay = gy1 * cos[:, :, 1] - gy2 * sin[:, :, 1]  # d/d(a e) of the y factors
        g_a = (g_ay * e).sum(-1)
        g_e = gx1 * (cos[:, :, 0] - sin[:, :, 0]) + gx2 * (cos[:, :, 0] + sin[:, :, 0]) + g_ay * a[..., None]
        if e.shape[0] == 1:
            g_e = g_e.sum(0, keepdim=True)
        return g_q, g_a, g_e, None


def bead_volume(
    centers: Float[Tensor, "M 3"], masses: Float[Tensor, " M"], sigmas: Float[Tensor, " M"], D: int
) -> Float[Tensor, "D D D"]:
    """The bead map sampled at the voxels (D, D, D) [z, y, x] (see module docstring): each bead is
    evaluated separably in the cube of voxels within 4σ of its centre (beyond, its density is below
    4e-4 of its peak; the cube is at most the box), in chunks of beads of at most ``_CUBE_VOXELS``
    voxels in all; voxels outside the box are dropped. Differentiable in every input."""
    D = check_box_size(D)
    _check_beads(centers, masses, sigmas)
    radius = min(math.ceil(4 * float(sigmas.detach().max())), D // 2)
    offsets = torch.arange(-radius, radius + 1, device=centers.device)  # (K,)
    chunk = max(1, _CUBE_VOXELS // len(offsets) ** 3)
    flat = torch.zeros(D**3, device=centers.device, dtype=torch.result_type(centers, masses))
    for first in range(0, len(centers), chunk):
        part = slice(first, first + chunk)
        flat = flat.index_add(0, *_bead_cubes(centers[part], masses[part], sigmas[part], offsets, D))
    return flat.reshape(D, D, D)


_CUBE_VOXELS = 1 << 24  # voxels of bead cubes evaluated at once by bead_volume


def _bead_cubes(centers: Tensor, masses: Tensor, sigmas: Tensor, offsets: Tensor, D: int) -> tuple[Tensor, Tensor]:
    """(flat voxel indices, values) of the beads' cubes of side len(offsets), for index_add."""
    u = centers + D // 2  # (M, 3) fractional voxel index (x, y, z)
    vox = torch.round(u.detach()).long()[:, :, None] + offsets  # (M, 3, K)
    inside = (vox >= 0) & (vox < D)
    g = torch.exp(-((vox - u[:, :, None]) ** 2) / (2 * sigmas[:, None, None] ** 2)) * inside  # (M, 3, K)
    peak = masses / (2 * math.pi * sigmas**2) ** 1.5  # (M,)
    gx, gy, gz = g.unbind(1)
    values = (peak[:, None, None, None] * gz[:, :, None, None] * gy[:, None, :, None]) * gx[:, None, None, :]
    p = vox.clamp(0, D - 1)
    index = (p[:, 2, :, None, None] * D + p[:, 1, None, :, None]) * D + p[:, 0, None, None, :]  # (M, K, K, K)
    return index.reshape(-1), values.reshape(-1)

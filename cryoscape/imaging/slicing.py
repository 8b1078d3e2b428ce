"""Central slices of centred 3D transforms (Fourier slice theorem), their adjoint, and real-space
projection.

Conventions: volumes are (D, D, D) indexed [z, y, x], images (B, D, D) indexed [y, x], origin at
index D//2 on every axis; coordinates are (x, y, z). Rotations R (B, 3, 3) are pose matrices
(RELION's Euler matrix): the slice of image b samples the volume's centred transform at
R_bᵀ (kx, ky, 0), with k in pixel units from the centre (index - D//2); the projection is
p_b(x, y) = Σ_z V(R_bᵀ (x, y, z)). Hence ``ifft2_center(extract_central_slices(fft3_center(V), R))``
approximates ``project_real_space(V, R)`` (up to interpolation error).

Interpolation is trilinear; neighbours outside the box count as zero, and slice pixels farther than
D/2 from the origin are zero. Work is done in chunks of images to bound memory (about 30 bytes per
slice pixel and corner).

Timings (2 CPU cores, float32, D = 128, 1,000 slices): extract ~1.6 s, insert ~2.4 s, i.e. about
40 s to backproject 10,000 images.
"""

from __future__ import annotations

import torch

from cryoscape.errors import InputError
from cryoscape.imaging._checks import check_box_size, check_rotations, check_square

_CHUNK_POINTS = 200_000  # slice points (x 8 corners) handled at once


def _slice_lattice(D: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat [y, x] indices (M,) of pixels within radius D/2 of the origin and their (M, 3) coords (x, y, 0)."""
    a = torch.arange(D, device=device) - D // 2
    y, x = torch.meshgrid(a, a, indexing="ij")
    inside = (x ** 2 + y ** 2 <= (D // 2) ** 2).reshape(-1)
    flat = torch.nonzero(inside).squeeze(1)
    coords = torch.stack([x.reshape(-1)[flat], y.reshape(-1)[flat], torch.zeros_like(flat)], -1)
    return flat, coords.to(dtype)


def _padded(volume: torch.Tensor) -> torch.Tensor:
    """Flattened copy of a (D, D, D) volume zero-padded to (D+2)³ on the high side of each axis."""
    D = volume.shape[-1]
    out = volume.new_zeros(D + 2, D + 2, D + 2)
    out[:D, :D, :D] = volume
    return out.reshape(-1)


def _trilinear(points: torch.Tensor, D: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Corner indices and weights for trilinear interpolation in a D³ box padded to (D+2)³.

    points (..., 3) (x, y, z) in voxels from the origin -> (idx (..., 8) long into the flattened
    padded [z, y, x] volume (see :func:`_padded`), w (..., 8) weights). Points outside the box are
    moved to the padding corner, so every corner they touch holds zero.
    """
    S = D + 2
    u = points + D // 2
    outside = ((u < 0) | (u > D)).any(-1, keepdim=True)
    u = torch.where(outside, float(D), u)
    lo = torch.floor(u)
    t = u - lo
    lo = lo.long()
    base = lo[..., 2] * (S * S) + lo[..., 1] * S + lo[..., 0]
    offsets = torch.tensor([dz * S * S + dy * S + dx for dz in (0, 1) for dy in (0, 1) for dx in (0, 1)],
                           device=points.device)
    tx, ty, tz = t.unbind(-1)
    wx = torch.stack([1 - tx, tx], -1)
    wy = torch.stack([1 - ty, ty], -1)
    wz = torch.stack([1 - tz, tz], -1)
    w = (wz[..., :, None, None] * wy[..., None, :, None] * wx[..., None, None, :]).reshape(base.shape + (8,))
    return base[..., None] + offsets, w


def _chunks(B: int, M: int):
    step = max(1, _CHUNK_POINTS // max(M, 1))
    return range(0, B, step), step


def extract_central_slices(volume_ft: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Central slices (B, D, D) of a centred transform (D, D, D) (complex or real, e.g. Hartley).

    Slice b at pixel (kx, ky) is the trilinear interpolation of ``volume_ft`` at R_bᵀ (kx, ky, 0)
    (pixel units from the origin); zero where |k| > D/2. Output dtype = volume dtype.
    """
    D = check_square(volume_ft, 3, "volume_ft")
    if volume_ft.ndim != 3:
        raise InputError(f"volume_ft must be (D, D, D), got {tuple(volume_ft.shape)}")
    check_rotations(rotations)
    real_dtype = volume_ft.real.dtype if volume_ft.is_complex() else volume_ft.dtype
    flat, coords = _slice_lattice(D, volume_ft.device, real_dtype)
    R = rotations.to(device=volume_ft.device, dtype=real_dtype)
    vol = _padded(volume_ft)
    B = R.shape[0]
    out = volume_ft.new_zeros(B, D * D)
    starts, step = _chunks(B, coords.shape[0])
    for s in starts:
        idx, w = _trilinear(torch.matmul(coords, R[s:s + step]), D)
        out[s:s + step, flat] = (vol[idx] * w).sum(-1)
    return out.reshape(B, D, D)


def insert_central_slices(slices: torch.Tensor, rotations: torch.Tensor, D: int,
                          weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Backproject slices (B, D, D) into a centred D³ transform: the adjoint of extraction.

    Each slice pixel within radius D/2 is scatter-added at R_bᵀ (kx, ky, 0) with trilinear weights.
    Returns ``data_acc`` (D, D, D) (dtype of ``slices``; exactly the adjoint of
    :func:`extract_central_slices` applied to ``slices``) and ``weight_acc`` (D, D, D) real, the same
    scatter of ``weights`` (B, D, D) (e.g. CTF²), or of ones when ``weights`` is None.
    """
    D = check_box_size(D)
    if check_square(slices, 2, "slices") != D or slices.ndim != 3:
        raise InputError(f"slices must be (B, {D}, {D}), got {tuple(slices.shape)}")
    check_rotations(rotations)
    if rotations.shape[0] != slices.shape[0]:
        raise InputError(f"{slices.shape[0]} slices but {rotations.shape[0]} rotations")
    if weights is not None and weights.shape != slices.shape:
        raise InputError(f"weights {tuple(weights.shape)} must match slices {tuple(slices.shape)}")
    real_dtype = slices.real.dtype if slices.is_complex() else slices.dtype
    flat, coords = _slice_lattice(D, slices.device, real_dtype)
    R = rotations.to(device=slices.device, dtype=real_dtype)
    data = slices.reshape(slices.shape[0], -1)[:, flat]
    data = torch.view_as_real(data) if slices.is_complex() else data[..., None]
    wts = None if weights is None else weights.reshape(weights.shape[0], -1)[:, flat].to(real_dtype)
    n_padded = (D + 2) ** 3
    data_acc = torch.zeros(n_padded, data.shape[-1], dtype=real_dtype, device=slices.device)
    weight_acc = torch.zeros(n_padded, dtype=real_dtype, device=slices.device)
    starts, step = _chunks(slices.shape[0], coords.shape[0])
    for s in starts:
        idx, w = _trilinear(torch.matmul(coords, R[s:s + step]), D)
        idx = idx.reshape(-1)
        data_acc.index_add_(0, idx, (data[s:s + step, :, None, :] * w[..., None]).reshape(-1, data.shape[-1]))
        weight_acc.index_add_(0, idx, (w if wts is None else wts[s:s + step, :, None] * w).reshape(-1))
    data_acc = data_acc.reshape(D + 2, D + 2, D + 2, -1)[:D, :D, :D]
    data_acc = torch.view_as_complex(data_acc.contiguous()) if slices.is_complex() else data_acc[..., 0]
    return data_acc.contiguous(), weight_acc.reshape(D + 2, D + 2, D + 2)[:D, :D, :D].contiguous()


def project_real_space(volume: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Projections (B, D, D) of a real volume (D, D, D): p_b(x, y) = Σ_z V(R_bᵀ (x, y, z)).

    V is sampled by trilinear interpolation (zero outside the box) at every voxel (x, y, z) of the
    box, in voxels from the origin. A slow, direct reference for tests (B·D³ samples).
    """
    D = check_square(volume, 3, "volume")
    if volume.ndim != 3 or volume.is_complex():
        raise InputError(f"volume must be a real (D, D, D) tensor, got {tuple(volume.shape)}")
    check_rotations(rotations)
    a = torch.arange(D, device=volume.device, dtype=volume.dtype) - D // 2
    z, y, x = torch.meshgrid(a, a, a, indexing="ij")
    coords = torch.stack([x, y, z], -1).reshape(-1, 3)  # ordered [z, y, x] -> summing dim 0 is Σ_z
    R = rotations.to(device=volume.device, dtype=volume.dtype)
    vol = _padded(volume)
    B = R.shape[0]
    out = volume.new_zeros(B, D, D)
    for b in range(B):
        idx, w = _trilinear(coords @ R[b], D)
        out[b] = (vol[idx] * w).sum(-1).reshape(D, D, D).sum(0)
    return out

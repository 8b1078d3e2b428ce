"""Local pose refinement below the search grid's spacing: coordinate descent on SO(3) × R² around
each image's current pose, against a homogeneous model.

Each round scores, for every image, the rotations R·exp(δ) with δ ∈ {0} ∪ {±a·e_x, ±a·e_y,
±a·e_z} (7 rotations, ``a`` radians about the model's axes, applied on the right: the model is
read at (R·exp(δ))ᵀk) against translations t + {−b, 0, b}² pixels; the best pair becomes the next
centre. When the centre stays, ``a`` and ``b`` halve. The error is the search's
(:mod:`cryoscape.inference.pose_search`): −⟨translate(y, t), c·m_R⟩ + ½‖c·m_R‖² over the pixels
of radius < ``band``; translations are in pixels with the particle table's convention.
"""

from __future__ import annotations

import math

import torch

from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.imaging.rotations import axis_angle_to_matrix
from cryoscape.inference.pose_search import Render, _masked, _Pixels

_AXES = torch.cat([torch.zeros(1, 3), torch.eye(3), -torch.eye(3)])  # (7, 3): no turn, then ±x, ±y, ±z
_OFFSETS = torch.tensor([[x, y] for y in (-1.0, 0.0, 1.0) for x in (-1.0, 0.0, 1.0)])  # (9, 2), centre at 4


@torch.no_grad()
def refine_poses_locally(
    render: Render,
    images_ht: torch.Tensor,
    ctf: torch.Tensor | None,
    rotations: torch.Tensor,
    shifts_px: torch.Tensor,
    band: int,
    step_deg: float,
    step_px: float,
    rounds: int = 6,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine poses ``rotations`` (B, 3, 3) and ``shifts_px`` (B, 2) of images ``images_ht``
    (B, D, D) with CTFs (B, D, D) or None, starting with steps ``step_deg`` and ``step_px`` (about
    half the search grid's spacing). Returns (rotations (B, 3, 3), shifts (B, 2), error (B,)); no
    pose gets a higher error than it started with."""
    B, D, device = len(images_ht), images_ht.shape[-1], images_ht.device
    mask = fourier_disk_mask(D, device, band)
    pixels = _Pixels(images_ht.to(dtype), mask)
    c = _masked(ctf.to(dtype), mask) if ctf is not None else torch.ones(B, int(mask.sum()), device=device, dtype=dtype)
    R, t = rotations.to(device=device, dtype=torch.float64), shifts_px.to(device=device, dtype=torch.float64)
    a = torch.full((B,), math.radians(step_deg), device=device, dtype=torch.float64)
    b = torch.full((B,), float(step_px), device=device, dtype=torch.float64)
    axes, offsets = _AXES.to(device, torch.float64), _OFFSETS.to(device, torch.float64)
    error = torch.zeros(B, device=device, dtype=dtype)
    for _ in range(rounds + 1):
        turns = axis_angle_to_matrix(a[:, None, None] * axes)  # (B, 7, 3, 3)
        candidates = R[:, None] @ turns  # (B, 7, 3, 3)
        m = render(candidates.reshape(-1, 3, 3).to(dtype), mask).to(dtype).reshape(B, 7, -1)
        cm = c[:, None] * m  # (B, 7, P)
        trial = t[:, None] + b[:, None, None] * offsets  # (B, 9, 2)
        cos, sin = pixels.phases(trial)  # (B, 9, P)
        y = cos * pixels.y[:, None] + sin * pixels.y_flipped[:, None]  # (B, 9, P): translated images
        err = -torch.einsum("btp,brp->btr", y, cm) + 0.5 * (cm * cm).sum(-1)[:, None, :]  # (B, 9, 7)
        best = err.reshape(B, -1).argmin(dim=1)
        error = err.reshape(B, -1).gather(1, best[:, None])[:, 0]
        ti, ri = best // 7, best % 7
        stayed = (ti == 4) & (ri == 0)
        R = candidates[torch.arange(B), ri]
        t = trial[torch.arange(B), ti]
        a = torch.where(stayed, a / 2, a)
        b = torch.where(stayed, b / 2, b)
    return R.to(rotations.dtype), t.to(shifts_px.dtype), error

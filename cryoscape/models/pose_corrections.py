"""Per-particle local pose corrections, learned by gradient descent alongside a decoder
(cryoDRGN's --do-pose-sgd).

Particle i's pose becomes R_i' = exp([ω_i]×) · R_i (ω_i an axis-angle vector in radians, a rotation
in the image frame applied after the given one) and its centring shift s_i' = s_i + δ_i (pixels,
the convention of :mod:`cryoscape.imaging.shifts`). Both start at zero; their gradients are sparse
(only the particles of a batch), for ``torch.optim.SparseAdam``.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.imaging.rotations import axis_angle_to_matrix


class PoseCorrections(nn.Module):
    def __init__(self, n_particles: int):
        super().__init__()
        self.rotation = nn.Embedding(n_particles, 3, sparse=True)
        self.shift = nn.Embedding(n_particles, 2, sparse=True)
        nn.init.zeros_(self.rotation.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rotation corrections (B, 3, 3), shift corrections (B, 2) pixels) of particles ``index`` (B,)."""
        return axis_angle_to_matrix(self.rotation(index)), self.shift(index)

    @torch.no_grad()
    def corrected(self, rotations: torch.Tensor, shifts_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Corrected poses of all particles: rotations (N, 3, 3), shifts (N, 2) pixels."""
        return axis_angle_to_matrix(self.rotation.weight).to(
            rotations.dtype
        ) @ rotations, shifts_px + self.shift.weight.to(shifts_px.dtype)

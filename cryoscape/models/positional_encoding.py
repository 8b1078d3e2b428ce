"""Positional encodings of 3D frequency coordinates for neural fields (thesis §2.2; Tancik et al.).

Coordinates k are (x, y, z) in cycles/pixel, inside the sphere |k| ≤ 0.5 (the box has length 1).
Each encoding maps (..., 3) to (..., 6n) features [sin(ω·k), cos(ω·k)] with n frequencies per axis
(default D/2), so the input size of the decoder is 3·D for the default n:

- ``geom_ft`` (thesis eq 3.3): angular frequencies Dπ (2/D)^{i/(n−1)}, i = 0..n−1, per axis:
  wavelengths from 2/D (Nyquist) to 1 (the box).
- ``geom_lowf`` (for noisy data; all wavelengths of the above scaled by 2π): (D/2)(1/(D/2))^{i/(n−1)}.
- ``gaussian`` (cryoDRGN ≥ 1.0 default): 3n random directions B_j ~ N(0, σ² I₃), features at
  angle (D/2) B_j·k; B is drawn once from ``seed`` and stored with the model.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cryoscape.errors import InputError

KINDS = ("geom_ft", "geom_lowf", "gaussian")


class PositionalEncoding(nn.Module):
    """Fixed (untrained) sinusoidal features of (..., 3) coordinates -> (..., 6n)."""

    directions: torch.Tensor  # (3n, 3) angular frequency vectors

    def __init__(self, D: int, kind: str = "gaussian", n_freqs: int | None = None, sigma: float = 0.5, seed: int = 0):
        super().__init__()
        if kind not in KINDS:
            raise InputError(f"unknown positional encoding {kind!r}; choose one of {', '.join(KINDS)}")
        n = D // 2 if n_freqs is None else int(n_freqs)
        if n < 2:
            raise InputError(f"a positional encoding needs at least 2 frequencies, got {n}")
        self.kind, self.n_freqs = kind, n
        i = torch.arange(n, dtype=torch.float64) / (n - 1)
        if kind == "geom_ft":
            omega = D * math.pi * (2.0 / D) ** i
        elif kind == "geom_lowf":
            omega = (D / 2) * (1.0 / (D / 2)) ** i
        if kind == "gaussian":
            g = torch.Generator().manual_seed(seed)
            directions = torch.randn(3 * n, 3, generator=g, dtype=torch.float64) * sigma * (D / 2)
        else:  # axis-aligned: frequency ω_i along x, then y, then z
            directions = torch.zeros(3 * n, 3, dtype=torch.float64)
            for axis in range(3):
                directions[axis * n : (axis + 1) * n, axis] = omega
        self.register_buffer("directions", directions.float())  # (3n, 3) angular frequency vectors

    @property
    def out_dim(self) -> int:
        return 6 * self.n_freqs

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        angles = coords @ self.directions.T  # (..., 3n)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

"""Hartley central slices of one map at chosen pixels only: the renderer of pose search.

Pose search scores thousands of slices per image over a band-limited disk of pixels, so this
samples only those pixels, and only one of each pair ±k: for a real map F(−k) = F(k)*, so one
complex trilinear sample at Rᵀk gives both Hartley values H(k) = Re F − Im F and
H(−k) = Re F + Im F. Against :func:`cryoscape.imaging.slicing.extract_central_slices` on the same
prepared map, the values are the same (tested) at about a fifth of the time for a 31-px band of a
64² image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from cryoscape.errors import InputError
from cryoscape.imaging.forward import prepare_volume
from cryoscape.imaging.grids import frequency_grid_2d

_CHUNK_POINTS = 2_000_000  # sample points per grid_sample call


class HartleySlicer:
    """``slicer(rotations (N, 3, 3), mask (D, D) bool) -> (N, P)``: the centred Hartley slices of the
    real map ``volume`` (D, D, D) [z, y, x] at the P pixels of ``mask`` (row-major order, the order
    of ``images[..., mask]``), for pose matrices R (the slice samples the transform at Rᵀ(kx, ky, 0)).
    ``mask`` must be symmetric under k → −k (a disk of radius < D/2, as the search uses)."""

    def __init__(self, volume: Float[Tensor, "D D D"], oversample: int = 2):
        prepared = prepare_volume(volume.float(), oversample)
        self.D, self.oversample = prepared.D, oversample
        # (1, 2, N, N, N): real and imaginary parts as channels
        self.channels = torch.view_as_real(prepared.volume_ft).permute(3, 0, 1, 2)[None].contiguous()
        self._layouts: dict[bytes, tuple[Tensor, Tensor, Tensor]] = {}

    def _layout(self, mask: Bool[Tensor, "D D"]) -> tuple[Tensor, Tensor, Tensor]:
        """(points (H, 3) oversampled voxels of the half-plane pixels, position in the mask's order of
        each k (H,), and of each −k (H,))."""
        key = mask.cpu().numpy().tobytes()
        if key not in self._layouts:
            D = self.D
            k = (frequency_grid_2d(D, mask.device, torch.float64)[mask] * D).round().long()  # (P, 2) (kx, ky) px
            first = (k[:, 1] > 0) | ((k[:, 1] == 0) & (k[:, 0] >= 0))
            position = torch.full((D, D), -1, dtype=torch.long, device=mask.device)
            position[k[:, 1] + D // 2, k[:, 0] + D // 2] = torch.arange(len(k), device=mask.device)
            half = k[first]
            mirror = position[(D // 2 - half[:, 1]) % D, (D // 2 - half[:, 0]) % D]
            if bool((mirror < 0).any()):
                raise InputError("a slicing mask must contain −k for every pixel k")
            points = torch.cat([half, torch.zeros_like(half[:, :1])], dim=1).to(torch.float32) * self.oversample
            self._layouts[key] = (points, torch.nonzero(first)[:, 0], mirror)
        return self._layouts[key]

    def __call__(self, rotations: Float[Tensor, "N 3 3"], mask: Bool[Tensor, "D D"]) -> Float[Tensor, "N P"]:
        points, at_k, at_minus_k = self._layout(mask)
        N, H = len(rotations), len(points)
        R = rotations.to(torch.float32).to(self.channels.device)
        size = self.channels.shape[-1]
        scale = 2.0 / (size - 1)
        out = torch.empty(N, int(mask.sum()), device=self.channels.device)
        step = max(1, _CHUNK_POINTS // max(H, 1))
        for s in range(0, N, step):
            xyz = torch.matmul(points, R[s : s + step])  # (n, H, 3): rows of Rᵀ applied to k, i.e. kᵀR
            grid = ((xyz + size // 2) * scale - 1.0)[:, :, None, None]  # (n, H, 1, 1, 3)
            sampled = F.grid_sample(
                self.channels.expand(len(grid), -1, -1, -1, -1), grid, align_corners=True, padding_mode="zeros"
            )[..., 0, 0]  # (n, 2, H)
            re, im = sampled[:, 0], sampled[:, 1]
            out[s : s + step, at_k] = re - im
            out[s : s + step, at_minus_k] = re + im
        return out

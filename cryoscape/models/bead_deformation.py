"""How a per-particle latent z moves the beads: ``--deform free|segments|residues``.

- ``free`` (e2gmm): a decoder MLP gives every bead its own offset (M, 3) pixels.
- ``residues`` (cryofold): the same per-bead offsets, held by restraints on the decoded models
  (:mod:`cryoscape.models.bead_restraints`): bonds and bond angles keep their start values, no two
  beads clash.
- ``segments`` (cryoSPHERE): S rigid segments, soft memberships from a Gaussian mixture over the
  bead (residue) index, w_js = softmax_s[(log π_s − (j/M − μ_s)² / 2 s_s²) / T] with temperature T
  = 0.05; the decoder gives each segment an axis-angle rotation (radians) and a translation
  (pixels); bead j moves to Σ_s w_js [R_s (p_j − c_s) + c_s + t_s], c_s the segment's weighted
  centroid. Segment means start evenly spaced along the chain.

Every decoder's last layer starts at zero, so an untrained model decodes the start model exactly.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn

from cryoscape.imaging.rotations import axis_angle_to_matrix
from cryoscape.models.mlp import ResidualMLP

DEFORMATIONS = ("free", "segments", "residues")
SEGMENT_TEMPERATURE = 0.05


class BeadDeformation(nn.Module):
    """z (B, zdim) -> bead centres (B, M, 3) pixels, from ``start`` (M, 3)."""

    start: torch.Tensor

    def __init__(self, start: Tensor, zdim: int, kind: str, width: int, depth: int, n_segments: int):
        super().__init__()
        self.kind, self.n_segments = kind, n_segments
        self.register_buffer("start", start.float())
        M = start.shape[0]
        out = 6 * n_segments if kind == "segments" else 3 * M
        self.decoder = ResidualMLP(zdim, width, depth, out)
        last = self.decoder.body[-1]
        assert isinstance(last, nn.Linear)  # out ≠ width: the last layer is a plain Linear
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if kind == "segments":
            self.segment_mean = nn.Parameter((torch.arange(n_segments) + 0.5) / n_segments)
            self.segment_log_std = nn.Parameter(torch.full((n_segments,), math.log(0.5 / n_segments)))
            self.segment_logit = nn.Parameter(torch.zeros(n_segments))

    def memberships(self) -> Float[Tensor, "M S"]:
        """Soft segment memberships (M, S) of the beads (rows sum to 1)."""
        M = self.start.shape[0]
        j = (torch.arange(M, device=self.start.device, dtype=torch.float32) + 0.5) / M
        var = (2 * self.segment_log_std).exp()
        log_w = torch.log_softmax(self.segment_logit, 0) - (j[:, None] - self.segment_mean) ** 2 / (2 * var)
        return torch.softmax(log_w / SEGMENT_TEMPERATURE, dim=1)

    def forward(self, z: Float[Tensor, "B Z"]) -> Float[Tensor, "B M 3"]:
        return self.move_points(z, self.start, torch.arange(self.start.shape[0], device=self.start.device))

    def move_points(
        self, z: Float[Tensor, "B Z"], points: Float[Tensor, "P 3"], bead_of: Tensor
    ) -> Float[Tensor, "B P 3"]:
        """Points (P, 3) pixels that belong to beads ``bead_of`` (P,) (e.g. the atoms of each
        residue), moved as their beads are for latents ``z``: by the bead's offset (free, residues),
        or by the bead's blend of segment motions (segments), rotations included. Computed in
        float32 also under autocast: the network is small, and positions need float32's precision."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            if self.kind != "segments":
                return points + self.decoder(z).reshape(len(z), -1, 3)[:, bead_of]
            R, t = self.segment_motions(z)
            w = self.memberships()  # (M, S)
            centroid = (w.T @ self.start) / w.sum(0)[:, None]  # (S, 3): what each segment turns about
            # Σ_s w_s [R_s (p − c_s) + c_s + t_s] = (Σ_s w_s R_s) p + Σ_s w_s (c_s + t_s − R_s c_s)
            offset = centroid + t - torch.einsum("bsij,sj->bsi", R, centroid)  # (B, S, 3)
            w = w[bead_of]  # (P, S)
            blend = torch.matmul(w, R.reshape(len(z), self.n_segments, 9)).reshape(len(z), -1, 3, 3)
            return torch.einsum("bpij,pj->bpi", blend, points) + torch.matmul(w, offset)

    def segment_motions(self, z: Float[Tensor, "B Z"]) -> tuple[Float[Tensor, "B S 3 3"], Float[Tensor, "B S 3"]]:
        """Each segment's rigid motion for latents ``z``: rotations R (about its centroid) and
        translations t (pixels); a point p of segment s moves to R (p − c_s) + c_s + t."""
        out = self.decoder(z.float()).float().reshape(len(z), self.n_segments, 6)
        R = axis_angle_to_matrix(out[..., :3].reshape(-1, 3)).reshape(len(z), self.n_segments, 3, 3)
        return R, out[..., 3:]

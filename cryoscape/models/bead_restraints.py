"""Restraints on decoded bead models (cryoSPHERE's continuity and clash terms, cryofold's bonds and
angles).

- bond: mean over bonded pairs (consecutive residues) of (|p_i − p_j| − d0_ij)², d0 the start
  length, in Å².
- angle: mean over pairs of bonds that share a bead (i–j–k) of (|p_i − p_k| − d0_ik)², in Å²: the
  angle at j held through its 1–3 distance (with the bonds held, the one fixes the other), which
  keeps the term in Å² like the others and needs no arc-cosine (whose gradient diverges at 0°
  and 180°). Only where asked (``angles``): train-gmm holds angles in ``residues`` (cryofold's)
  and not in ``segments`` (cryoSPHERE's), where on a synthetic hinge they moved the break found
  from residue 120 to 99-101 (tests/cli/test_gmm_hinge.py), though on adenylate kinase they
  lowered the Cα RMSD from 1.57 to 1.39 Å (6 epochs, measured once beside benchmarks/gmm.py).
- clash: mean over candidate pairs of relu(d_min − |p_i − p_j|)², in Å², d_min = ``clash_A`` (4 Å,
  cryoSPHERE's); candidate pairs are the non-bonded pairs closer than ``clash_A`` + 8 Å in the start
  model (computed once, so the cost is O(pairs), not O(M²), per image). A pair that already starts
  closer than ``clash_A`` is held at its start distance instead.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

NEIGHBOUR_MARGIN_A = 8.0


class BeadRestraints(nn.Module):
    """Restraint terms (Å²) of bead centres (B, M, 3) in pixels of ``apix`` Å."""

    bonds: torch.Tensor
    bond_length: torch.Tensor
    angles: torch.Tensor
    angle_span: torch.Tensor
    pairs: torch.Tensor
    pair_floor: torch.Tensor

    def __init__(self, start: Tensor, bonds: Tensor, apix: float, clash_A: float = 4.0, angles: bool = True):
        super().__init__()
        self.apix = apix
        start_A = start.double() * apix
        bonds = bonds.long().reshape(-1, 2)
        self.register_buffer("bonds", bonds, persistent=False)
        length = (start_A[bonds[:, 0]] - start_A[bonds[:, 1]]).norm(dim=1)
        self.register_buffer("bond_length", length.float(), persistent=False)
        M = start.shape[0]
        ends = _bond_angles(bonds, M) if angles else torch.zeros(0, 2, dtype=torch.long)
        self.register_buffer("angles", ends, persistent=False)
        span = (start_A[ends[:, 0]] - start_A[ends[:, 1]]).norm(dim=1)
        self.register_buffer("angle_span", span.float(), persistent=False)
        i, j = torch.triu_indices(M, M, offset=1)
        d = (start_A[i] - start_A[j]).norm(dim=1)
        bonded = torch.zeros(M, M, dtype=torch.bool)
        bonded[bonds[:, 0], bonds[:, 1]] = True
        bonded[bonds[:, 1], bonds[:, 0]] = True
        near = (d < clash_A + NEIGHBOUR_MARGIN_A) & ~bonded[i, j]
        self.register_buffer("pairs", torch.stack([i[near], j[near]], 1), persistent=False)
        self.register_buffer("pair_floor", d[near].clamp(max=clash_A).float(), persistent=False)

    def forward(self, centers: Float[Tensor, "B M 3"]) -> dict[str, Tensor]:
        p = centers.float() * self.apix
        terms = {}
        if len(self.bonds):
            length = (p[:, self.bonds[:, 0]] - p[:, self.bonds[:, 1]]).norm(dim=-1)
            terms["bond"] = ((length - self.bond_length) ** 2).mean()
        if len(self.angles):
            span = (p[:, self.angles[:, 0]] - p[:, self.angles[:, 1]]).norm(dim=-1)
            terms["angle"] = ((span - self.angle_span) ** 2).mean()
        if len(self.pairs):
            d = (p[:, self.pairs[:, 0]] - p[:, self.pairs[:, 1]]).norm(dim=-1)
            terms["clash"] = torch.relu(self.pair_floor - d).square().mean()
        return terms


def _bond_angles(bonds: Tensor, M: int) -> Tensor:
    """(T, 2) the end beads (i, k), i < k, of every pair of bonds i–j, j–k that share a bead j."""
    neighbours: list[set[int]] = [set() for _ in range(M)]
    for a, b in bonds.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    ends = {(min(i, k), max(i, k)) for n in neighbours for i in n for k in n if i != k}
    return torch.tensor(sorted(ends), dtype=torch.long).reshape(-1, 2)

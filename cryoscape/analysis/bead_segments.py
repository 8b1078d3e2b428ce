"""RUN/segments.json of a segments run (train-gmm --deform segments): the residues of each rigid
segment and how each segment moves along each principal direction of the particles' latents.

Residues: each one belongs to the segment of its largest membership; ranges are runs of
consecutive residues of one chain in one segment, {"chain", "first", "last"} with the start model's
chain IDs and residue numbers (chain "" and 1-based bead numbers where the model file is gone). Motions: for principal component k of z, the latents
z± = mean ± 2·std_k·v_k (the spread of the data along it); each segment's rotation between them
(degrees, about its centroid; the axis in the start model file's frame) and the shift of its
centroid (Å). Segments that hold no residue are left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from cryoscape.analysis.latent import latent_pca
from cryoscape.imaging.rotations import matrix_to_axis_angle
from cryoscape.inference.run_config import RunConfig
from cryoscape.io.atomic_model import read_atomic_model
from cryoscape.io.staging import staged_file
from cryoscape.models.contract import VolumeModel


def residue_ids(config: RunConfig, n_beads: int) -> tuple[np.ndarray, np.ndarray]:
    """(chain IDs, residue numbers) (n_beads,) of the beads' residues in the run's start model; a
    chain "" and 1-based bead numbers where the model file is gone."""
    path = Path(getattr(config.model, "init_model", "") or "")
    if not path.is_file():
        return np.full(n_beads, "", dtype=object), np.arange(1, n_beads + 1)
    atoms = read_atomic_model(path)[0]
    first = np.unique(atoms.residue_index, return_index=True)[1]
    return atoms.chain_ids[first], atoms.residue_numbers[first]


def residue_runs(owner: np.ndarray, chains: np.ndarray) -> list[tuple[int, int, int]]:
    """(segment, first, last) bead indices of each run of consecutive beads of one chain in one segment."""
    change = (owner[1:] != owner[:-1]) | (chains[1:] != chains[:-1])
    starts = np.flatnonzero(np.r_[True, change])
    ends = np.r_[starts[1:] - 1, len(owner) - 1]
    return [(int(owner[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def segment_summary(model: VolumeModel, config: RunConfig, z: np.ndarray) -> dict:
    """The contents of segments.json for a trained segments model and its particles' latents ``z``
    (N, zdim)."""
    deformation = model.deformation
    with torch.no_grad():
        owner = deformation.memberships().argmax(1).cpu().numpy()  # type: ignore[operator,union-attr]
    chains, numbers = residue_ids(config, len(owner))
    runs = residue_runs(owner, chains)
    kept = sorted({s for s, _, _ in runs})
    segments = [
        {
            "segment": s,
            "residues": int((owner == s).sum()),
            "ranges": [
                {"chain": str(chains[a]), "first": int(numbers[a]), "last": int(numbers[b])}
                for t, a, b in runs
                if t == s
            ],
        }
        for s in kept
    ]
    start = config.model.start()  # type: ignore[attr-defined]
    to_file = np.eye(3) if start.frame is None else (np.asarray(start.frame)[:, :3] * start.apix).T
    pca = latent_pca(z)
    directions = []
    for k in range(len(pca.explained)):
        spread = 2 * float(pca.coords[:, k].std())
        ends = pca.mean + np.outer([-spread, spread], pca.components[k])
        with torch.no_grad():
            R, t = deformation.segment_motions(torch.as_tensor(ends, dtype=torch.float32))  # type: ignore[operator,union-attr]
        turn = matrix_to_axis_angle(R[1] @ R[0].transpose(-1, -2)).double().numpy()  # (S, 3) radians
        angle = np.linalg.norm(turn, axis=1)
        axis = (turn / np.maximum(angle, 1e-12)[:, None]) @ to_file.T
        shift = np.linalg.norm((t[1] - t[0]).double().numpy(), axis=1) * start.apix
        directions.append(
            {
                "pc": k + 1,
                "explained_variance": round(float(pca.explained[k]), 4),
                "z_from": ends[0].round(4).tolist(),
                "z_to": ends[1].round(4).tolist(),
                "segments": [
                    {
                        "segment": s,
                        "rotation_deg": round(float(np.degrees(angle[s])), 2),
                        "axis": axis[s].round(3).tolist(),
                        "centroid_shift_A": round(float(shift[s]), 2),
                    }
                    for s in kept
                ],
            }
        )
    return {"n_segments": len(kept), "segments": segments, "directions": directions}


def write_segments_json(model: VolumeModel, config: RunConfig, z: np.ndarray, path: Path) -> dict:
    """Write :func:`segment_summary` to ``path`` (staged, replacing it); return it."""
    summary = segment_summary(model, config, z)
    with staged_file(path, force=True) as staged:
        Path(staged).write_text(json.dumps(summary, indent=1))
    return summary

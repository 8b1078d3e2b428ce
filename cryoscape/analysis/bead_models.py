"""Atomic models of a bead run (train-gmm --init-model) at latent values: the input model's atoms
moved as their residues' beads are (eval-vol's model_000.pdb, trajectory's multi-model PDB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cryoscape.errors import InputError
from cryoscape.inference.run_config import RunConfig
from cryoscape.io.atomic_model import read_atomic_model, write_moved_models
from cryoscape.io.staging import staged_file
from cryoscape.models.contract import VolumeModel


def has_atomic_model(config: RunConfig) -> bool:
    """Whether the run is a bead model started from an atomic model."""
    return bool(getattr(config.model, "init_model", ""))


def moved_coordinates(model: VolumeModel, config: RunConfig, z: np.ndarray) -> list[np.ndarray]:
    """The input model's atom coordinates (N, 3) Å, in its file's frame, moved for each latent
    ``z`` (n, zdim); InputError when the model file is gone."""
    template = Path(config.model.init_model)  # type: ignore[attr-defined]
    if not template.exists():
        raise InputError(f"the run's start model {template} is gone: cannot write moved atomic models")
    atoms = read_atomic_model(template)[0]
    start = config.model.start()  # type: ignore[attr-defined]
    device = next(model.parameters()).device
    points = torch.as_tensor(start.to_pixels(atoms.coords_A), dtype=torch.float32, device=device)
    bead_of = torch.as_tensor(atoms.residue_index, device=device)
    latents = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(len(z), -1), device=device)
    with torch.no_grad():
        moved = model.deformation.move_points(latents, points, bead_of)  # type: ignore[operator,union-attr]
    return [start.from_pixels(m.double().cpu().numpy()) for m in moved]


def write_atomic_models(
    model: VolumeModel, config: RunConfig, z: np.ndarray, outdir: Path, force: bool = False
) -> list[Path]:
    """DIR/model_000.pdb, ... one per latent value (the order of the maps vol_000.mrc, ...), staged."""
    paths = []
    for i, coords in enumerate(moved_coordinates(model, config, z)):
        path = Path(outdir) / f"model_{i:03d}.pdb"
        with staged_file(path, force=force) as staged:
            write_moved_models(config.model.init_model, [coords], staged)  # type: ignore[attr-defined]
        paths.append(path)
    return paths


def write_trajectory_model(
    model: VolumeModel, config: RunConfig, z: np.ndarray, path: Path, force: bool = False
) -> None:
    """One multi-model PDB: MODEL i is the input model moved for latent ``z[i]`` (a path's frames)."""
    with staged_file(path, force=force) as staged:
        write_moved_models(config.model.init_model, moved_coordinates(model, config, z), staged)  # type: ignore[attr-defined]

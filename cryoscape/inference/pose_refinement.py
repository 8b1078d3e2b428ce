"""Local pose refinement as an engine hook: per-particle corrections learned by SparseAdam
alongside any volume model (cryoDRGN's --do-pose-sgd), from epoch 2 on (the first epoch forms the
map with the given poses).

A hook's interface (what :mod:`cryoscape.inference.engine` calls; pose search plugs in the same
way): ``adjust(batch, epoch)`` returns the batch the model sees, ``zero_grad``/``step`` run beside
the model's optimizer, ``end_epoch(run, epoch, table)`` writes its per-epoch files and returns
their names and the particle table as the hook leaves it (for the per-particle outputs), ``state_dict``/``load_state_dict`` go into the checkpoint.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cryoscape.data.particle_io import save_star
from cryoscape.data.particles import ParticleTable
from cryoscape.imaging.shifts import translate_ht
from cryoscape.models.contract import ImageBatch
from cryoscape.models.pose_corrections import PoseCorrections


class PoseRefinement:
    """Rotation steps ``lr`` radians, shift steps ``lr`` · D/3 pixels (a rotation by θ moves the
    particle's edge by about θ·D/3 px)."""

    def __init__(self, n_particles: int, D: int, lr: float, device: torch.device):
        self.poses = PoseCorrections(n_particles).to(device)
        self.optimizer = torch.optim.SparseAdam(
            [
                {"params": self.poses.rotation.parameters(), "lr": lr},
                {"params": self.poses.shift.parameters(), "lr": lr * D / 3},
            ]
        )
        self.active = False

    def adjust(self, batch: ImageBatch, epoch: int) -> ImageBatch:
        self.active = epoch > 1
        if not self.active:
            return batch
        delta_rotation, delta_shift = self.poses(batch.index.to(batch.images_ht.device))
        return replace(
            batch, rotations=delta_rotation @ batch.rotations, images_ht=translate_ht(batch.images_ht, delta_shift)
        )

    def zero_grad(self) -> None:
        if self.active:
            self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        if self.active:
            self.optimizer.step()

    def end_epoch(self, run: Path, epoch: int, table: ParticleTable) -> tuple[list[str], ParticleTable]:
        refined = refined_table(table, self.poses)
        save_star(run / "refined_particles.star", refined, force=True)  # staged: replaced when complete
        return ["refined_particles.star"], refined

    def state_dict(self) -> dict:
        return {"poses": self.poses.state_dict(), "pose_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.poses.load_state_dict(state["poses"])
        self.optimizer.load_state_dict(state["pose_optimizer"])


def refined_table(table: ParticleTable, poses: PoseCorrections) -> ParticleTable:
    """``table`` with the learned pose corrections applied (rotations, shifts in Å)."""
    shifts_px = torch.from_numpy(table.shifts_px if table.shifts_A is not None else np.zeros((len(table), 2)))
    rotations, shifts_px = poses.corrected(torch.from_numpy(table.rotations).double(), shifts_px.double())
    apix = np.asarray(table.apix, dtype=np.float64)[:, None]
    return replace(table, rotations=rotations.cpu().numpy(), shifts_A=shifts_px.cpu().numpy() * apix)

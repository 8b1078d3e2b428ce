"""Trained runs as models: load any registered kind, decode its maps, compute its per-particle
outputs (for the engine after each epoch, for eval-images and for the analysis commands)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.inference.batches import make_batch
from cryoscape.inference.checkpoint import fitting, load_checkpoint
from cryoscape.inference.device import bfloat16_is_fast
from cryoscape.inference.run_config import RunConfig, read_run_config
from cryoscape.models.contract import VolumeModel


def autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast (no loss scaling needed) on CUDA or CPU when ``enabled``."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def load_model(run: str | Path, epoch: int | str = "latest") -> tuple[VolumeModel, RunConfig, int]:
    """(model in eval mode, config, epoch) of a run folder of any registered kind."""
    run = Path(run)
    config = read_run_config(run)
    epoch, state = load_checkpoint(run, epoch)
    with fitting(run, epoch):
        model = config.model.build(config.data.D, config.training.seed)
        model.load_state_dict(state["model"])
    return model.eval(), config, epoch


def generate_volume(model: VolumeModel, config: RunConfig, z: torch.Tensor | None = None) -> np.ndarray:
    """(D, D, D) map of latent ``z`` (zdim,) (None for a run without a latent) in the data's units
    (the training normalization undone), decoded in float32 also for runs trained in bfloat16 (the
    maps that eval-vol writes: on the VAE benchmark, float32 decoding of a bf16-trained run gives
    0.0005 more held-out FSC area than bf16 decoding)."""
    if config.zdim and z is None:
        raise InputError(f"this run is a {config.kind} run with a latent: give latent values")
    return (model.volume(z) * config.data.scale).cpu().numpy().astype(np.float32)


def generate_volumes(model: VolumeModel, config: RunConfig, z: np.ndarray, batch: int = 4):
    """Maps (D, D, D) float32 of the latents ``z`` (n, zdim), yielded in order; ``batch`` maps are
    decoded per pass (faster than one by one; memory grows with it). For the many maps of the
    analysis commands, runs trained with --amp are decoded in bfloat16 where it is native (2.5x
    faster than float32 on such CPUs, for 0.0005 less FSC area than :func:`generate_volume`)."""
    if not config.zdim:
        raise InputError(f"this {config.kind} run has no latent to generate maps from")
    z = np.asarray(z, dtype=np.float32).reshape(len(z), -1)
    if z.shape[1] != config.zdim:
        raise InputError(f"the run's latent dimension is {config.zdim}, the latents have {z.shape[1]} numbers")
    device = next(model.parameters()).device
    in_bf16 = config.training.amp and bfloat16_is_fast(device)
    for s in range(0, len(z), batch):
        with torch.no_grad(), autocast(device, in_bf16):
            maps = model.volumes(torch.from_numpy(z[s : s + batch]).to(device))
        yield from (maps * config.data.scale).cpu().numpy().astype(np.float32)


@torch.no_grad()
def all_particle_outputs(
    model: VolumeModel,
    loader: DataLoader,
    table: ParticleTable,
    config: RunConfig,
    device: torch.device,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """The model's per-particle outputs (name -> (n, width) float32, input order) of every particle,
    in evaluation mode and in float32 whatever the training precision (bfloat16 would round latents
    to about 3 significant digits, so that thousands of particles would share one value)."""
    dims = model.output_dims
    outputs = {name: np.zeros((len(table), width), dtype=np.float32) for name, width in dims.items()}
    if not dims:
        return outputs
    was_training = model.training
    model.eval()
    t = config.training
    for images, index in tqdm(loader, desc="encoding", unit="batch", disable=None if progress else True, leave=False):
        index = index.numpy()
        batch = make_batch(
            images, table, index, config.data.scale, invert=t.invert, use_ctf=t.use_ctf, window=t.window, device=device
        )
        for name, values in model.particle_outputs(batch).items():
            outputs[name][index] = values.float().cpu().numpy()
    model.train(was_training)
    return outputs

"""The one training engine: any registered volume model (:mod:`cryoscape.models.contract`) with
known poses, in one or several processes. It names no model kind.

Per batch: particle images prepared by :func:`cryoscape.inference.batches.make_batch`, adjusted by
the hooks (pose refinement; pose search will plug in the same way), the model's loss terms
(``model(batch, mask, generator)``, under bfloat16 autocast with ``amp``), one Adam step for the
model and one for each hook. The run stops at the first non-finite loss, before any step or
checkpoint. Batches come in an order fixed by (seed, epoch) and random draws from a generator
seeded by (seed, epoch, rank): a killed run resumed from its last checkpoint continues exactly as if
it had not stopped. Under torchrun every process takes its share of each batch (DDP averages the
gradients).

Run folder: ``config.json`` (:mod:`cryoscape.inference.run_config`), ``run.log``, ``weights.N.pt``
after every epoch (written last and atomically: it marks the epoch complete), ``log.csv`` and
``loss.png``, the model's per-particle outputs NAME.N.npy / NAME.npy (e.g. the VAE's ``z`` and
``z_var``, (n, zdim), input order), and the hooks' files (``refined_particles.star``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from cryoscape.data.images import ImageSource, ParticleBatchSampler, make_dataloader
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.inference.batches import hartley_scale, make_batch
from cryoscape.inference.checkpoint import available_epochs, load_checkpoint, save_checkpoint
from cryoscape.inference.distributed import ONE_PROCESS, ProcessGroup, all_reduce_sum, barrier
from cryoscape.inference.pose_refinement import PoseRefinement
from cryoscape.inference.run_config import (
    DataSummary,
    RunConfig,
    TrainingSettings,
    new_run_config,
    read_run_config,
    resumed_config,
)
from cryoscape.inference.run_models import all_particle_outputs, autocast
from cryoscape.inference.run_outputs import clear_previous_run, run_log, write_log, write_particle_outputs
from cryoscape.models.contract import VolumeModel
from cryoscape.models.registry import ModelSettings

log = logging.getLogger("cryoscape")


class TrainingError(InputError):
    """Training cannot go on (e.g. a non-finite loss); the checkpoints written so far are intact."""


@dataclass
class _RunState:
    config: RunConfig
    model: VolumeModel
    optimizer: torch.optim.Optimizer
    hooks: list = field(default_factory=list)
    epoch: int = 0
    rows: list = field(default_factory=list)


def _check(table: ParticleTable, model: ModelSettings, training: TrainingSettings) -> None:
    model.check()
    training.check()
    if len(table) == 0:
        raise InputError("no particles to train on")
    if table.rotations is None:
        raise InputError("training with known poses needs poses: the particle file has none (pass --poses)")
    if training.use_ctf and table.ctf is None:
        raise InputError("the particle file has no CTF parameters; pass --ctf, or --no-ctf for CTF-free data")


def _parts(config: RunConfig, n: int, device: torch.device, group: ProcessGroup):
    """The untrained model, its optimizer and the hooks of a config."""
    model = config.model.build(config.data.D, config.training.seed).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.training.lr, fused=True)
    hooks = []
    if config.training.refine_poses:
        if group.world_size > 1:
            raise InputError("pose refinement runs in one process; drop --refine-poses or run without torchrun")
        hooks.append(PoseRefinement(n, config.data.D, config.training.pose_lr, device))
    return model, optimizer, hooks


def _start(
    table: ParticleTable,
    source: ImageSource,
    model_settings: ModelSettings,
    training: TrainingSettings,
    origin: tuple[str, str, str],
    run: Path,
    resume: bool,
    device: torch.device,
    group: ProcessGroup,
) -> _RunState:
    """The state of a new or resumed run."""
    _check(table, model_settings, training)
    if resume and not available_epochs(run):
        log.info("%s holds no complete epoch yet: starting it afresh", run)
        resume = False
    if resume:
        config = resumed_config(read_run_config(run), model_settings, training)
        if config.data.n_particles != len(table):
            raise InputError(f"{run} was trained on {config.data.n_particles} particles, the input has {len(table)}")
        epoch, state = load_checkpoint(run, "latest")
        model, optimizer, hooks = _parts(config, len(table), device, group)
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            for hook in hooks:
                hook.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as err:
            raise InputError(
                f"checkpoint of epoch {epoch} in {run} does not fit its config.json: {str(err).splitlines()[0]}"
            ) from None
        if group.is_main:
            log.info("resuming %s from epoch %d", run, epoch)
        return _RunState(config, model, optimizer, hooks, epoch, list(state["log"]))
    scale = hartley_scale(source, table, invert=training.invert, seed=training.seed, window=training.window)
    data = DataSummary(
        D=table.box_size,
        apix=float(np.median(table.apix)),
        scale=scale,
        n_particles=len(table),
        particles=origin[0],
        ind=origin[1],
    )
    config = new_run_config(model_settings, training, data, origin[2])
    torch.manual_seed(training.seed)
    model, optimizer, hooks = _parts(config, len(table), device, group)
    if group.is_main:
        removed = clear_previous_run(run, list(model.output_dims))
        if removed:
            log.info(
                "starting afresh: removed %d file(s) of the previous run in %s (%s)",
                len(removed),
                run,
                ", ".join(removed[:6]) + (", ..." if len(removed) > 6 else ""),
            )
        (run / "config.json").write_text(config.to_json())
    return _RunState(config, model, optimizer, hooks)


def train(
    source: ImageSource,
    table: ParticleTable,
    model: ModelSettings,
    training: TrainingSettings,
    run: str | Path,
    *,
    files: tuple[str, str] = ("", ""),
    command: str = "",
    resume: bool = False,
    device: torch.device | str = "cpu",
    group: ProcessGroup = ONE_PROCESS,
    progress: bool = True,
) -> VolumeModel:
    """Train the model ``model`` describes; write the run folder (see module docstring). ``files``:
    the absolute paths of the particle file and index file ("" for none) to record; ``command``: the
    command line to record (default: this process's). Returns the trained model (unwrapped)."""
    run, device = Path(run), torch.device(device)
    if group.is_main:
        run.mkdir(parents=True, exist_ok=True)
    barrier(group)
    with run_log(run if group.is_main else None):
        state = _start(table, source, model, training, (*files, command), run, resume, device, group)
        _train(state, source, table, run, device, group, progress)
        return state.model


def _loader(source: ImageSource, sampler: ParticleBatchSampler, workers: int) -> DataLoader:
    return make_dataloader(source, sampler, workers)


def _train(
    state: _RunState,
    source: ImageSource,
    table: ParticleTable,
    run: Path,
    device: torch.device,
    group: ProcessGroup,
    progress: bool,
) -> None:
    config, t = state.config, state.config.training
    model: torch.nn.Module = state.model
    if group.world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    mask = fourier_disk_mask(config.data.D, device, state.model.radius)
    sampler = ParticleBatchSampler(
        len(table), t.batch_size, shuffle=True, seed=t.seed * 100_003, rank=group.rank, world_size=group.world_size
    )
    loader = _loader(source, sampler, t.num_workers)
    output_loader = (
        _loader(source, ParticleBatchSampler(len(table), 256, shuffle=False), t.num_workers)
        if state.model.output_dims and group.is_main
        else None
    )
    d = config.data
    source_note = (f" of {d.particles}" + (f" (rows in {d.ind})" if d.ind else "")) if d.particles else ""
    log.info(
        "%s training of %d particles%s (D=%d, %.3f Å/px) for %d epochs on %s%s",
        config.kind,
        len(table),
        source_note,
        d.D,
        d.apix,
        t.epochs,
        device,
        f" × {group.world_size} processes" if group.world_size > 1 else "",
    )
    for epoch in range(state.epoch + 1, t.epochs + 1):
        sampler.set_epoch(epoch)
        generator = torch.Generator(device=device).manual_seed(t.seed * 1_000_003 + epoch * 101 + group.rank)
        sums: dict[str, float] = {}
        t0, seen = time.perf_counter(), 0
        steps = len(sampler)
        bar = tqdm(
            total=len(table),
            desc=f"epoch {epoch}/{t.epochs}",
            unit="img",
            unit_scale=True,
            disable=(None if progress else True) if group.is_main else True,
        )
        for step, (images, index) in enumerate(loader):
            if t.lr_decay != 1:
                for group_lr in state.optimizer.param_groups:
                    group_lr["lr"] = t.lr * t.lr_decay ** (epoch - 1 + step / steps)
            batch = make_batch(
                images,
                table,
                index.numpy(),
                d.scale,
                invert=t.invert,
                use_ctf=t.use_ctf,
                window=t.window,
                device=device,
            )
            for hook in state.hooks:
                batch = hook.adjust(batch, epoch)
            with autocast(device, t.amp):
                terms = model(batch, mask, generator)
            values = {name: value.item() for name, value in terms.items()}
            if not math.isfinite(values["loss"]):
                raise TrainingError(
                    f"the loss became {values['loss']} in epoch {epoch} (after {seen} images): "
                    "training stopped; lower --lr, or check the images for NaN or huge values. "
                    f"Checkpoints of complete epochs in {run} are intact"
                )
            state.optimizer.zero_grad(set_to_none=True)
            for hook in state.hooks:
                hook.zero_grad()
            terms["loss"].backward()
            state.optimizer.step()
            for hook in state.hooks:
                hook.step()
            b = len(index)
            sums = {name: sums.get(name, 0.0) + value * b for name, value in values.items()}
            seen += b
            bar.update(b * group.world_size)
            bar.set_postfix(loss=f"{sums['loss'] / seen:.4g}", refresh=False)
        bar.close()
        names = list(sums)
        *totals, seen_all = all_reduce_sum([sums[n] for n in names] + [seen], device, group)
        seconds = time.perf_counter() - t0
        state.rows.append(
            {
                "epoch": epoch,
                **{n: v / seen_all for n, v in zip(names, totals)},
                "seconds": seconds,
                "images_per_s": seen_all / seconds,
            }
        )
        if group.is_main:
            wrote = _end_epoch(run, epoch, state, output_loader, table, device)
            terms_note = ", ".join(f"{n} {state.rows[-1][n]:.5g}" for n in names if n != "loss")
            log.info(
                "epoch %d/%d: loss %.5g (%s), %.1f s, %.0f images/s; wrote %s",
                epoch,
                t.epochs,
                state.rows[-1]["loss"],
                terms_note,
                seconds,
                seen_all / seconds,
                wrote,
            )
        barrier(group)


def _end_epoch(
    run: Path,
    epoch: int,
    state: _RunState,
    output_loader: DataLoader | None,
    table: ParticleTable,
    device: torch.device,
) -> str:
    """Write the epoch's hook files, per-particle outputs, log and (last, so that it marks the epoch
    complete) checkpoint."""
    written = []
    for hook in state.hooks:
        names, table = hook.end_epoch(run, epoch, table)
        written += names
    if output_loader is not None:
        outputs = all_particle_outputs(state.model, output_loader, table, state.config, device)
        written = write_particle_outputs(run, epoch, outputs)[:1] + written
    write_log(run, state.rows)
    checkpoint = {
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "epoch": epoch,
        "log": state.rows,
    }
    for hook in state.hooks:
        checkpoint.update(hook.state_dict())
    save_checkpoint(run, epoch, checkpoint)
    return ", ".join([f"weights.{epoch}.pt", *written])

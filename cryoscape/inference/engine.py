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
``z_var``, (n, zdim), input order; after the model's ``end_epoch``, which may update the model from
them and add outputs, e.g. a mixture's ``class``), and the hooks' files (``refined_particles.star``). The folder is
locked while a training writes it; a new run that fails before its first complete epoch removes
what it wrote, so that the same command can be run again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from cryoscape.data.batching import ParticleBatchSampler, make_dataloader
from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.imaging.grids import fourier_disk_mask
from cryoscape.inference.batches import make_batch
from cryoscape.inference.checkpoint import save_checkpoint
from cryoscape.inference.distributed import ONE_PROCESS, ProcessGroup, all_reduce_arrays, all_reduce_sum, barrier
from cryoscape.inference.run_config import UNKNOWN_ORIGIN, RunOrigin, TrainingSettings
from cryoscape.inference.run_lock import discard_unfinished_run, run_lock
from cryoscape.inference.run_models import all_particle_outputs, autocast
from cryoscape.inference.run_outputs import run_log, write_log, write_particle_outputs
from cryoscape.inference.run_start import RunState, start_run
from cryoscape.models.contract import VolumeModel
from cryoscape.models.registry import ModelSettings
from cryoscape.progress import Progress

log = logging.getLogger("cryoscape")


class TrainingError(InputError):
    """Training cannot go on (e.g. a non-finite loss); the checkpoints written so far are intact."""


def train(
    source: ImageSource,
    table: ParticleTable,
    model: ModelSettings,
    training: TrainingSettings,
    run: str | Path,
    *,
    origin: RunOrigin = UNKNOWN_ORIGIN,
    resume: bool = False,
    device: torch.device | str = "cpu",
    group: ProcessGroup = ONE_PROCESS,
    progress: bool = True,
    earlier: Sequence[logging.LogRecord] = (),
) -> VolumeModel:
    """Train the model ``model`` describes; write the run folder (see module docstring). ``origin``:
    the particle and index files and the command line to record; ``earlier``: log records of the
    preparation before this call, copied into run.log once the run has started. Returns the trained
    model (unwrapped)."""
    run, device = Path(run), torch.device(device)
    created = not run.exists()
    if group.is_main:
        run.mkdir(parents=True, exist_ok=True)
    barrier(group)
    with run_lock(run, held=group.is_main):
        try:
            with run_log(run if group.is_main else None) as write_earlier:
                state = start_run(table, source, model, training, origin, run, resume, device, group)
                write_earlier(earlier)
                _train(state, source, table, run, device, group, progress)
                return state.model
        except BaseException:
            if group.is_main:
                discard_unfinished_run(run, created)
            raise


def _train(
    state: RunState,
    source: ImageSource,
    table: ParticleTable,
    run: Path,
    device: torch.device,
    group: ProcessGroup,
    progress: bool,
) -> None:
    config, t = state.config, state.config.training
    if state.epoch >= t.epochs:
        if group.is_main:
            log.info(
                "%s is complete: it trained %d epochs (-n %d asked); to train it further, give --load latest "
                "with -n larger than %d",
                run,
                state.epoch,
                t.epochs,
                state.epoch,
            )
        return
    model: torch.nn.Module = state.model
    if group.world_size > 1:
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    mask = fourier_disk_mask(config.data.D, device, state.model.radius)
    sampler = ParticleBatchSampler(
        len(table), t.batch_size, shuffle=True, seed=t.seed * 100_003, rank=group.rank, world_size=group.world_size
    )
    loader = make_dataloader(source, sampler, t.num_workers)
    output_loader = (
        make_dataloader(source, _output_batches(len(table), group), t.num_workers) if state.model.output_dims else None
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
        bar = Progress(len(table), f"epoch {epoch}/{t.epochs}", "images", enabled=progress and group.is_main)
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
            if not _finite_everywhere(values["loss"], device, group):
                raise TrainingError(
                    f"the loss became {values['loss']} (in this or another process) in epoch {epoch} "
                    f"(after {seen} images): "
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
            bar.update(b * group.world_size, loss=f"{sums['loss'] / seen:.4g}")
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
        hook_files, ended = _end_epoch_hooks(run, epoch, state, table) if group.is_main else ([], table)
        outputs = state.model.end_epoch(epoch, _particle_outputs(state, output_loader, ended, device, group))
        if group.is_main:
            wrote = _end_epoch(run, epoch, state, outputs, hook_files)
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


def _finite_everywhere(loss: float, device: torch.device, group: ProcessGroup) -> bool:
    """Whether the loss of this step is finite in every process (one process decides for all, so
    that none waits for the others' gradients)."""
    return all_reduce_sum([0.0 if math.isfinite(loss) else 1.0], device, group)[0] == 0.0


def _output_batches(n: int, group: ProcessGroup, size: int = 256) -> list:
    """This process's share of the end-of-epoch encoding: a contiguous 1/world_size of the particles,
    in batches of ``size`` (every particle exactly once over all processes)."""
    share = np.array_split(np.arange(n), group.world_size)[group.rank]
    return [share[i : i + size] for i in range(0, len(share), size)]


def _end_epoch_hooks(run: Path, epoch: int, state: RunState, table: ParticleTable) -> tuple[list[str], ParticleTable]:
    """Let each hook write its files; the table the epoch ends with (e.g. with refined poses)."""
    written = []
    for hook in state.hooks:
        names, table = hook.end_epoch(run, epoch, table)
        written += names
    return written, table


def _particle_outputs(
    state: RunState, loader: DataLoader | None, table: ParticleTable, device: torch.device, group: ProcessGroup
) -> dict[str, np.ndarray]:
    """The model's per-particle outputs of every particle, each process encoding its share (so that
    the others do not wait at a barrier while one process encodes the whole data set); none without
    a ``loader`` (a model without per-particle outputs)."""
    if loader is None:
        return {}
    outputs = all_particle_outputs(state.model, loader, table, state.config, device)
    return all_reduce_arrays(outputs, device, group)  # each row is non-zero in one process only


def _end_epoch(run: Path, epoch: int, state: RunState, outputs: dict[str, np.ndarray], written: list[str]) -> str:
    """Write the epoch's per-particle outputs, log and (last, so that it marks the epoch complete)
    checkpoint; ``written``: the hooks' files, for the log line."""
    if outputs:
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

"""The start of a training run: a new run (data measured, config.json written once, the previous
run's files cleared) or a resumed one (config.json read, the settings compared, the last complete
checkpoint loaded), as the model, its optimizer and the hooks the settings ask for."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cryoscape.data.images import ImageSource
from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.inference.batches import hartley_scale
from cryoscape.inference.checkpoint import available_epochs, fitting, load_checkpoint
from cryoscape.inference.distributed import ProcessGroup
from cryoscape.inference.pose_refinement import PoseRefinement
from cryoscape.inference.run_config import (
    DataSummary,
    RunConfig,
    RunOrigin,
    TrainingSettings,
    new_run_config,
    read_run_config,
    resumed_config,
)
from cryoscape.inference.run_outputs import clear_previous_run
from cryoscape.io.staging import staged_file
from cryoscape.models.contract import VolumeModel
from cryoscape.models.registry import ModelSettings

log = logging.getLogger("cryoscape")


@dataclass
class RunState:
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
    model.check_particles(len(table))
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


def start_run(
    table: ParticleTable,
    source: ImageSource,
    model_settings: ModelSettings,
    training: TrainingSettings,
    origin: RunOrigin,
    run: Path,
    resume: bool,
    device: torch.device,
    group: ProcessGroup,
) -> RunState:
    """The state of a new or resumed run."""
    _check(table, model_settings, training)
    if resume and not available_epochs(run):
        log.info("%s holds no complete epoch yet: starting it afresh", run)
        resume = False
    if resume:
        config = resumed_config(read_run_config(run), model_settings, training)
        if config.data.n_particles != len(table):
            raise InputError(f"{run} was trained on {config.data.n_particles} particles, the input has {len(table)}")
        for what, before, now in (
            ("particle file", config.data.particles, origin.particles),
            ("index file", config.data.ind, origin.ind),
        ):
            if before != now and (before or now) and group.is_main:
                log.warning(
                    "%s was trained with the %s %s and continues with %s: the latents' rows follow the "
                    "new one; stop and start afresh if it holds other particles",
                    run,
                    what,
                    before or "(none)",
                    now or "(none)",
                )
        epoch, state = load_checkpoint(run, "latest")
        model, optimizer, hooks = _parts(config, len(table), device, group)
        with fitting(run, epoch):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            for hook in hooks:
                hook.load_state_dict(state)
        if group.is_main and epoch < config.training.epochs:
            log.info("resuming %s from epoch %d", run, epoch)
        return RunState(config, model, optimizer, hooks, epoch, list(state["log"]))
    scale = hartley_scale(source, table, invert=training.invert, seed=training.seed, window=training.window)
    data = DataSummary(
        D=table.box_size,
        apix=float(np.median(table.apix)),
        scale=scale,
        n_particles=len(table),
        particles=origin.particles,
        ind=origin.ind,
    )
    config = new_run_config(model_settings, training, data, origin.command)
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
        with staged_file(run / "config.json", force=True) as staged:
            staged.write_text(config.to_json())
    return RunState(config, model, optimizer, hooks)

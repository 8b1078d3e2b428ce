"""The schedule of heterogeneous ab initio (abinit-het), for any family of models and search step.

1. the consensus: homogeneous ab initio of every particle into RUN/consensus;
2. ``--rounds`` times: a model of the family (e.g. train-vae) on the current poses, into
   RUN/round_R, then the command's own search step, which writes RUN/round_R/searched_particles.star;
3. the final model on the last poses, in RUN itself, and RUN/particles.star.
Each step is resumable (--load latest goes on from the first unfinished one; every later step then
starts afresh). Under torchrun the models train in every process, as train-vae's do, while the
consensus and the searches run once, in the main process; the others wait at a barrier.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from cryoscape.cli.abinit_options import run_consensus
from cryoscape.cli.training_options import run_training

log = logging.getLogger("cryoscape")

WAIT_FOR_MAIN_S = 7 * 24 * 3600  # seconds the other torchrun processes wait for the main one's steps

# search(args, poses, folder, out): the round's model in ``folder`` was trained on ``poses``; write
# the poses found to ``out`` (a particle file with every row of ``poses``).
SearchStep = Callable[[argparse.Namespace, Path, Path, Path], None]


def check_run_folder(args: argparse.Namespace, command: str) -> None:
    """The checks every process makes before any writes (one-line errors)."""
    from cryoscape.errors import InputError, OverwriteError

    run = Path(args.outdir)
    if args.poses:
        raise InputError(
            f"{command} finds the poses: --poses does not apply (give the poses to the known-pose command)"
        )
    if args.rounds < 0:
        raise InputError(f"--rounds must be ≥ 0, got {args.rounds}")
    if not args.load and run.exists() and any(run.iterdir()) and not args.force:
        raise OverwriteError(f"{run} exists and is not empty; use --load latest to resume or --force to start afresh")


def run_rounds(args: argparse.Namespace, family: str, search: SearchStep) -> int:
    """The schedule above with the model family ``family`` (a training command's name) and the
    command's ``search`` step."""
    from cryoscape.inference.device import resolve_device
    from cryoscape.inference.distributed import barrier, end_process_group, start_process_group

    run = Path(args.outdir)
    group, _ = start_process_group(resolve_device(args.device), timeout_s=WAIT_FOR_MAIN_S)
    barrier(group)  # every process has checked the folder before the main one writes to it
    try:
        resuming = bool(args.load)  # False from the first step that is computed again: later ones start afresh
        poses = run / "consensus/particles.star"
        if resuming and poses.is_file():
            log.info("consensus found in %s: going on from there", poses.parent)
        else:
            if group.is_main:
                _consensus(args, run)
            resuming = False
        barrier(group)
        if (run / "consensus/invert").is_file():  # the data sign the consensus settled on
            args.invert = not args.invert
        for r in range(1, args.rounds + 1):
            folder = run / f"round_{r}"
            searched = folder / "searched_particles.star"
            if not (resuming and searched.is_file()):
                _train(args, family, poses, folder, resuming and (folder / "config.json").is_file())
                if group.is_main:
                    search(args, poses, folder, searched)
                barrier(group)
                resuming = False
            poses = searched
        if group.is_main:
            _copy_star(poses, run / "particles.star")
        return _train(args, family, poses, run, resuming and (run / "config.json").is_file())
    finally:
        end_process_group(group)


def _consensus(args: argparse.Namespace, run: Path) -> None:
    """Step 1 into RUN/consensus; the marker file RUN/consensus/invert records that the data were
    found inverted (every process reads it)."""
    from dataclasses import replace

    from cryoscape.cli.options import ctf_overrides
    from cryoscape.data.particle_io import load_particles
    from cryoscape.io.selection import read_selection

    table = load_particles(args.particles, datadir=args.datadir, ctf=args.ctf, require_ctf=not args.no_ctf,
                           ctf_overrides=ctf_overrides(args))  # fmt: skip
    if args.no_ctf:
        table = replace(table, ctf=None)
    if args.ind is not None:
        table = table.subset(read_selection(args.ind, len(table)))
    run.mkdir(parents=True, exist_ok=True)
    forced = argparse.Namespace(**{**vars(args), "force": True})  # a fresh start replaces the consensus
    result = run_consensus(forced, table, run / "consensus", progress=not args.quiet)
    if result.inverted:
        (run / "consensus/invert").write_text("the particles were found dark on light and were inverted\n")


def _train(args: argparse.Namespace, family: str, poses: Path, folder: Path, resume: bool) -> int:
    """The ``family`` model on the poses of ``poses`` into ``folder`` (resumed there when ``resume``)."""
    options = argparse.Namespace(**{**vars(args), "particles": str(poses), "outdir": str(folder), "ind": None,
                                    "load": "latest" if resume else None, "force": True})  # fmt: skip
    return run_training(options, family)


def _copy_star(source: Path, target: Path) -> None:
    from cryoscape.data.particle_io import load_particles, save_star

    save_star(target, load_particles(source), force=True)

"""Heterogeneous reconstruction without poses (ab initio): poses, a latent space and its maps.

Any poses in PARTICLES are ignored (unless --init-poses). Two steps, each resumable:
  1. the consensus: homogeneous ab initio (as abinit-homo, same options) into RUN/consensus
     (map.mrc, half maps, particles.star, log.csv, fsc.png);
  2. the cryoDRGN VAE (as train-vae, same options) on the poses found, refining every particle's pose
     as it learns the latent (--refine-poses is on; --no-refine-poses turns it off).
The consensus step searches poses once against one map, not against every particle's own map, which
is why it costs minutes instead of cryoDRGN-AI's hours; motions that move the particle's outline
more than the pose-search grid spacing need the refinement of step 2.

Writes the run folder RUN as train-vae does (config.json, weights.N.pt, z.npy, z.N.npy, log.csv,
loss.png, refined_particles.star: the refined poses), plus RUN/particles.star (the consensus poses)
and RUN/consensus/. RUN works with eval-vol RUN --zfile, analyze, landscape, trajectory and report.
--load latest resumes: after a finished consensus, it goes on with the VAE.

The hand is undetermined: the maps may be mirror images (cryoscape flip-hand).

Example:
  cryoscape abinit-het sim/particles.star -o sim/abinit_het --zdim 8 -n 20
"""

from __future__ import annotations

import argparse

from cryoscape.cli.abinit_options import add_search_arguments, run_consensus
from cryoscape.cli.train_vae import add_arguments as add_vae_arguments
from cryoscape.cli.training_options import run_training

# The VAE writes its run folder as it trains (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vae_arguments(parser)
    add_search_arguments(parser)
    parser.add_argument(
        "--no-refine-poses", dest="refine_poses", action="store_false", help="keep the consensus poses in step 2"
    )
    parser.set_defaults(refine_poses=True)


def main(args: argparse.Namespace) -> int:
    import logging
    from dataclasses import replace
    from pathlib import Path

    from cryoscape.cli.options import ctf_overrides
    from cryoscape.data.particle_io import load_particles, save_star
    from cryoscape.errors import InputError, OverwriteError
    from cryoscape.inference.run_config import read_run_config
    from cryoscape.io.selection import read_selection

    log = logging.getLogger("cryoscape")
    run = Path(args.outdir)
    consensus = run / "consensus"
    if args.poses:
        raise InputError("abinit-het finds the poses: --poses does not apply (use train-vae with known poses)")
    if not args.load and run.exists() and any(run.iterdir()) and not args.force:
        raise OverwriteError(f"{run} exists and is not empty; use --load latest to resume or --force to start afresh")
    if args.load and (consensus / "particles.star").is_file():
        log.info("consensus found in %s: going on with the VAE", consensus)
        if (run / "config.json").is_file():  # the data sign the consensus settled on
            args.invert = read_run_config(run).training.invert
    else:
        table = load_particles(args.particles, datadir=args.datadir, ctf=args.ctf, require_ctf=not args.no_ctf,
                               ctf_overrides=ctf_overrides(args))  # fmt: skip
        if args.no_ctf:
            table = replace(table, ctf=None)
        if args.ind is not None:
            table = table.subset(read_selection(args.ind, len(table)))
            args.ind = None
        run.mkdir(parents=True, exist_ok=True)
        forced = argparse.Namespace(**{**vars(args), "force": True})  # a fresh start replaces the consensus
        result = run_consensus(forced, table, consensus, progress=not args.quiet)
        args.invert = args.invert != result.inverted
        save_star(run / "particles.star", result.table, force=True)
    args.particles, args.force = str(run / "particles.star"), args.force or not args.load
    return run_training(args, "train-vae")

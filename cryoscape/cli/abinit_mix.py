"""Compositional (and conformational) heterogeneity without poses: a mixture of neural fields with a
junk class, and every particle's pose in its own class's frame.

Any poses in PARTICLES are ignored. Steps, each resumable:
  1. the consensus: homogeneous ab initio of every particle (as abinit-homo, same options) into
     RUN/consensus;
  2. --rounds times: the mixture (as train-mix, same options) on the current poses, into RUN/round_R;
     then each class's particles are reconstructed ab initio on their own (as abinit-homo: a map
     from nothing, searched, refined) into RUN/round_R/class_C, which gives them poses in their
     class's frame: RUN/round_R/searched_particles.star. Junk particles, and classes too small to
     search (fewer than abinit-homo needs: 200, or twice --minibatch), keep their poses;
  3. the final mixture on the last poses, in RUN itself.
A consensus of different molecules fits none of them: its poses are good only for the particles it
resembles, but the mixture still splits the particles by what they are. Each class's own ab initio
then searches each particle once, against one map (the cost of one homogeneous run of the whole
data set plus a start per class, not K searches of every particle), and the next mixture sees
poses that fit.

Writes the run folder RUN as train-mix does (config.json, weights.N.pt, class.npy, class_prob.npy,
z.npy with --zdim > 0, log.csv, loss.png), plus RUN/particles.star: the poses the final mixture
used and _rlnClassNumber (1..K, 0 for junk). Each class's map: eval-vol RUN --class C. Under
torchrun the mixtures train in every process and the searches run in the main one.

The hand of each class's map is undetermined (cryoscape flip-hand), and so is its orientation:
classes are not in one common frame.

Example:
  cryoscape abinit-mix sim/particles.star -o sim/abinit_mix -k 8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryoscape.cli.abinit_options import add_search_arguments
from cryoscape.cli.abinit_rounds import check_run_folder, run_rounds
from cryoscape.cli.train_mix import add_arguments as add_mixture_arguments

# The mixture writes its run folder as it trains (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_mixture_arguments(parser)
    add_search_arguments(parser)
    group = parser.add_argument_group("rounds of ab initio by class")
    group.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of (mixture, ab initio of each class) before the final mixture (default 2; 0: the "
        "consensus poses go straight to the final mixture)",
    )


def main(args: argparse.Namespace) -> int:
    from cryoscape.errors import InputError

    check_run_folder(args, "abinit-mix")
    if args.init_poses:
        raise InputError("abinit-mix finds every class's poses: --init-poses does not apply (train-mix takes poses)")
    if args.symmetry != "C1":
        raise InputError("abinit-mix searches without symmetry: the classes need not share one (--symmetry C1)")
    return run_rounds(args, "train-mix", _search_by_class, finish=_write_classes)


def _search_by_class(args: argparse.Namespace, poses: Path, folder: Path, out: Path) -> None:
    """Ab initio of each class of the mixture in ``folder`` (trained on ``poses``) on its own; the
    poses found (and the others' as they were) into ``out``."""
    import logging

    import numpy as np

    from cryoscape.cli.abinit_options import run_consensus
    from cryoscape.data.particle_io import load_particles, save_star

    log = logging.getLogger("cryoscape")
    table = load_particles(poses)
    labels = np.load(folder / "class.npy")
    rotations, shifts = np.array(table.rotations), np.array(table.shifts_px)
    forced = argparse.Namespace(**{**vars(args), "force": True, "ind": None})
    smallest = max(2 * args.minibatch, 200)  # as AbinitSettings.check
    for k in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == k)
        if len(members) < smallest:
            log.info("class %d: %d particles, too few to search on their own: their poses stay", k, len(members))
            continue
        log.info("class %d: ab initio of its %d particles into %s", k, len(members), folder / f"class_{k}")
        result = run_consensus(forced, table.subset(members), folder / f"class_{k}", progress=not args.quiet)
        if result.inverted:  # the consensus settled the data's sign; one class does not overturn it
            log.warning("class %d: its map came out with negative density (junk?): its poses stay", k)
            continue
        rotations[members] = result.table.rotations
        shifts[members] = result.table.shifts_px
    save_star(out, table.with_poses(rotations, shifts), force=True)


def _write_classes(args: argparse.Namespace) -> None:
    """RUN/particles.star with _rlnClassNumber: 1..K for the final mixture's classes, 0 for junk."""
    from dataclasses import replace

    import numpy as np

    from cryoscape.data.particle_io import load_particles, save_star

    run = Path(args.outdir)
    table = load_particles(run / "particles.star")
    metadata = table.metadata.copy()
    metadata["rlnClassNumber"] = np.load(run / "class.npy") + 1
    save_star(run / "particles.star", replace(table, metadata=metadata), force=True)

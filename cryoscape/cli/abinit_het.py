"""Heterogeneous reconstruction without poses (ab initio): poses, a latent space and its maps.

Any poses in PARTICLES are ignored (unless --init-poses). Steps, each resumable:
  1. the consensus: homogeneous ab initio (as abinit-homo, same options) into RUN/consensus
     (map.mrc, half maps, particles.star, log.csv, fsc.png);
  2. --rounds times: the cryoDRGN VAE (as train-vae, same options) on the current poses, into
     RUN/round_R; its latent is split into --clusters k-means clusters, each cluster's centre is
     decoded into a map, and every particle is searched again (globally, then locally below the
     grid) against its own cluster's map: RUN/round_R/searched_particles.star;
  3. the final VAE on the last poses found, in RUN itself.
Searching against one map per cluster costs one homogeneous search per round, whatever the number
of clusters, instead of cryoDRGN-AI's search against every particle's own decoded map; motions
that move the outline of the particle more than the consensus tolerates are what the rounds fix.
Under torchrun the VAEs train in every process, as train-vae's do, while the consensus and the
searches run once, in the main process (the others wait for them).

Writes the run folder RUN as train-vae does (config.json, weights.N.pt, z.npy, z.N.npy, log.csv,
loss.png), plus RUN/particles.star (the poses the final VAE used) and RUN/consensus/. RUN works
with eval-vol RUN --zfile, analyze, landscape, trajectory and report. --load latest resumes from
the first unfinished step.

The hand is undetermined: the maps may be mirror images (cryoscape flip-hand).

Example:
  cryoscape abinit-het sim/particles.star -o sim/abinit_het --zdim 8 -n 20
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cryoscape.cli.abinit_options import add_search_arguments, run_consensus
from cryoscape.cli.train_vae import add_arguments as add_vae_arguments
from cryoscape.cli.training_options import run_training

# The VAE writes its run folder as it trains (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False
WAIT_FOR_MAIN_S = 7 * 24 * 3600  # seconds the other torchrun processes wait for the main one's steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_vae_arguments(parser)
    add_search_arguments(parser)
    group = parser.add_argument_group("rounds of search by latent cluster")
    group.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of (VAE, search against cluster maps) before the final VAE (default 3; 0: the "
        "consensus poses go straight to the final VAE)",
    )
    group.add_argument("--clusters", type=int, default=16, help="k-means clusters of the latent per round (default 16)")


def main(args: argparse.Namespace) -> int:
    import logging

    from cryoscape.errors import InputError, OverwriteError
    from cryoscape.inference.device import resolve_device
    from cryoscape.inference.distributed import barrier, end_process_group, start_process_group

    log = logging.getLogger("cryoscape")
    run = Path(args.outdir)
    if args.poses:
        raise InputError("abinit-het finds the poses: --poses does not apply (use train-vae with known poses)")
    if args.rounds < 0 or args.clusters < 1:
        raise InputError(f"--rounds must be ≥ 0 and --clusters ≥ 1, got {args.rounds} and {args.clusters}")
    if not args.load and run.exists() and any(run.iterdir()) and not args.force:
        raise OverwriteError(f"{run} exists and is not empty; use --load latest to resume or --force to start afresh")
    # Under torchrun the VAEs train in every process; the consensus and the searches run in the main
    # one while the others wait at a barrier (for as long as they take: hence the long timeout).
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
                _train(args, poses, folder, resuming and (folder / "config.json").is_file())
                if group.is_main:
                    _search(args, poses, folder, searched)
                barrier(group)
                resuming = False
            poses = searched
        if group.is_main:
            _copy_star(poses, run / "particles.star")
        return _train(args, poses, run, resuming and (run / "config.json").is_file())
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


def _train(args: argparse.Namespace, poses: Path, folder: Path, resume: bool) -> int:
    """The VAE on the poses of ``poses`` into ``folder`` (resumed there when ``resume``)."""
    vae = argparse.Namespace(**{**vars(args), "particles": str(poses), "outdir": str(folder), "ind": None,
                                "load": "latest" if resume else None, "force": True})  # fmt: skip
    return run_training(vae, "train-vae")


def _search(args: argparse.Namespace, poses: Path, folder: Path, out: Path) -> None:
    """Cluster the latent of the VAE run ``folder`` (trained on ``poses``), decode the cluster centres
    and search every particle against its cluster's map, over the band where the cluster maps agree
    with the consensus map (their median FSC=0.143 radius against it, at most 3D/8); the poses found
    into ``out``. Poses stay as they were when that band is below the search's first (12 px): the
    VAE has not learned its maps beyond what the consensus already had."""
    import logging

    import numpy as np

    from cryoscape.analysis.latent import kmeans_clusters
    from cryoscape.analysis.maps import decoded_maps, load_vae
    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles, save_star
    from cryoscape.errors import InputError
    from cryoscape.imaging.fsc import fsc
    from cryoscape.imaging.rotations import geodesic_angle_deg
    from cryoscape.inference.cluster_search import search_by_cluster
    from cryoscape.inference.pose_search import SearchSettings
    from cryoscape.io.mrc import read_map

    log = logging.getLogger("cryoscape")
    model, config, _ = load_vae(folder, "latest", None, "abinit-het")
    table = load_particles(poses)
    D = table.box_size
    clusters = kmeans_clusters(np.load(folder / "z.npy"), min(args.clusters, len(table)), seed=args.seed)
    maps = list(decoded_maps(model, config, clusters.centers.astype(np.float32), 4, "cluster maps", not args.quiet))
    consensus, apix, _ = read_map(folder.parent / "consensus/map.mrc")
    agreed = float(np.median([D * apix / fsc(m, consensus, apix).resolution_A(0.143) for m in maps]))
    settings = SearchSettings(base_level=2, levels=3, keep=8, max_shift_px=D / 8 if args.max_shift is None
                              else args.max_shift, l_end=min(int(agreed), 3 * D // 8))  # fmt: skip
    shifts_now = table.shifts_px
    if table.rotations is None or shifts_now is None:
        raise InputError(f"{poses} has no poses to search from")
    current = (table.rotations, shifts_now)
    if settings.l_end < settings.l_start:
        log.warning("%s: the cluster maps agree with the consensus map only to %.1f Fourier px (FSC=0.143), below "
                    "the search's first band (%d px): the VAE has not learned them, so the poses stay as they "
                    "were (train longer: -n)", folder, agreed, settings.l_start)  # fmt: skip
        rotations, shifts = current
    else:
        rotations, shifts, _, searched = search_by_cluster(
            ImageSource.from_table(table), table, maps, clusters.labels, settings, current,
            batch_size=args.search_batch, invert=config.training.invert, progress=not args.quiet,
        )  # fmt: skip
        log.info("searched %d particles against %d cluster maps to %d Fourier px: %d took the search's pose, the "
                 "rest kept theirs refined; median rotation change %.2f°", len(table), len(maps), settings.l_end,
                 int(searched.sum()), float(np.median(geodesic_angle_deg(rotations, current[0]))))  # fmt: skip
    save_star(out, table.with_poses(rotations, shifts), force=True)


def _copy_star(source: Path, target: Path) -> None:
    from cryoscape.data.particle_io import load_particles, save_star

    save_star(target, load_particles(source), force=True)

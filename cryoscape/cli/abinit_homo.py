"""Homogeneous reconstruction without poses (ab initio): a map and every particle's pose.

Any poses in PARTICLES are ignored, unless --init-poses asks to refine them. The run:
  1. builds a map from nothing --restarts times (each: --iterations steps; each step searches
     --minibatch random particles against the current map and adds each at its best poses,
     weighted by their annealed posterior), and keeps the map that explains 500 held-out particles
     best (lowest mean search error per pixel);
  2. checks the map's sign: data with dark particles are detected, inverted for the rest of the
     run, and a warning says so (see --invert);
  3. searches every particle against that map (15° grid refined 3 times, to 1.9°; shifts within
     ±--max-shift px);
  4. searches each half's particles again, against its own gold-standard half map (--search-rounds);
  5. refines every pose locally against its half's map, --refine-rounds times, below the grid
     spacing, over the band the half-map FSC supports;
  6. reconstructs the map at the final poses (gold standard, Wiener-filtered).
With --symmetry, steps 1, 3 and 4 search only the group's asymmetric unit and every map is made
symmetric (each particle inserted at its equivalent poses).

Writes the folder RUN, all of it or nothing: map.mrc, map_half1.mrc, map_half2.mrc, fsc.png
(half-map FSC), particles.star (every input row and column, with _rlnAngleRot/Tilt/Psi and
_rlnOriginX/YAngst set to the poses found; usable by backproject and train-vae) and log.csv (one row
per stage: band, error, median pose change from the stage before, seconds).

The hand and orientation of the map are undetermined, as for every ab initio method: the map is
the molecule or its mirror image. Compare with a known structure (cryoscape align MAP --to REF
tries both) or flip it (cryoscape flip-hand MAP).

Example (8,000 particles of 64² px: about 6 minutes on 2 CPU cores):
  cryoscape abinit-homo sim/particles.star -o sim/abinit
"""

from __future__ import annotations

import argparse

from cryoscape.cli.abinit_options import add_search_arguments, run_consensus
from cryoscape.cli.options import add_ctf_overrides, ctf_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("particles", metavar="PARTICLES", help=".star or .cs (poses ignored), or .mrcs with --ctf")
    parser.add_argument("-o", "--outdir", required=True, metavar="RUN", help="output folder")
    parser.add_argument("--ctf", default=None, help="cryoDRGN CTF .pkl (N×9)")
    parser.add_argument("--datadir", default=None, help="folder for relative image paths in the .star/.cs")
    parser.add_argument(
        "--apix", type=float, default=None, help="pixel size in Å of the stored images, overriding the file's"
    )
    parser.add_argument("--no-ctf", action="store_true", help="CTF-free data: reconstruct without a CTF")
    parser.add_argument(
        "--invert", action="store_true", help="multiply images by -1 (dark particles; detected anyway, see above)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the starts, minibatches and half split")
    parser.add_argument("--force", action="store_true", help="replace an existing RUN folder")
    add_search_arguments(parser)
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    import logging
    from dataclasses import replace

    from cryoscape.data.particle_io import load_particles

    log = logging.getLogger("cryoscape")
    table = load_particles(
        args.particles,
        datadir=args.datadir,
        ctf=args.ctf,
        apix=args.apix,
        require_ctf=not args.no_ctf,
        ctf_overrides=ctf_overrides(args),
    )
    if args.no_ctf:
        table = replace(table, ctf=None)
    if not args.init_poses and table.rotations is not None:
        log.info("the poses in %s are ignored (pass --init-poses to refine them instead)", args.particles)
    run_consensus(args, table, args.outdir, progress=not args.quiet)
    log.info("read %d particles from %s; wrote %s (map.mrc, half maps, particles.star, log.csv, fsc.png)",
             len(table), args.particles, args.outdir)  # fmt: skip
    return 0

"""Maps along a path through the latent space that stays on the data: the shortest path between two
particles on the k-nearest-neighbour graph of all particles' latents, with maps at particles evenly
spaced along it, and a ChimeraX script that plays them as a movie.

The ends are particles (--start/--end, 0-based, e.g. from kmeans_centers_ind.txt of analyze) or
latent points (--z-start/--z-end), each moved to the nearest particle.

Writes into DIR: vol_000.mrc ... (the data's pixel size), z_values.txt (their latents), maps_ind.txt
(their particles), path_ind.txt (every particle of the path), movie.cxc (open it in ChimeraX),
path.png (the path over the PCA density) and projections.png; for a train-gmm run started from an
atomic model also models.pdb, the model moved to each map's latent (one MODEL per map).

Examples:
  cryoscape trajectory sim/vae --start 12572 --end 11176 -n 10 -o sim/vae/closed_to_open
  cryoscape trajectory sim/vae --z-start -1 0 --z-end 1 0 -o sim/vae/path
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_epoch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-vae, abinit-het or train-gmm")
    parser.add_argument("-o", "--outdir", required=True, metavar="DIR", help="folder for the maps and the movie script")
    parser.add_argument("--epoch", type=parse_epoch, default="latest", help="which epoch: a number or latest (default)")
    parser.add_argument("--start", type=int, default=None, help="first particle of the path (0-based index)")
    parser.add_argument("--end", type=int, default=None, help="last particle of the path (0-based index)")
    parser.add_argument(
        "--z-start",
        type=float,
        nargs="+",
        default=None,
        metavar="Z",
        help="start at the particle nearest this latent (zdim numbers)",
    )
    parser.add_argument(
        "--z-end",
        type=float,
        nargs="+",
        default=None,
        metavar="Z",
        help="end at the particle nearest this latent (zdim numbers)",
    )
    parser.add_argument("-n", type=int, default=10, help="number of maps along the path (default 10)")
    parser.add_argument(
        "--neighbors",
        type=int,
        default=10,
        help="neighbours per particle in the graph (default 10); where the ends are not connected it is doubled, "
        "up to 200, with a warning",
    )
    parser.add_argument("--map-batch", type=int, default=4, help="maps decoded together (default 4)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR")


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.analysis import plots
    from cryoscape.analysis.bead_models import has_atomic_model, write_trajectory_model
    from cryoscape.analysis.latent import latent_pca, nearest_particles
    from cryoscape.analysis.maps import load_run_latents, load_vae, write_maps
    from cryoscape.analysis.trajectory import chimerax_movie_script, evenly_spaced, latent_path
    from cryoscape.errors import InputError
    from cryoscape.inference.device import resolve_device
    from cryoscape.io.staging import staged_folder

    log = logging.getLogger("cryoscape")
    run = Path(args.run)
    model, config, epoch = load_vae(run, args.epoch, resolve_device(args.device), "trajectory")
    z = load_run_latents(run, config, epoch)

    def end_of(index, point, name: str) -> int:
        if (index is None) == (point is None):
            raise InputError(f"give exactly one of --{name} and --z-{name}")
        if point is None:
            return index
        if len(point) != z.shape[1]:
            raise InputError(f"--z-{name} has {len(point)} numbers, the latents have {z.shape[1]}")
        return int(nearest_particles(z, np.asarray(point))[0])

    start, end = end_of(args.start, args.z_start, "start"), end_of(args.end, args.z_end, "end")
    path = latent_path(z, start, end, args.neighbors)
    chosen = evenly_spaced(z, path, args.n)
    with staged_folder(args.outdir, args.force) as out:
        maps = write_maps(model, config, z[chosen], out, "map", args.map_batch, not args.quiet)
        np.savetxt(out / "maps_ind.txt", chosen, fmt="%d")
        np.savetxt(out / "path_ind.txt", path, fmt="%d")
        if has_atomic_model(config):
            write_trajectory_model(model, config, z[chosen], out / "models.pdb", force=True)
        level = float(np.mean([np.percentile(m, 99) for m in maps])) * 0.5
        (out / "movie.cxc").write_text(chimerax_movie_script(len(maps), level))
        coords = latent_pca(z, 2).coords  # (N, 1) for a 1-D latent: a histogram with the maps marked
        plots.path_figure(
            coords,
            coords[path],
            coords[chosen],
            out / "path.png",
            ("PC1", "PC2"),
            f"path from particle {start} to {end}",
        )
    log.info(
        "read %s (epoch %d); path of %d particles from %d to %d; wrote %d maps, movie.cxc and path.png to %s",
        run,
        epoch,
        len(path),
        start,
        end,
        len(maps),
        args.outdir,
    )
    return 0

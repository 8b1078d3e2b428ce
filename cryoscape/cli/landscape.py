"""Volume-space landscape of a VAE run (chapter 6 of E. D. Zhong, "Machine Learning for
Reconstructing Dynamic Protein Structures from Cryo-EM Images", PhD thesis, MIT, 2022): sketch the
maps across the latent space (k-means, a map per centre), mask them, PCA of the masked maps (eigen-volumes and their variance),
agglomerative clustering of the maps into states with a mean map per state, and a small network that
places every particle in volume-PC space. Plots for every step; see the files in DIR/summary.txt.

Writes into DIR (default RUN/landscape.EPOCH), all at once at the end: kmeans/ (sketch maps,
labels.npy), mask.mrc, vol_pca.npy, vol_pcs/pc1/vol_###.mrc ..., states/state_##_mean.mrc,
states/particle_states.npy, vol_pca_all.npy, PNG plots, summary.txt and landscape.json.

Examples:
  cryoscape landscape sim/vae -o sim/vae/landscape
  cryoscape landscape sim/vae --sketch-size 200 --states 5 --downsample 64 --mask focus.mrc
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_epoch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-vae")
    parser.add_argument(
        "-o", "--outdir", default=None, metavar="DIR", help="output folder (default RUN/landscape.EPOCH)"
    )
    parser.add_argument("--epoch", type=parse_epoch, default="latest", help="which epoch: a number or latest (default)")
    parser.add_argument(
        "--sketch-size",
        type=int,
        default=500,
        help="k-means clusters of the latents, one map each (default 500, the thesis's)",
    )
    parser.add_argument(
        "--downsample",
        type=int,
        default=None,
        metavar="D",
        help="Fourier-crop the maps to a D-voxel box first (faster, less memory; default: full box)",
    )
    parser.add_argument(
        "--mask",
        default=None,
        metavar="MASK.mrc",
        help="analyse only voxels where this map is > 0.5 (default: automatic mask)",
    )
    parser.add_argument(
        "--thresh-fraction",
        type=float,
        default=0.5,
        help="automatic mask: voxels above this fraction of the maps' robust maximum (default 0.5)",
    )
    parser.add_argument("--dilate", type=int, default=5, help="automatic mask: dilation in voxels (default 5)")
    parser.add_argument("--pc-dim", type=int, default=20, help="volume principal components kept (default 20)")
    parser.add_argument("--plot-dim", type=int, default=3, help="maps along this many eigen-volumes (default 3)")
    parser.add_argument(
        "--states", type=int, default=10, help="number of states of the agglomerative clustering (default 10)"
    )
    parser.add_argument(
        "--linkage",
        choices=("average", "complete", "single", "ward"),
        default="average",
        help="linkage of the clustering (default average, the thesis's)",
    )
    parser.add_argument(
        "--n-train",
        type=int,
        default=1000,
        help="extra maps of random particles to train the volume mapping on (default 1000)",
    )
    parser.add_argument(
        "--mapping-epochs", type=int, default=50, help="epochs of the volume mapping network (default 50)"
    )
    parser.add_argument("--particles", default=None, help="the run's particle file, if it has moved (ground truth)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--map-batch", type=int, default=4, help="maps decoded together (default 4)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR")


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.landscape import LandscapeOptions, landscape_run
    from cryoscape.inference.device import resolve_device

    options = LandscapeOptions(
        sketch_size=args.sketch_size,
        downsample=args.downsample,
        mask=args.mask,
        threshold_fraction=args.thresh_fraction,
        dilate=args.dilate,
        pc_dim=args.pc_dim,
        plot_dim=args.plot_dim,
        n_states=args.states,
        linkage=args.linkage,
        n_train=args.n_train,
        mapping_epochs=args.mapping_epochs,
        seed=args.seed,
        map_batch=args.map_batch,
    )
    landscape_run(
        args.run,
        args.outdir,
        args.epoch,
        options,
        particles=args.particles,
        force=args.force,
        device=resolve_device(args.device),
        progress=not args.quiet,
    )
    return 0

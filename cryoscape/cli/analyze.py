"""Analyse the latent space of a VAE run: PCA, UMAP, k-means with a map per cluster, maps along the
principal components, plots and a summary (cryoDRGN's analyze, plus the ground truth of simulated data).

Writes into DIR (default RUN/analyze.EPOCH), all at once at the end (a failed run leaves nothing):
  kmeans_labels.npy       one cluster label per particle (input order), clusters numbered along PC1
  kmeans_centers.txt      latent of the particle nearest each k-means centre (one row per cluster)
  kmeans_centers_ind.txt  index of that particle
  kmeans/vol_000.mrc ...  a map per cluster, at that latent (the data's pixel size), projections.png
  pc1/vol_000.mrc ...     maps along PC1 (5th to 95th percentile of the particles), likewise pc2, ...
  z_pca.npy, umap.npy     the particles' PCA coordinates and 2-D UMAP
  pca.png, umap.png       density and clusters in each embedding; explained_variance.png, cluster_sizes.png
  summary.txt, analysis.json
  truth_*.png             (simulated data) latents coloured by the true conformation or component

With --class C (a train-mix run), only the particles of class C (RUN/class.EPOCH.npy == C) and its map:
kmeans_labels.npy then has a label per particle of the class, in input order; kmeans_centers_ind.txt
holds input row numbers as always. Simulated data are scored against the component most of the class is.

Examples:
  cryoscape analyze sim/vae -o sim/vae/analysis --ksample 20
  cryoscape analyze sim/vae --epoch 10 --ksample 8 --pc 3 --skip-umap
  cryoscape analyze sim/mix --class 0 --ksample 8      (a train-mix run: class 0's particles and map)
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_epoch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", metavar="RUN", help="run folder written by train-vae or train-gmm, or by train-mix with --class"
    )
    parser.add_argument(
        "-o", "--outdir", default=None, metavar="DIR", help="analysis folder (default RUN/analyze.EPOCH)"
    )
    parser.add_argument(
        "--epoch",
        type=parse_epoch,
        default="latest",
        help="which epoch's latents and checkpoint: a number or latest (default)",
    )
    parser.add_argument("--ksample", type=int, default=20, help="number of k-means clusters, one map each (default 20)")
    parser.add_argument("--pc", type=int, default=2, help="maps along this many principal components (default 2)")
    parser.add_argument("--n-per-pc", type=int, default=10, help="maps along each principal component (default 10)")
    parser.add_argument(
        "--skip-umap", action="store_true", help="skip the UMAP embedding (about 1 minute per 100k particles)"
    )
    parser.add_argument(
        "--z",
        default=None,
        metavar="Z.npy",
        help="analyse these latent means instead of the run's (e.g. from eval-images)",
    )
    parser.add_argument(
        "--particles",
        default=None,
        help="the particle file of the run, if it has moved (finds the ground truth of simulated data)",
    )
    parser.add_argument(
        "--truth-images",
        type=int,
        default=50,
        help="simulated data: compare the maps of this many random particles with their true maps "
        "(default 50; 0 skips)",
    )
    parser.add_argument(
        "--class",
        dest="class_id",
        type=int,
        default=None,
        metavar="C",
        help="a train-mix run: analyse class C (its particles' latents and its map); the default output folder "
        "is then RUN/analyze.EPOCH.classC",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of k-means and UMAP (default 0)")
    parser.add_argument(
        "--map-batch", type=int, default=4, help="maps decoded together (default 4; more is faster, uses more memory)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR")


def main(args: argparse.Namespace) -> int:
    from cryoscape.analysis.analyze import AnalyzeOptions, analyze_run
    from cryoscape.inference.device import resolve_device

    options = AnalyzeOptions(
        ksample=args.ksample,
        n_pcs=args.pc,
        n_per_pc=args.n_per_pc,
        umap=not args.skip_umap,
        seed=args.seed,
        map_batch=args.map_batch,
        truth_images=args.truth_images,
        class_id=args.class_id,
    )
    analyze_run(
        args.run,
        args.outdir,
        args.epoch,
        options,
        z_file=args.z,
        particles=args.particles,
        force=args.force,
        device=resolve_device(args.device),
        progress=not args.quiet,
    )
    return 0

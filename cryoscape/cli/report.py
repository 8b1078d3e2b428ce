"""Write one self-contained HTML report of a VAE run, to open in any browser, offline: the latent
embedding as an interactive plot (hover a point for its particle index and cluster; a menu colours
it by k-means cluster, by your label files, by columns of the particle file, or by the ground truth
of simulated data), the loss curves, the cluster maps as projections, the PCA/UMAP/landscape plots
and the summaries. It uses the newest RUN/analyze.E and RUN/landscape.E folders unless given. For a
train-mix run it also shows the classes: their shares of the particles over the epochs, their maps,
and (simulated data) the confusion matrix against the true components; the latent plot colours by class.

Examples:
  cryoscape report sim/vae -o sim/vae/report.html
  cryoscape report sim/vae -o report.html --analysis sim/vae/analysis --color-by rlnDefocusU --labels states=states.npy
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-vae, train-gmm or train-mix")
    parser.add_argument("-o", "--output", required=True, metavar="REPORT.html", help="the HTML file to write")
    parser.add_argument(
        "--analysis", default=None, metavar="DIR", help="folder written by analyze (default: newest RUN/analyze.E)"
    )
    parser.add_argument(
        "--landscape",
        default=None,
        metavar="DIR",
        help="folder written by landscape (default: newest RUN/landscape.E, if any)",
    )
    parser.add_argument(
        "--labels",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="colour by one label per particle from this file; may be repeated",
    )
    parser.add_argument(
        "--color-by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="colour by this column of the particle file (e.g. rlnDefocusU); may be repeated",
    )
    parser.add_argument("--particles", default=None, help="the run's particle file, if it has moved")
    parser.add_argument(
        "--max-points",
        type=int,
        default=100000,
        help="draw at most this many particles, a random subset (default 100000)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing report")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cryoscape.analysis.report import build_report
    from cryoscape.errors import InputError
    from cryoscape.io.paths import check_input

    labels = {}
    for item in args.labels:
        name, sep, path = item.rpartition("=")
        labels[name if sep else Path(path).stem] = check_input(path, "label file")
    if args.max_points < 1:
        raise InputError("--max-points must be at least 1")
    build_report(
        args.run,
        args.output,
        analysis=args.analysis,
        landscape=args.landscape,
        labels=labels,
        columns=args.color_by,
        particles=args.particles,
        max_points=args.max_points,
        force=args.force,
    )
    return 0

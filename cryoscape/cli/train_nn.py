"""Homogeneous reconstruction with a neural field and known poses (cryoDRGN's train_nn).

Poses and CTF come from a RELION .star or cryoSPARC .cs file, or from cryoDRGN pickles (--poses,
--ctf) for a bare stack. Writes the run folder RUN: config.json, weights.N.pt after every epoch,
log.csv and loss.png. A killed run continues from its last complete epoch with --load latest.
Generate the map with `cryoscape eval-vol RUN -o DIR`.

Example:
  cryoscape train-nn sim/particles.star -o sim/nn -n 10 --width 256 --depth 3
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("particles", metavar="PARTICLES", help=".star, .cs, or .mrcs/.txt with --poses/--ctf")
    parser.add_argument("-o", "--outdir", required=True, metavar="RUN", help="run folder")
    parser.add_argument("-n", "--epochs", type=int, default=20, help="number of passes over the data (default 20)")
    parser.add_argument("--poses", default=None, help="cryoDRGN poses .pkl")
    parser.add_argument("--ctf", default=None, help="cryoDRGN CTF .pkl")
    parser.add_argument("--datadir", default=None, help="folder for relative image paths in the .star/.cs")
    parser.add_argument("--invert", action="store_true", help="multiply images by -1 (black particles)")
    parser.add_argument("--no-ctf", action="store_true", help="ignore the CTF (CTF-free data)")
    parser.add_argument("-b", "--batch-size", type=int, default=8, help="images per gradient step (default 8)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--width", type=int, default=256, help="decoder width, nodes per layer (default 256)")
    parser.add_argument("--depth", type=int, default=3, help="decoder residual hidden layers (default 3)")
    parser.add_argument("--pe", choices=("gaussian", "geom_ft", "geom_lowf"), default="gaussian",
                        help="positional encoding of frequencies (default gaussian; geom_lowf suits noisy data)")
    parser.add_argument("--in-memory", action="store_true", help="load all images into RAM (default: memory-mapped)")
    parser.add_argument("--load", choices=("latest",), default=None, help="resume RUN from its last complete epoch")
    parser.add_argument("--seed", type=int, default=0, help="random seed of initialization and batch order (default 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="start afresh in an existing RUN folder")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles
    from cryoscape.errors import InputError, OverwriteError
    from cryoscape.inference.device import resolve_device
    from cryoscape.inference.train_nn import NNConfig, train_nn

    run = Path(args.outdir)
    if args.load and not (run / "config.json").exists():
        raise InputError(f"--load latest: {run} is not a run folder (no config.json)")
    if not args.load and run.exists() and any(run.iterdir()) and not args.force:
        raise OverwriteError(f"{run} exists and is not empty; use --load latest to resume or --force to start afresh")
    device = resolve_device(args.device)
    table = load_particles(args.particles, datadir=args.datadir, poses=args.poses, ctf=args.ctf)
    source = ImageSource.from_table(table, lazy=not args.in_memory)
    config = NNConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, width=args.width, depth=args.depth,
                      encoding=args.pe, invert=args.invert, use_ctf=not args.no_ctf, seed=args.seed)
    train_nn(source, table, config, run, resume=bool(args.load), device=device, progress=not args.quiet)
    return 0

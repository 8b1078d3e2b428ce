"""Heterogeneous reconstruction with known poses: the cryoDRGN VAE (chapters 3-4 of
E. D. Zhong, "Machine Learning for Reconstructing Dynamic Protein Structures from Cryo-EM Images", PhD thesis, MIT, 2022).

An encoder maps each centred, phase-flipped particle image to a Gaussian over a latent z; a neural
field decodes (frequency, z) into the map of that particle. Loss = mean squared error of the
CTF-weighted, shifted slice against the image + beta·KL/N_pixels. Poses and CTF come from the
.star/.cs unless --poses/--ctf are given.

Writes the run folder RUN: config.json, weights.N.pt after every epoch, z.N.npy and z_var.N.npy
(latent means and variances of every particle, input order, shape (N, zdim)), z.npy and z_var.npy
of the latest epoch, log.csv and loss.png. A killed run continues with --load latest.
Several processes: torchrun --nproc-per-node P $(which cryoscape) train-vae ... (gloo on the CPU,
NCCL on GPUs; --batch-size is shared among them).

Example:
  cryoscape train-vae sim/particles.star -o sim/vae --zdim 8 -n 20
  cryoscape eval-vol sim/vae --z-start -2 --z-end 2 -n 10 -o sim/vae/maps
"""

from __future__ import annotations

import argparse

from cryoscape.cli.training_options import add_training_arguments, run_training

# A run folder is written as training goes (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, "train-vae", default_epochs=20)
    parser.add_argument("--zdim", type=int, required=True, help="latent dimension (at least 1)")
    parser.add_argument(
        "--enc-dim", dest="enc_width", type=int, default=256, help="encoder width, nodes per layer (default 256)"
    )
    parser.add_argument(
        "--enc-layers", dest="enc_depth", type=int, default=3, help="encoder residual hidden layers (default 3)"
    )
    parser.add_argument(
        "--beta",
        type=float,
        default=None,
        help="weight of the KL term relative to the per-pixel error (default 1/zdim, as cryoDRGN)",
    )


def main(args: argparse.Namespace) -> int:
    return run_training(args, "train-vae")

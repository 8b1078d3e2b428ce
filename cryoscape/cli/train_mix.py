"""Compositional and conformational heterogeneity with known poses: a mixture of neural fields with a
junk class (after Hydra: A. Levy, R. Raghu et al., "Mixture of neural fields for heterogeneous
reconstruction in cryo-EM", NeurIPS 2024).

Each particle belongs to one of K classes, each a neural field with its own latent z (--zdim numbers;
0 = discrete classes only), or to junk: an image that no structured map explains (noise alone). The
loss is the Gaussian likelihood of the CTF-weighted slices, summed over pixels with the noise
variance per Fourier shell estimated from the residuals, marginalized over the classes with global
class proportions; it is tempered in the first --anneal-epochs epochs (soft posteriors) and exact
after. -k is an upper bound: after the annealing, classes holding less than --min-fraction of the
particles are pruned, and classes whose maps agree (FSC averaged to half the band limit at least
--merge-fsc) are merged; run.log records every decision and the K found.

Writes the run folder RUN: config.json, weights.N.pt after every epoch, class_prob.N.npy ((N, K+1)
posterior, junk last; 0 for pruned classes), class.N.npy ((N,) integers: the class, -1 for junk),
z.N.npy ((N, zdim) latent within the particle's class, with --zdim > 0) and NAME.npy of the latest
epoch, log.csv and loss.png. A killed run continues with --load latest.

Example:
  cryoscape simulate adk_closed 1hvr 1a28 -o sim --box 64 --apix 2 -n 10000 --snr 0.1 --junk-fraction 0.1
  cryoscape train-mix sim/particles.star -o sim/mix -k 8 -n 20
  cryoscape eval-vol sim/mix --class 0 -o sim/mix/class0
"""

from __future__ import annotations

import argparse

from cryoscape.cli.training_options import add_training_arguments, run_training
from cryoscape.models.mixture_settings import WARMUP_IMAGES

# A run folder is written as training goes (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, "train-mix", default_epochs=20)
    parser.add_argument(
        "-k", "--classes", type=int, required=True, help="most classes (an upper bound: empty and duplicate ones go)"
    )
    parser.add_argument("--zdim", type=int, default=0, help="latent dimension within each class (default 0: none)")
    parser.add_argument(
        "--junk",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a junk class: images explained by noise alone (default on)",
    )
    parser.add_argument(
        "--enc-dim", dest="enc_width", type=int, default=256, help="encoder width, with --zdim (default 256)"
    )
    parser.add_argument(
        "--enc-layers", dest="enc_depth", type=int, default=3, help="encoder residual hidden layers (default 3)"
    )
    parser.add_argument("--beta", type=float, default=None, help="weight of the KL term (default 1/zdim)")
    parser.add_argument(
        "--start-temperature",
        type=float,
        default=0.01,
        metavar="T",
        help="likelihood temperature of the first epoch, rising geometrically to 1 (default 0.01)",
    )
    parser.add_argument(
        "--anneal-epochs",
        type=int,
        default=2,
        help="warm-up epochs (tempered likelihood, balanced classes) before the exact one (default 2); the "
        f"warm-up should see at least {WARMUP_IMAGES:,} images, so small data sets need more (8 for 400 particles)",
    )
    parser.add_argument(
        "--screen",
        type=float,
        default=1e-3,
        metavar="P",
        help="after the warm-up, render a class at full resolution for an image only if its posterior from a "
        "low-resolution pass (a third of the band limit) is at least P, or it is the image's most probable class "
        "(default 0.001; 0 renders every class for every image: an epoch then costs about K single-class epochs)",
    )
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.02,
        metavar="F",
        help="prune classes holding less than this fraction of the particles (default 0.02)",
    )
    parser.add_argument(
        "--merge-fsc",
        type=float,
        default=0.9,
        metavar="F",
        help="merge classes whose maps' FSC, averaged to half the band limit, is at least F (default 0.9)",
    )


def main(args: argparse.Namespace) -> int:
    return run_training(args, "train-mix")

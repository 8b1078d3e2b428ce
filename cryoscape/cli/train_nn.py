"""Homogeneous reconstruction with a neural field and known poses (cryoDRGN's train_nn).

--model chooses the volume representation (the registered families that train without a latent).
Poses and CTF come from a RELION .star or cryoSPARC .cs file, or from cryoDRGN pickles (--poses,
--ctf) for a bare stack. Writes the run folder RUN: config.json, weights.N.pt after every epoch,
log.csv and loss.png. A killed run continues from its last complete epoch with --load latest.
Generate the map with `cryoscape eval-vol RUN -o DIR`.

Example:
  cryoscape train-nn sim/particles.star -o sim/nn -n 10 --dec-dim 256 --dec-layers 3
"""

from __future__ import annotations

import argparse

from cryoscape.cli.training_options import add_training_arguments, run_training

# A run folder is written as training goes (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, "train-nn", default_epochs=20)


def main(args: argparse.Namespace) -> int:
    return run_training(args, "train-nn")

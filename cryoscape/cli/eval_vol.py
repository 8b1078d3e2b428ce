"""Generate maps from a trained run.

For a homogeneous run (train-nn) writes DIR/vol_000.mrc at the data's pixel size, in the units of
the input images.

Example:
  cryoscape eval-vol sim/nn -o sim/nn/maps
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-nn")
    parser.add_argument("-o", "--outdir", required=True, metavar="DIR", help="folder for the maps")
    parser.add_argument("--epoch", default="latest", help="which checkpoint: an epoch number or latest (default)")
    parser.add_argument("--flip", action="store_true", help="mirror the maps (invert the hand)")
    parser.add_argument("--force", action="store_true", help="overwrite existing maps")


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.errors import InputError
    from cryoscape.inference.train_nn import generate_volume, load_model
    from cryoscape.io.mrc import write_map
    from cryoscape.io.paths import check_output

    log = logging.getLogger("cryoscape")
    epoch = args.epoch if args.epoch == "latest" else _epoch(args.epoch)
    model, config, chosen = load_model(args.run, epoch)
    if config.get("kind") != "homogeneous":
        raise InputError(f"{args.run}: eval-vol reads runs of train-nn; this run is of kind {config.get('kind')!r}")
    out = check_output(Path(args.outdir) / "vol_000.mrc", args.force)
    volume = generate_volume(model, config)
    if args.flip:
        volume = np.ascontiguousarray(volume[::-1])
    write_map(out, volume, config["apix"], force=args.force)
    log.info("read %s (epoch %d); wrote %s (%d³, %.3f Å/px)", args.run, chosen, out, config["D"], config["apix"])
    return 0


def _epoch(text: str) -> int:
    from cryoscape.errors import InputError

    try:
        return int(text)
    except ValueError:
        raise InputError(f"--epoch takes a number or 'latest', got {text!r}") from None

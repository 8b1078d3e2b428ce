"""Encode particles with a trained VAE: latent means (and variances) of images, trained on or new.

The images are prepared as in training (centred with their shifts, phase-flipped with their CTF,
normalized with the run's scale); the encoder runs in evaluation mode. Writes Z.npy (N, zdim),
latent means in input order, and with --out-var the variances.

Example:
  cryoscape eval-images sim/vae heldout/particles.star -o heldout_z.npy
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import add_ctf_overrides, ctf_overrides, parse_epoch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-vae")
    parser.add_argument("particles", metavar="PARTICLES", help=".star, .cs, or .mrcs/.txt with --poses/--ctf")
    parser.add_argument("-o", "--output", required=True, metavar="Z.npy", help="latent means (N, zdim), .npy")
    parser.add_argument("--out-var", default=None, metavar="VAR.npy", help="also write the latent variances here")
    parser.add_argument(
        "--epoch", type=parse_epoch, default="latest", help="which checkpoint: an epoch number or latest (default)"
    )
    parser.add_argument("--poses", default=None, help="cryoDRGN poses .pkl (for the shifts of a bare stack)")
    parser.add_argument("--ctf", default=None, help="cryoDRGN CTF .pkl")
    parser.add_argument("--datadir", default=None, help="folder for relative image paths in the .star/.cs")
    parser.add_argument("-b", "--batch-size", type=int, default=256, help="images per encoder call (default 256)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    import logging

    import numpy as np

    from cryoscape.data.batching import ParticleBatchSampler, make_dataloader
    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles
    from cryoscape.errors import InputError
    from cryoscape.inference.device import resolve_device
    from cryoscape.inference.run_models import all_particle_outputs, load_model
    from cryoscape.io.paths import check_output
    from cryoscape.io.staging import staged_file

    log = logging.getLogger("cryoscape")
    model, config, epoch = load_model(args.run, args.epoch)
    if "z" not in model.output_dims:
        raise InputError(f"{args.run} is a {config.kind} run; eval-images needs a run with an encoder (train-vae)")
    outputs = [check_output(args.output, args.force)] + (
        [check_output(args.out_var, args.force)] if args.out_var else []
    )
    table = load_particles(
        args.particles,
        datadir=args.datadir,
        poses=args.poses,
        ctf=args.ctf,
        require_ctf=config.training.use_ctf,
        ctf_overrides=ctf_overrides(args),
    )
    if table.box_size != config.data.D:
        raise InputError(f"the particles have a {table.box_size}-pixel box, the run was trained at {config.data.D}")
    device = resolve_device(args.device)
    loader = make_dataloader(
        ImageSource.from_table(table), ParticleBatchSampler(len(table), args.batch_size, shuffle=False)
    )
    encoded = all_particle_outputs(model.to(device), loader, table, config, device, progress=True)
    for path, values in zip(outputs, (encoded["z"], encoded["z_var"])):
        with staged_file(path, args.force) as staged:
            np.save(staged, values)
    log.info(
        "encoded %d particles with %s (epoch %d); wrote %s",
        len(table),
        args.run,
        epoch,
        ", ".join(str(p) for p in outputs),
    )
    return 0

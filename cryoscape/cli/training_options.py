"""Options and start-up shared by the training commands (train-nn, train-vae): the model family
comes from the registry (:mod:`cryoscape.models.registry`), its settings from the options of the
same names, and the engine (:mod:`cryoscape.inference.engine`) trains it."""

from __future__ import annotations

import argparse

from cryoscape.cli.options import add_ctf_overrides, ctf_overrides
from cryoscape.models.registry import families_of


def add_training_arguments(parser: argparse.ArgumentParser, command: str, default_epochs: int) -> None:
    families = families_of(command)
    if len(families) > 1:
        first = next(iter(families))
        parser.add_argument(
            "--model",
            choices=list(families),
            default=first,
            help=f"volume representation (default {first}): "
            + "; ".join(f"{name}: {s.summary}" for name, s in families.items()),
        )
    parser.add_argument("particles", metavar="PARTICLES", help=".star, .cs, or .mrcs/.txt with --poses/--ctf")
    parser.add_argument("-o", "--outdir", required=True, metavar="RUN", help="run folder")
    parser.add_argument(
        "-n",
        "--epochs",
        type=int,
        default=default_epochs,
        help=f"number of passes over the data (default {default_epochs}); with --load, the new total",
    )
    parser.add_argument("--poses", default=None, help="cryoDRGN poses .pkl (replaces the poses of PARTICLES)")
    parser.add_argument("--ctf", default=None, help="cryoDRGN CTF .pkl (replaces the CTF of PARTICLES)")
    parser.add_argument(
        "--ind",
        default=None,
        metavar="INDEX_FILE",
        help="train on these particles only: 0-based rows in a .npy, .txt or cryoDRGN .pkl file "
        "(z.npy then follows their order)",
    )
    parser.add_argument("--datadir", default=None, help="folder for relative image paths in the .star/.cs")
    parser.add_argument("--invert", action="store_true", help="multiply images by -1 (black particles)")
    parser.add_argument("--no-ctf", action="store_true", help="ignore the CTF (CTF-free data)")
    parser.add_argument(
        "--window-r",
        type=float,
        default=0.0,
        metavar="F",
        help="real-space window on the images: 1 within F x the box radius, a cosine edge to 0 at "
        "0.99 x (default 0: none). cryoDRGN applies 0.85 by default; on the adk benchmark it "
        "cost cryoscape 0.03 of held-out FSC area (5.3 -> 6.1 Å), as it cuts the CTF-spread signal",
    )
    parser.add_argument(
        "-b",
        "--batch-size",
        type=int,
        default=None,
        help="images per gradient step, over all processes together (default: the model's, "
        + ", ".join(f"{s.default_batch_size} for {name}" for name, s in families.items())
        + ")",
    )
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate (default: the model's, "
        + ", ".join(f"{s.default_lr:g} for {name}" for name, s in families.items())
        + ")",
    )
    parser.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        metavar="F",
        help="the learning rate falls by F per epoch, smoothly from step to step (default: the "
        "model's, "
        + ", ".join(f"{s.default_lr_decay:g} for {name}" for name, s in families.items())
        + "; 1 = constant)",
    )
    parser.add_argument(
        "--dec-dim",
        "--width",
        dest="width",
        type=int,
        default=256,
        help="neural-field decoder width, nodes per layer (default 256)",
    )
    parser.add_argument(
        "--dec-layers",
        "--depth",
        dest="depth",
        type=int,
        default=3,
        help="neural-field decoder residual hidden layers (default 3)",
    )
    parser.add_argument(
        "--pe",
        dest="encoding",
        choices=("gaussian", "geom_ft", "geom_lowf"),
        default="gaussian",
        help="positional encoding of frequencies (default gaussian; geom_lowf suits noisy data)",
    )
    parser.add_argument(
        "--max-freq",
        type=float,
        default=1.0,
        metavar="F",
        help="band limit of the decoder and the loss, as a fraction of Nyquist (default 1: all "
        "frequencies to radius D/2-1); F < 1 ignores resolutions finer than 2*apix/F Å and "
        "decodes (F)^2 as many points per image, faster where the data hold no signal there. "
        "To choose F: the half-map FSC of `cryoscape backproject` on the same particles should be "
        "near 0 beyond it; leave a margin, as heterogeneity blurs that consensus map (adk benchmark: "
        "FSC < 0.05 from 0.72 x Nyquist, F=0.85 as accurate as F=1 and about 1.3x faster)",
    )
    parser.add_argument(
        "--refine-poses",
        action="store_true",
        help="refine each particle's pose by gradient descent from epoch 2 on (local corrections "
        "to the given poses); writes RUN/refined_particles.star every epoch",
    )
    parser.add_argument(
        "--pose-lr",
        type=float,
        default=3e-3,
        help="step of the pose refinement: radians for rotations, x D/3 pixels for shifts (default 3e-3)",
    )
    parser.add_argument("--in-memory", action="store_true", help="load all images into RAM (default: memory-mapped)")
    parser.add_argument(
        "--workers", type=int, default=0, help="data-loading worker processes (default 0: read in the training process)"
    )
    parser.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bfloat16 mixed precision for the networks (default: on where bfloat16 is native: "
        "CUDA GPUs, and CPUs with AVX512-BF16 or AMX, where it is about 2x faster; off for train-gmm, whose "
        "one network, the encoder, is too small to gain)",
    )
    parser.add_argument("--load", choices=("latest",), default=None, help="resume RUN from its last complete epoch")
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of initialization, batch order and noise (default 0)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when available), cpu, cuda or cuda:N; under torchrun each process takes cuda:LOCAL_RANK",
    )
    parser.add_argument("--force", action="store_true", help="start afresh in an existing RUN folder")
    add_ctf_overrides(parser)


# options of some families only: setting name -> (option, default)
_FAMILY_OPTIONS = {"width": ("--dec-dim", 256), "depth": ("--dec-layers", 3), "encoding": ("--pe", "gaussian")}


def _refuse_options_it_ignores(args: argparse.Namespace, settings) -> None:
    """InputError for a family option given another value than its default to a family without it."""
    from dataclasses import fields

    from cryoscape.errors import InputError

    names = {f.name for f in fields(settings)}
    for name, (option, default) in _FAMILY_OPTIONS.items():
        if name not in names and getattr(args, name, default) != default:
            raise InputError(f"{option} does not apply to --model {settings.option}")


def run_training(args: argparse.Namespace, command: str, prepare=None, finish=None) -> int:
    """Check the run folder, read the particles, train the family ``args`` names (in this process or
    as one of torchrun's). ``prepare(args, table, source)``, when given, runs once the particles are
    read and before the model settings are taken from ``args``: it may set settings that depend on
    the data (e.g. a bead model's start beads). ``finish(args)``, when given, runs in the main
    process once training has ended: it may write outputs from the trained run (e.g. segments.json)."""
    import logging
    from pathlib import Path

    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles
    from cryoscape.errors import InputError, OverwriteError
    from cryoscape.inference.device import bfloat16_is_fast, resolve_device
    from cryoscape.inference.distributed import end_process_group, joined, start_process_group
    from cryoscape.inference.engine import train
    from cryoscape.inference.run_config import RunOrigin, TrainingSettings
    from cryoscape.inference.run_outputs import recorded_log

    families = families_of(command)
    settings = families[args.model] if len(families) > 1 else next(iter(families.values()))
    _refuse_options_it_ignores(args, settings)
    run = Path(args.outdir)
    if args.load and not (run / "config.json").exists():
        raise InputError(f"--load latest: {run} is not a run folder (no config.json)")
    if not args.load and run.exists() and any(run.iterdir()) and not args.force:
        raise OverwriteError(f"{run} exists and is not empty; use --load latest to resume or --force to start afresh")
    owner = not joined()  # abinit-het holds its process group across its VAE runs
    group, device = start_process_group(resolve_device(args.device))
    if device.type == "cpu" and group.is_main:
        logging.getLogger("cryoscape").info(getattr(args, "threads_note", ""))
    try:
        training = TrainingSettings(
            epochs=args.epochs,
            batch_size=settings.default_batch_size if args.batch_size is None else args.batch_size,
            lr=settings.default_lr if args.lr is None else args.lr,
            lr_decay=settings.default_lr_decay if args.lr_decay is None else args.lr_decay,
            invert=args.invert,
            use_ctf=not args.no_ctf,
            window=args.window_r,
            refine_poses=args.refine_poses,
            pose_lr=args.pose_lr,
            amp=(settings.amp_pays and bfloat16_is_fast(device)) if args.amp is None else args.amp,
            num_workers=args.workers,
            seed=args.seed,
        )
        table = load_particles(
            args.particles,
            datadir=args.datadir,
            poses=args.poses,
            ctf=args.ctf,
            require_ctf=not args.no_ctf,
            ctf_overrides=ctf_overrides(args),
        )
        origin = RunOrigin(
            particles=str(Path(args.particles).resolve()),
            ind=str(Path(args.ind).resolve()) if args.ind else "",
            command=getattr(args, "command_line", ""),
        )
        if args.ind is not None:
            from cryoscape.io.selection import read_selection

            table = table.subset(read_selection(args.ind, len(table)))
        source = ImageSource.from_table(table, lazy=not args.in_memory)
        earlier: list = []
        if prepare is not None:
            with recorded_log() as earlier:
                prepare(args, table, source)
        model = settings.from_values(vars(args))
        train(
            source,
            table,
            model,
            training,
            run,
            origin=origin,
            resume=bool(args.load),
            device=device,
            group=group,
            progress=not args.quiet,
            earlier=earlier,
        )
        if finish is not None and group.is_main:
            finish(args)
    finally:
        if owner:
            end_process_group(group)
    return 0

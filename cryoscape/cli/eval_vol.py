"""Generate maps from a trained run (train-nn, train-vae or train-mix).

A run without a latent (train-nn) gives one map. A run with one (train-vae) gives one map per latent value:
-z (one value), --zfile (one value per row, whitespace-separated), or --z-start/--z-end with -n
(evenly spaced points on the line between them). Maps are written as DIR/vol_000.mrc,
DIR/vol_001.mrc, ... (in the order of the latent values) at the data's pixel size (or the larger
one after --downsample), in the units of the input images; DIR/z_values.txt lists the latents used.
A mixture run (train-mix) needs --class C: class C's map, with a latent (--zdim > 0) at the latent
values given or, when none is given, at the median latent of the class's particles (RUN/z.npy of
the particles whose RUN/class.npy is C).

Examples:
  cryoscape eval-vol sim/nn -o sim/nn/maps
  cryoscape eval-vol sim/vae --zfile centres.txt -o sim/vae/maps
  cryoscape eval-vol sim/vae --z-start -2 0 --z-end 2 0 -n 10 -o sim/vae/traversal
  cryoscape eval-vol sim/mix --class 2 -o sim/mix/class2
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_epoch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by train-nn, train-vae or train-mix")
    parser.add_argument("-o", "--outdir", required=True, metavar="DIR", help="folder for the maps")
    parser.add_argument(
        "--epoch", type=parse_epoch, default="latest", help="which checkpoint: an epoch number or latest (default)"
    )
    parser.add_argument("-z", type=float, nargs="+", default=None, metavar="Z", help="one latent value (zdim numbers)")
    parser.add_argument("--zfile", default=None, help="text file, one latent value (zdim numbers) per row")
    parser.add_argument("--z-start", type=float, nargs="+", default=None, metavar="Z", help="first latent of a line")
    parser.add_argument("--z-end", type=float, nargs="+", default=None, metavar="Z", help="last latent of a line")
    parser.add_argument("-n", type=int, default=10, help="number of maps from --z-start to --z-end (default 10)")
    parser.add_argument(
        "--class", dest="class_", type=int, default=None, metavar="C", help="a mixture run's class (0-based)"
    )
    parser.add_argument(
        "--downsample",
        type=int,
        default=None,
        metavar="D",
        help="Fourier-crop the maps to a D-voxel box (the voxel grows accordingly)",
    )
    parser.add_argument(
        "--lowpass", type=float, default=None, metavar="Å", help="low-pass filter at this resolution (Å)"
    )
    parser.add_argument("--flip", action="store_true", help="mirror the maps (invert the hand)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--force", action="store_true", help="overwrite existing maps")


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np
    import torch
    from tqdm import tqdm

    from cryoscape.analysis.bead_models import has_atomic_model, write_atomic_models
    from cryoscape.imaging.fft import downsample_volume
    from cryoscape.imaging.filters import lowpass_volume
    from cryoscape.inference.device import resolve_device
    from cryoscape.inference.run_models import generate_volume, load_model
    from cryoscape.io.mrc import write_map
    from cryoscape.io.paths import check_output
    from cryoscape.io.staging import staged_file

    log = logging.getLogger("cryoscape")
    model, config, chosen = load_model(args.run, args.epoch)
    model, latents = _class_model(args, model, config) if model.n_classes or args.class_ is not None else (model, None)
    latents = latents or _latents(args, config)
    outdir = Path(args.outdir)
    paths = [check_output(outdir / f"vol_{i:03d}.mrc", args.force) for i in range(len(latents))]
    model = model.to(resolve_device(args.device))
    apix = config.data.apix * (config.data.D / args.downsample if args.downsample else 1.0)
    for path, z in tqdm(list(zip(paths, latents)), desc="maps", unit="map", disable=None if len(paths) > 1 else True):
        volume = torch.from_numpy(generate_volume(model, config, None if z is None else torch.from_numpy(z)))
        if args.downsample:
            volume = downsample_volume(volume, args.downsample)
        if args.lowpass:
            volume = lowpass_volume(volume, apix, args.lowpass)
        values = volume.numpy()
        if args.flip:
            values = np.ascontiguousarray(values[::-1])
        write_map(path, values, apix, force=args.force)
    if has_atomic_model(config):
        models = write_atomic_models(model, config, np.stack(latents), outdir, args.force)
        log.info(
            "wrote %d atomic model(s) %s .. %s (the start model's atoms moved)", len(models), models[0], models[-1].name
        )
    if config.zdim:
        with staged_file(outdir / "z_values.txt", force=True) as staged:
            np.savetxt(staged, np.stack(latents), fmt="%.6g")
    log.info(
        "read %s (epoch %d); wrote %d map(s) %s .. %s (%d³, %.3f Å/px)",
        args.run,
        chosen,
        len(paths),
        paths[0],
        paths[-1].name,
        args.downsample or config.data.D,
        apix,
    )
    return 0


def _latents(args: argparse.Namespace, config) -> list:
    """The latent values (each (zdim,) float32) asked for, or [None] for a run without a latent."""
    import numpy as np

    from cryoscape.errors import InputError

    given = [
        name
        for name, value in (("-z", args.z), ("--zfile", args.zfile), ("--z-start", args.z_start))
        if value is not None
    ]
    zdim = config.zdim
    if not zdim:
        if given:
            raise InputError(
                f"{args.run} is a {config.kind} run without a latent; it takes no latent values ({given[0]})"
            )
        return [None]
    if len(given) != 1:
        raise InputError(f"a {config.kind} run needs exactly one of -z, --zfile or --z-start/--z-end")
    if args.z is not None:
        z = np.asarray([args.z], dtype=np.float32)
    elif args.zfile is not None:
        try:
            z = np.loadtxt(args.zfile, dtype=np.float32, ndmin=2)
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read latent values from {args.zfile}: {str(err).splitlines()[0]}") from None
        if len(z) == 0:
            raise InputError(f"{args.zfile} holds no latent values")
    else:
        if args.z_end is None:
            raise InputError("--z-start needs --z-end")
        if args.n < 1:
            raise InputError(f"-n must be at least 1, got {args.n}")
        start, end = np.asarray(args.z_start, np.float32), np.asarray(args.z_end, np.float32)
        if start.shape != end.shape:
            raise InputError(f"--z-start has {start.size} values, --z-end {end.size}")
        z = start + np.linspace(0, 1, args.n, dtype=np.float32)[:, None] * (end - start)
    if z.shape[1] != zdim:
        raise InputError(f"the run's latent dimension is {zdim}, but the latent values have {z.shape[1]} numbers")
    if not np.isfinite(z).all():
        raise InputError("latent values must be finite numbers")
    return list(z)


def _class_model(args: argparse.Namespace, model, config):
    """(class C's volume model, [its particles' median latent] when no latent is given, else None)."""
    from pathlib import Path

    import numpy as np

    from cryoscape.analysis.maps import class_model
    from cryoscape.errors import InputError

    head = class_model(args.run, model, config, args.class_)
    if not config.zdim or any(v is not None for v in (args.z, args.zfile, args.z_start)):
        return head, None
    labels_path, z_path = Path(args.run) / "class.npy", Path(args.run) / "z.npy"
    if not (labels_path.exists() and z_path.exists()):
        raise InputError(f"{args.run} has no class.npy and z.npy for the median latent: give -z or --zfile")
    mine = np.load(z_path)[np.load(labels_path) == args.class_]
    if not len(mine):
        raise InputError(f"no particle of {args.run} is in class {args.class_}: give -z or --zfile")
    return head, [np.median(mine, axis=0).astype(np.float32)]

"""Heterogeneity as Gaussian beads moved per particle, with known poses: e2gmm (beads fitted to a map),
cryoSPHERE (one bead per residue of an atomic model, moved as rigid segments) and cryofold (per-residue
moves held by bond, angle and clash restraints), in one model with the CTF.

Start from a consensus map (--init-map: beads fitted to it, as many as its resolution supports, or
--n-beads) or from an atomic model fitted into the particles' frame (--init-model: one bead per
residue at its Cα, mass = its electrons, σ = 2 Å). The atomic model's coordinates are read in the
frame of a map with origin 0 whose box and voxel are the particles' (voxel i at i · apix Å), as after
fitting it into the consensus map in ChimeraX; --fit instead centres it in the box and fits it
rigidly to the consensus map of the given poses. Before training, the start model is compared with
that consensus map (correlation at 10 Å, in the log, both hands); a model that does not overlap it
is refused.

An encoder maps each phase-flipped image to a latent z; a decoder moves the beads (--deform): free
per-bead offsets (e2gmm), rigid segments over the residue index (cryoSPHERE), or per-residue offsets
held by restraints (cryofold). Loss = the VAE's Gaussian likelihood of the CTF-weighted images +
β·KL/N_pixels (+ restraints in Å²). Writes RUN as train-vae does (config.json, weights.N.pt, z.npy,
log.csv): eval-vol, analyze, landscape, trajectory, select and report read it. For runs started
from an atomic model, eval-vol also writes the moved model (model_000.pdb, ...) and trajectory a
multi-model models.pdb along its path; segment runs write RUN/segments.json (each segment's residue
ranges, and its rotation and centroid shift along each principal direction of z).

Examples:
  cryoscape train-gmm particles.star -o gmm --init-model fitted.pdb --deform segments --zdim 4 -n 20
  cryoscape train-gmm particles.star -o gmm --init-map consensus.mrc --resolution 6 --zdim 4
"""

from __future__ import annotations

import argparse

from cryoscape.cli.training_options import add_training_arguments, run_training

# A run folder is written as training goes (checkpoints to resume from), not staged.
STAGED_OUTPUTS = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_arguments(parser, "train-gmm", default_epochs=8)  # by epoch 8 the lr is down to 8% (0.7⁷)
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--init-model",
        default=None,
        metavar="PDB",
        help="atomic model to start from: a .pdb/.cif file, or the name of a structure shipped with cryoscape "
        "(e.g. adk_closed)",
    )
    start.add_argument("--init-map", default=None, metavar="MAP", help="consensus map (.mrc) to fit beads to")
    parser.add_argument(
        "--deform",
        choices=("free", "segments", "residues"),
        default=None,
        help="how z moves the beads: free per-bead offsets (e2gmm; the default for --init-map), segments "
        "(rigid segments over the residue index, cryoSPHERE; the default for --init-model) or residues "
        "(per-residue offsets held by bond, angle and clash restraints, cryofold)",
    )
    parser.add_argument(
        "--loss",
        choices=("gaussian", "frc", "correlation"),
        default="gaussian",
        help="image term of the loss, over the band: gaussian (the VAE's Gaussian likelihood of the "
        "CTF-weighted images, mean squared error per pixel; the default), frc (1 − mean Fourier ring "
        "correlation, e2gmm) or correlation (1 − correlation with the model image, cryoSPHERE). On "
        "adenylate kinase (benchmarks/gmm_losses.md) gaussian fits the moving end best, orders the motion "
        "best and is fastest; frc fits the end near the start model better",
    )
    parser.add_argument("--zdim", type=int, default=4, help="latent dimension (default 4)")
    parser.add_argument("--segments", dest="n_segments", type=int, default=20, help="rigid segments (default 20)")
    parser.add_argument(
        "--restraint-weight",
        type=float,
        default=1.0,
        help="weight of the restraints (bond and clash; for residues also bond angles), per Å² of "
        "violation, against the per-pixel error (default 1; segments and residues only)",
    )
    parser.add_argument("--fit", action="store_true", help="centre --init-model in the box and fit it rigidly first")
    parser.add_argument("--sigma", type=float, default=2.0, metavar="Å", help="bead width of residues (default 2 Å)")
    parser.add_argument(
        "--resolution",
        type=float,
        default=8.0,
        metavar="Å",
        help="--init-map: the map's resolution; one bead per (resolution/2)³ of density (default 8 Å)",
    )
    parser.add_argument(
        "--n-beads", type=int, default=None, help="--init-map: number of beads (overrides --resolution)"
    )
    parser.add_argument("--enc-dim", dest="enc_width", type=int, default=256, help="encoder width (default 256)")
    parser.add_argument("--enc-layers", dest="enc_depth", type=int, default=3, help="encoder layers (default 3)")
    parser.add_argument("--beta", type=float, default=None, help="weight of the KL term (default 1/zdim)")


def _prepare_start(args: argparse.Namespace, table, source) -> None:
    """Set ``args.beads`` (and ``args.init_model``, absolute) from --init-model or --init-map."""
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.errors import InputError
    from cryoscape.models.bead_start import beads_for_resolution, map_beads, residue_beads

    log = logging.getLogger("cryoscape")
    D, apix = table.box_size, float(np.median(table.apix))
    config = Path(args.outdir) / "config.json"
    if args.load and config.exists():  # resuming: the run's own start (its settings are compared later)
        from cryoscape.inference.run_config import read_run_config

        saved = read_run_config(Path(args.outdir)).model
        args.beads, args.init_model = getattr(saved, "beads", {}), getattr(saved, "init_model", "")
        return
    if args.init_model:
        from cryoscape.analysis.bead_fit import checked_start
        from cryoscape.io.atomic_model import read_atomic_model
        from cryoscape.simulate.conformations import resolve_structure

        args.init_model = str(resolve_structure(args.init_model).resolve())
        model = read_atomic_model(args.init_model)[0]
        start = residue_beads(model, D, apix, args.sigma)
        log.info("start: %d residue beads of %s (σ %.1f Å)", len(start.centers), args.init_model, args.sigma)
        start = checked_start(start, source, table, args.invert, not args.no_ctf, args.fit)
    else:
        from cryoscape.io.mrc import read_map

        if args.fit:
            raise InputError("--fit applies to --init-model only")
        volume, _, _ = read_map(args.init_map)
        if volume.shape[-1] != D:
            raise InputError(f"{args.init_map} is a {volume.shape[-1]}-voxel map; the particles are {D}×{D} pixels")
        n = args.n_beads or beads_for_resolution(volume, apix, args.resolution)
        log.info("fitting %d beads to %s", n, args.init_map)
        start = map_beads(volume, apix, n, seed=args.seed)
        args.init_model = ""
    args.beads = start.to_json()


def main(args: argparse.Namespace) -> int:
    if args.deform is None:
        args.deform = "segments" if args.init_model else "free"
    if args.init_map and args.deform != "free":
        from cryoscape.errors import InputError

        raise InputError(f"--deform {args.deform} needs an atomic model (--init-model); beads from a map move freely")
    finish = _write_segments if args.deform == "segments" else None
    return run_training(args, "train-gmm", prepare=_prepare_start, finish=finish)


def _write_segments(args: argparse.Namespace) -> None:
    """RUN/segments.json: the segments' residue ranges and motions at the last epoch."""
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.analysis.bead_segments import write_segments_json
    from cryoscape.inference.run_models import load_model

    run = Path(args.outdir)
    model, config, epoch = load_model(run)
    summary = write_segments_json(model, config, np.load(run / f"z.{epoch}.npy"), run / "segments.json")
    ranges = "; ".join(
        f"{s['segment']}: " + ", ".join(f"{r['chain']}:{r['first']}-{r['last']}" for r in s["ranges"])
        for s in summary["segments"]
    )
    logging.getLogger("cryoscape").info(
        "wrote %s: %d segments (%s)", run / "segments.json", summary["n_segments"], ranges
    )

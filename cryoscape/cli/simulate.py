"""Simulate a particle stack with ground truth from maps or atomic models.

Each input file is one component (compositional heterogeneity); a multi-model PDB/mmCIF file (a
trajectory) gives one conformation per model (conformational heterogeneity). Shipped structures
can be named without a path: adk_open, adk_closed, adk_dims_closed_to_open, 1hvr, 4E43, 5a7u, 1a28, 19hc.

Writes into OUTDIR: particles.mrcs (RELION contrast: white particles), particles.star (RELION 3.1,
true poses and CTF), gt/*.mrc (one ground-truth map per conformation), labels.npz (component and
conformation of every particle, −1 for junk; true rotations and shifts) and simulation.json.

SNR = variance of the noise-free images over the whole D×D box / noise variance (cryoDRGN's
definition); omit --snr for noise-free images.

Example:
  cryoscape simulate adk_open -o sim --box 64 --apix 1.5 -n 10000 --snr 0.1 --max-shift 4
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import parse_float_list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="maps (.mrc) or atomic models (.pdb/.cif, .gz ok); each file is one component",
    )
    parser.add_argument("-o", "--outdir", required=True, help="output folder")
    parser.add_argument("-n", "--n-particles", type=int, default=1000, help="number of particles (default 1000)")
    parser.add_argument("-D", "--box", type=int, default=64, help="box size in pixels, even (default 64)")
    parser.add_argument("--apix", type=float, default=1.5, help="pixel size in Å (default 1.5)")
    parser.add_argument(
        "--snr",
        type=float,
        default=None,
        help="signal-to-noise ratio (signal variance over the whole image / noise variance); default: no noise",
    )
    parser.add_argument(
        "--max-shift",
        type=float,
        default=0.0,
        help="in-plane shifts uniform in [-S, S] pixels on each axis (default 0)",
    )
    parser.add_argument(
        "--defocus",
        type=parse_float_list,
        default=[10000.0, 25000.0],
        metavar="MIN,MAX",
        help="defocus range in Å, uniform (default 10000,25000)",
    )
    parser.add_argument(
        "--astigmatism",
        type=float,
        default=0.0,
        help="half the defocus difference dfU-dfV, uniform in [0, A] Å, at a random angle (default 0)",
    )
    parser.add_argument("--voltage", type=float, default=300.0, help="acceleration voltage in kV (default 300)")
    parser.add_argument("--cs", type=float, default=2.7, help="spherical aberration in mm (default 2.7)")
    parser.add_argument(
        "--amplitude-contrast", type=float, default=0.1, help="amplitude contrast fraction (default 0.1)"
    )
    parser.add_argument("--ctf-bfactor", type=float, default=0.0, help="CTF envelope B-factor in Å² (default 0)")
    parser.add_argument("--no-ctf", action="store_true", help="simulate without a CTF (pure projections)")
    parser.add_argument(
        "--atom-bfactor",
        type=float,
        default=None,
        help="extra Gaussian blur of atoms in Å² when building maps from models "
        "(default: enough to sample the map well at --apix)",
    )
    parser.add_argument(
        "--model-stride", type=int, default=1, help="use every S-th model of multi-model files (default 1)"
    )
    parser.add_argument(
        "--weights",
        type=parse_float_list,
        default=None,
        metavar="W1,W2,...",
        help="relative abundance of each component (default equal)",
    )
    parser.add_argument(
        "--conformation-weights",
        type=parse_float_list,
        default=None,
        metavar="W1,W2,...",
        help="relative abundance of each model of a single multi-model input (default equal)",
    )
    parser.add_argument("--junk-fraction", type=float, default=0.0, help="fraction of junk particles (default 0)")
    parser.add_argument(
        "--junk-kind",
        choices=("noise", "blobs"),
        default="noise",
        help="junk: pure noise, or projections of random Gaussian blobs (default noise)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same dataset (default 0)")
    parser.add_argument("--batch-size", type=int, default=500, help="images rendered at a time (default 500)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def main(args: argparse.Namespace) -> int:
    import logging

    from cryoscape.errors import InputError
    from cryoscape.simulate.conformations import load_component
    from cryoscape.simulate.particles import SimulationConfig, simulate_dataset

    log = logging.getLogger("cryoscape")
    if len(args.defocus) != 2:
        raise InputError("--defocus takes MIN,MAX in Å")
    config = SimulationConfig(
        n_particles=args.n_particles,
        D=args.box,
        apix=args.apix,
        seed=args.seed,
        snr=args.snr,
        max_shift_px=args.max_shift,
        defocus_min_A=args.defocus[0],
        defocus_max_A=args.defocus[1],
        astigmatism_A=args.astigmatism,
        voltage_kV=args.voltage,
        cs_mm=args.cs,
        amplitude_contrast=args.amplitude_contrast,
        ctf_bfactor_A2=args.ctf_bfactor,
        use_ctf=not args.no_ctf,
        junk_fraction=args.junk_fraction,
        junk_kind=args.junk_kind,
        batch_size=args.batch_size,
    )
    config.validate()
    if args.model_stride < 1:
        raise InputError("--model-stride must be at least 1")
    components = []
    for path in args.inputs:
        comp = load_component(path, config.D, config.apix, args.atom_bfactor, args.model_stride)
        log.info("read %s: component %s with %d conformation(s)", comp.source, comp.name, len(comp.volumes))
        components.append(comp)
    simulate_dataset(
        components,
        config,
        args.outdir,
        force=args.force,
        component_weights=args.weights,
        conformation_weights=args.conformation_weights,
        progress=not args.quiet,
    )
    return 0

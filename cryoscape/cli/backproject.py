"""Reconstruct a map from particles with known poses by Fourier-space backprojection.

Poses and CTF come from a RELION .star (3.0, 3.1, 4, 5) or a cryoSPARC .cs file, or from cryoDRGN
pickles (--poses/--ctf) for a bare .mrcs/.txt stack. The particles are split into two random halves
(or RELION's _rlnRandomSubset when present); each half is reconstructed independently, their FSC
(gold standard, 0.143) sets a per-shell Wiener regularizer, and the full map combines both.

Writes OUT.mrc, OUT_half1.mrc, OUT_half2.mrc and OUT_fsc.png (half-map FSC, and the FSC against
--reference when given); prints the resolutions in Å.

Contrast: particles as RELION writes them (white) reconstruct with positive density; use
--invert for stacks with black particles.

Example:
  cryoscape backproject sim/particles.star -o sim/backproject.mrc --reference sim/gt/00_adk_open.mrc
"""

from __future__ import annotations

import argparse

from cryoscape.cli.options import add_ctf_overrides, ctf_overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("particles", metavar="PARTICLES", help=".star, .cs, or .mrcs/.txt with --poses/--ctf")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mrc", help="output map; half maps go next to it")
    parser.add_argument("--poses", default=None, help="cryoDRGN poses .pkl (rotations, translations as box fractions)")
    parser.add_argument("--ctf", default=None, help="cryoDRGN CTF .pkl (N×9)")
    parser.add_argument("--datadir", default=None, help="folder for relative image paths in the .star/.cs")
    parser.add_argument(
        "--apix", type=float, default=None, help="pixel size in Å of the stored images, overriding the file's"
    )
    parser.add_argument("--invert", action="store_true", help="multiply images by -1 (black particles)")
    parser.add_argument("--no-ctf", action="store_true", help="ignore the CTF (CTF-free data)")
    parser.add_argument(
        "--reference",
        default=None,
        metavar="REF.mrc",
        help="a reference/ground-truth map: also report the FSC of the full map against it",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="load all images into RAM first (faster when it fits; default: memory-mapped)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random half split (default 0)")
    parser.add_argument(
        "--device",
        default="auto",
        help="where to compute: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:N",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from cryoscape.analysis.fsc import plot_fsc
    from cryoscape.data.images import ImageSource
    from cryoscape.data.particle_io import load_particles
    from cryoscape.errors import InputError
    from cryoscape.imaging.fsc import fsc
    from cryoscape.inference.backprojection import backproject
    from cryoscape.inference.device import resolve_device
    from cryoscape.io.mrc import read_map, write_map
    from cryoscape.io.paths import check_output
    from cryoscape.io.staging import staged_file

    log = logging.getLogger("cryoscape")
    out = Path(args.output)
    if out.suffix.lower() != ".mrc":
        raise InputError(f"the output map must end in .mrc, got {out.name}")
    paths = {
        "full": out,
        "half1": out.with_name(out.stem + "_half1.mrc"),
        "half2": out.with_name(out.stem + "_half2.mrc"),
        "plot": out.with_name(out.stem + "_fsc.png"),
    }
    for p in paths.values():
        check_output(p, args.force)
    device = resolve_device(args.device)
    reference = None
    if args.reference:
        reference, _, _ = read_map(args.reference)
    table = load_particles(
        args.particles,
        datadir=args.datadir,
        poses=args.poses,
        ctf=args.ctf,
        apix=args.apix,
        require_ctf=not args.no_ctf,
        ctf_overrides=ctf_overrides(args),
    )
    if reference is not None and reference.shape[0] != table.box_size:
        raise InputError(f"the reference is {reference.shape[0]}³ but the particles are {table.box_size}² pixels")
    source = ImageSource.from_table(table, lazy=not args.in_memory, invert=args.invert)
    result = backproject(
        source,
        table,
        batch_size=args.batch_size,
        use_ctf=not args.no_ctf,
        seed=args.seed,
        progress=not args.quiet,
        device=device,
    )
    write_map(paths["full"], result.volume, result.apix, force=args.force)
    write_map(paths["half1"], result.half_maps[0], result.apix, force=args.force)
    write_map(paths["half2"], result.half_maps[1], result.apix, force=args.force)
    curves = {f"half maps ({result.n_particles[0]} + {result.n_particles[1]} particles)": result.half_map_fsc}
    print(f"half-map FSC=0.143: {result.half_map_fsc.resolution_A(0.143):.2f} Å")
    print(f"half-map FSC=0.5: {result.half_map_fsc.resolution_A(0.5):.2f} Å")
    if reference is not None:
        vs_ref = fsc(result.volume, reference, apix=result.apix)
        curves["full map vs reference"] = vs_ref
        print(f"FSC vs reference=0.5: {vs_ref.resolution_A(0.5):.2f} Å")
        print(f"FSC vs reference=0.143: {vs_ref.resolution_A(0.143):.2f} Å")
    with staged_file(paths["plot"], args.force) as staged:
        plot_fsc(curves, staged, title=Path(args.particles).name)
    log.info("wrote %s, %s, %s and %s", *paths.values())
    return 0

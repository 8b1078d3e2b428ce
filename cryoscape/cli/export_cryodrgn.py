"""Write cryoDRGN's poses.pkl and ctf.pkl from a RELION .star or cryoSPARC .cs file.

The output reproduces `cryodrgn parse_pose_star` + `parse_ctf_star` (or `parse_pose_csparc` +
`parse_ctf_csparc`): poses are (rotations N×3×3, translations N×2 as fractions of the box), with
RELION's Euler matrix and origin sign; the CTF file is an N×9 float32 array
[D, Å/px, defocus U Å, defocus V Å, astigmatism angle °, voltage kV, Cs mm, amplitude contrast,
phase shift °].

For a Fourier-cropped (downsampled) stack give its box with -D: the pixel size written is then the
stored one × stored box / D (or --apix if given), and translations stay the same fraction of the box.

example:
  cryoscape export-cryodrgn Refine3D/job020/run_data.star -D 128 --poses poses.pkl --ctf ctf.pkl
"""

from __future__ import annotations

import argparse
import logging

from cryoscape.cli.options import add_ctf_overrides, ctf_overrides

log = logging.getLogger("cryoscape")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "particles", metavar="PARTICLES", help="RELION .star (3.0, 3.1, 4, 5) or cryoSPARC .cs file with poses and CTF"
    )
    parser.add_argument(
        "-D",
        type=int,
        metavar="BOX",
        help="box size in pixels of the images cryoDRGN will read (default: the box recorded in "
        "PARTICLES, or of its stacks)",
    )
    parser.add_argument(
        "--apix",
        type=float,
        metavar="A",
        help="pixel size in Å/pixel of the images cryoDRGN will read (default: the recorded pixel "
        "size × recorded box / BOX); also used if PARTICLES records no pixel size",
    )
    parser.add_argument(
        "--datadir",
        metavar="DIR",
        help="folder holding the image stacks named in PARTICLES (only used to check them and "
        "to read the box size when PARTICLES lacks it)",
    )
    parser.add_argument("--poses", metavar="poses.pkl", help="output cryoDRGN pose pickle")
    parser.add_argument("--ctf", metavar="ctf.pkl", help="output cryoDRGN CTF pickle")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    from cryoscape.data.particle_io import export_cryodrgn, load_particles  # noqa: PLC0415
    from cryoscape.errors import InputError  # noqa: PLC0415
    from cryoscape.io.paths import check_output  # noqa: PLC0415

    if args.poses is None and args.ctf is None:
        raise InputError("give --poses and/or --ctf output files")
    if args.D is not None and args.D <= 0:
        raise InputError(f"-D must be a positive box size in pixels, got {args.D}")
    if args.apix is not None and args.apix <= 0:
        raise InputError(f"--apix must be a positive pixel size in Å, got {args.apix}")
    for out in (args.poses, args.ctf):
        if out is not None:
            check_output(out, args.force)  # before the (possibly long) read
    table = load_particles(
        args.particles,
        datadir=args.datadir,
        check_stacks=False,
        require_ctf=args.ctf is not None,
        default_box_size=args.D,
        default_apix=args.apix,
        ctf_overrides=ctf_overrides(args),
    )
    if args.D is not None and args.D != table.box_size:
        log.info("exporting for a box of %d px (stored images are %d px)", args.D, table.box_size)
    export_cryodrgn(
        table,
        D=args.D,
        apix=args.apix,
        poses_path=args.poses,
        ctf_path=args.ctf,
        force=args.force,
    )
    return 0

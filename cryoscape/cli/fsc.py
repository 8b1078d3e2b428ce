"""Fourier shell correlation between two maps.

Prints the resolution (Å) where the FSC falls below 0.5 and 0.143 and the area under the curve,
writes the curve as a PNG plot and optionally as a text table. Use 0.143 for independent half
maps (gold standard) and 0.5 for a map against a ground truth or reference.

Example:
  cryoscape fsc half1.mrc half2.mrc --plot fsc.png --mask auto
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map_a", metavar="A.mrc", help="first map")
    parser.add_argument("map_b", metavar="B.mrc", help="second map (same box and voxel size)")
    parser.add_argument(
        "--mask",
        default=None,
        help="'auto' (soft mask around the density of A+B; see cryoscape.analysis.fsc.auto_mask) "
        "or a mask .mrc with values in [0, 1]; default: no mask",
    )
    parser.add_argument("--apix", type=float, default=None, help="voxel size in Å (default: from the header of A)")
    parser.add_argument("--plot", default=None, help="PNG file for the curve (default: A's name with _fsc.png)")
    parser.add_argument("--output", default=None, help="text file with the curve: frequency (1/Å), resolution (Å), FSC")
    parser.add_argument("--force", action="store_true", help="overwrite existing plot/curve files")


def main(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    import numpy as np

    from cryoscape.analysis.fsc import auto_mask, plot_fsc
    from cryoscape.errors import InputError
    from cryoscape.imaging.fsc import fsc
    from cryoscape.io.mrc import read_map
    from cryoscape.io.paths import check_output
    from cryoscape.io.staging import staged_file

    log = logging.getLogger("cryoscape")
    a, voxel_a, _ = read_map(args.map_a)
    b, voxel_b, _ = read_map(args.map_b)
    log.info(
        "read %s (%d³, %.3f Å) and %s (%d³, %.3f Å)", args.map_a, a.shape[0], voxel_a, args.map_b, b.shape[0], voxel_b
    )
    if a.shape != b.shape:
        raise InputError(f"the maps differ in size: {a.shape[0]}³ and {b.shape[0]}³")
    apix = args.apix or voxel_a
    if args.apix is None and abs(voxel_a - voxel_b) > 1e-3 * voxel_a:
        raise InputError(f"the maps differ in voxel size ({voxel_a} and {voxel_b} Å); pass --apix to compare anyway")
    mask = None
    if args.mask == "auto":
        mask = auto_mask(a + b)
    elif args.mask:
        mask, _, _ = read_map(args.mask)
    curve = fsc(a, b, apix=apix, mask=mask)
    plot_path = check_output(args.plot or Path(args.map_a).with_name(Path(args.map_a).stem + "_fsc.png"), args.force)
    with staged_file(plot_path, args.force) as staged:
        plot_fsc({f"{Path(args.map_a).name} vs {Path(args.map_b).name}": curve}, staged)
    log.info("wrote %s", plot_path)
    if args.output:
        out = check_output(args.output, args.force)
        freq = curve.frequency / apix
        res = np.divide(1.0, freq, out=np.full_like(freq, np.inf), where=freq > 0)
        with staged_file(out, args.force) as staged:
            np.savetxt(
                staged, np.column_stack([freq, res, curve.fsc]), fmt="%.6f", header="frequency_1/A resolution_A fsc"
            )
        log.info("wrote %s", out)
    print(f"FSC=0.5: {curve.resolution_A(0.5):.2f} Å")
    print(f"FSC=0.143: {curve.resolution_A(0.143):.2f} Å")
    print(f"AUC: {curve.auc():.3f}")
    return 0

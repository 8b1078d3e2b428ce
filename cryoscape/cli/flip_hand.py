"""Write the mirror image of a map (the other hand).

The hand of an ab initio map is undetermined: the images fit the map and its mirror image equally
well. This writes the mirror image through z (volume [z, y, x]: voxel z takes (2·(D//2) − z) mod D,
so the centre voxel stays in place), the mirror J = diag(1, 1, −1) of cryoscape's pose accuracy
(the flipped map read at p equals the input read at J·p). Flipping twice gives the input back
exactly; the voxel size and origin are kept. To find which hand fits a reference map, use
``cryoscape align``.

Example:
  cryoscape flip-hand abinitio.mrc -o abinitio_flipped.mrc
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map", metavar="MAP.mrc", help="map to mirror")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.mrc", help="mirrored map")
    parser.add_argument("--force", action="store_true", help="overwrite OUT.mrc if it exists")


def main(args: argparse.Namespace) -> int:
    import logging

    from cryoscape.analysis.map_alignment import flip_hand
    from cryoscape.errors import InputError
    from cryoscape.io.mrc import read_map, write_map
    from cryoscape.io.paths import check_not_an_input, check_output

    log = logging.getLogger("cryoscape")
    check_not_an_input(args.output, [args.map])
    check_output(args.output, args.force)
    volume, apix, origin = read_map(args.map)
    if not apix > 0:
        raise InputError(f"{args.map} has no voxel size in its header")
    log.info("the hand of an ab initio map is undetermined; writing the mirror image (through z) of %s", args.map)
    write_map(args.output, flip_hand(volume), apix, origin_A=origin, force=args.force)
    log.info("wrote %s (%d³, %.3f Å)", args.output, volume.shape[0], apix)
    return 0

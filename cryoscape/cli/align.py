"""Superpose a map onto a reference: rotation, translation and hand.

An ab initio map has an arbitrary orientation and position, and its hand is undetermined (the images
fit it and its mirror image equally well). This finds the rotation, translation and hand that best
superpose MAP onto the reference map (same box and voxel size), writes MAP aligned onto the
reference's grid, and prints the rotation (RELION Euler angles), the shift (Å), which hand was kept,
the correlation and the FSC with the reference after alignment. Both hands are tried unless
--no-flip is given.

Convention: the aligned map is A(p) = M'(R·p + t), with p = (x, y, z) in Å from the box centre
(voxel D//2), R the printed rotation, t the printed shift in Å, and M' = MAP, or MAP mirrored
through z (``cryoscape flip-hand``) when the hand was flipped. See
cryoscape.analysis.map_alignment for the method.

Example:
  cryoscape align abinitio.mrc --to reference.mrc -o abinitio_aligned.mrc
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("map", metavar="MAP.mrc", help="map to move (e.g. an ab initio reconstruction)")
    parser.add_argument("--to", required=True, metavar="REF.mrc", help="reference map (same box and voxel size)")
    parser.add_argument(
        "-o", "--output", default=None, metavar="OUT.mrc", help="aligned map (default: MAP's name with _aligned.mrc)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite OUT.mrc if it exists")
    parser.add_argument("--no-flip", action="store_true", help="keep MAP's hand; do not try its mirror image")
    parser.add_argument(
        "--max-resolution",
        type=float,
        default=None,
        metavar="Å",
        help="use frequencies up to this resolution only (default: up to Nyquist)",
    )


def main(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    from cryoscape.analysis.map_alignment import align_maps
    from cryoscape.errors import InputError
    from cryoscape.imaging.fsc import fsc
    from cryoscape.imaging.rotations import matrix_to_euler_relion
    from cryoscape.io.mrc import read_map, write_map
    from cryoscape.io.paths import check_not_an_input, check_output

    log = logging.getLogger("cryoscape")
    output = args.output or Path(args.map).with_name(Path(args.map).stem + "_aligned.mrc")
    check_not_an_input(output, [args.map, args.to])
    check_output(output, args.force)
    moving, apix_m, _ = read_map(args.map)
    reference, apix_r, origin = read_map(args.to)
    if moving.shape != reference.shape:
        raise InputError(
            f"the maps differ in box size: {args.map} is {moving.shape[0]}³, {args.to} {reference.shape[0]}³"
        )
    if not apix_r > 0 or abs(apix_m - apix_r) > 1e-3 * apix_r:
        raise InputError(f"the maps differ in voxel size: {args.map} {apix_m:g} Å, {args.to} {apix_r:g} Å")
    log.info(
        "aligning %s onto %s (%d³, %.3f Å)%s",
        args.map,
        args.to,
        moving.shape[0],
        apix_r,
        "" if args.no_flip else ", trying both hands",
    )
    start = time.perf_counter()
    result = align_maps(moving, reference, apix_r, flip=not args.no_flip, max_resolution_A=args.max_resolution)
    log.info("aligned in %.1f s", time.perf_counter() - start)
    write_map(output, result.aligned, apix_r, origin_A=origin, force=args.force)
    log.info("wrote %s", output)

    rot, tilt, psi = matrix_to_euler_relion(result.rotation)
    x, y, z = result.shift_A
    curve = fsc(result.aligned, reference, apix=apix_r)
    print("The hand of an ab initio map is undetermined.")
    if args.no_flip:
        print("hand: kept as is (the mirror image was not tried: --no-flip)")
    elif result.flipped:
        print(
            f"hand: FLIPPED, MAP is mirrored through z (correlation {result.correlation:.4f} against "
            f"{result.other_hand_correlation:.4f} for MAP's own hand)"
        )
    else:
        print(
            f"hand: kept as is, MAP's own hand fits (correlation {result.correlation:.4f} against "
            f"{result.other_hand_correlation:.4f} for the mirror image)"
        )
    print(f"rotation (RELION rot, tilt, psi): {rot:.2f} {tilt:.2f} {psi:.2f} degrees")
    print(f"shift (x, y, z): {x:.2f} {y:.2f} {z:.2f} Å")
    print(f"  (aligned(p) = {'mirrored ' if result.flipped else ''}MAP(R·p + shift), p in Å from the box centre)")
    print(f"correlation: {result.correlation:.4f}")
    print(f"FSC=0.5: {curve.resolution_A(0.5):.2f} Å")
    print(f"FSC=0.143: {curve.resolution_A(0.143):.2f} Å")
    print(f"wrote {output}")
    return 0

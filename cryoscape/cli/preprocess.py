"""Select, invert and normalize particle images into a new stack.

The steps, in this order, each optional:
  --select   keep only the particles listed in an index file (0-based rows of the input, in the
             file's order: a .npy integer array, or a .txt with one integer per line or
             separated by spaces/commas);
  --invert   multiply every pixel by -1 (e.g. to make protein white for tools that expect it);
  --normalize  subtract the mean and divide by the standard deviation of each image's background,
             i.e. of the pixels at distance >= D/2 pixels from the centre pixel (D/2, D/2): the
             corners outside the circle inscribed in the box. Afterwards the background of every
             image has mean 0 and standard deviation 1 (pixel values are then unitless).

The images are written to OUT.mrcs with the input's pixel size. For a .star or .cs input OUT.star is
written next to it: the selected particles, now pointing at the new stack, with poses, shifts and
CTF unchanged.

example:
  cryoscape preprocess particles.star --select good.npy --normalize -o clean.mrcs
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cryoscape.cli.options import add_ctf_overrides, load_image_input

log = logging.getLogger("cryoscape")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        type=Path,
        help="particle images: a .mrcs/.mrc stack, a .txt list of stacks, or a RELION .star / cryoSPARC .cs file",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT.mrcs",
        help="output stack (.mrcs); for .star/.cs input OUT.star is written next to it",
    )
    parser.add_argument(
        "--select",
        type=Path,
        default=None,
        metavar="INDEX_FILE",
        help="keep only these particles: 0-based row numbers in a .npy or .txt file, "
        "written in the order given (default: all particles)",
    )
    parser.add_argument("--invert", action="store_true", help="invert the contrast (multiply pixels by -1)")
    parser.add_argument(
        "--normalize",
        action="store_true",
        help="make each image's background (pixels at >= D/2 px from the centre) zero-mean "
        "with unit standard deviation",
    )
    parser.add_argument("--chunk", type=int, default=1000, help="images processed at a time (default: %(default)s)")
    parser.add_argument(
        "--datadir", type=Path, default=None, help="folder the image paths of a .star/.cs file are relative to"
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    from cryoscape.data.images import ImageSource, iterate_chunks
    from cryoscape.data.stack_ops import normalize_background, table_on_new_stack
    from cryoscape.errors import InputError
    from cryoscape.io.mrc_writer import StackWriter
    from cryoscape.io.paths import check_input, check_not_an_input, check_output

    check_input(args.input, "input")
    if args.chunk < 1:
        raise InputError(f"--chunk must be positive, got {args.chunk}")
    table, kind = load_image_input(args, args.input, args.datadir)
    log.info("read %d particles of %d×%d px from %s", len(table), table.box_size, table.box_size, args.input)
    if args.select is not None:
        from cryoscape.io.selection import read_selection

        keep = read_selection(args.select, len(table))
        table = table.subset(keep)
        log.info("selected %d particles listed in %s", len(table), args.select)
    star_path = args.output.with_suffix(".star") if kind == "particles" else None
    for output in (args.output, star_path):
        if output is not None:
            check_not_an_input(output, [args.input, *table.image_paths])
            check_output(output, args.force)

    source = ImageSource.from_table(table, lazy=True, invert=args.invert)
    with StackWriter(args.output, len(table), table.box_size, float(table.apix[0]), force=args.force) as writer:
        for indices, images in iterate_chunks(source, args.chunk, desc="preprocessing"):
            if args.normalize:
                images = normalize_background(images, first_index=int(indices[0]))
            writer.write(int(indices[0]), images)
    source.close()
    steps = [s for s, on in (("inverted", args.invert), ("normalized", args.normalize)) if on]
    log.info("wrote %d particles (%s) to %s", len(table), ", ".join(steps) or "copied", args.output)

    if star_path is not None:
        from cryoscape.data.particle_io import save_star

        save_star(star_path, table_on_new_stack(table, args.output), force=args.force)
        log.info("wrote %s", star_path)
    return 0

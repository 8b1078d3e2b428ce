"""Downsample particle images to a smaller box by Fourier cropping.

Each image of box D is Fourier-transformed, the central NEW_BOX × NEW_BOX frequencies are kept and
the result is transformed back (scaled so that the mean pixel value is preserved). The pixel size
becomes apix·D/NEW_BOX Å and the highest frequency kept (Nyquist) is 1/(2·new apix) Å⁻¹. Images are
processed CHUNK at a time and written straight into the output file, so stacks larger than the
computer's memory work.

For a .star or .cs input, OUT.star is written next to the stack: the same particles, now pointing at
the new stack, with the new pixel size; shifts (in Å) and CTF are unchanged.

example:
  cryoscape downsample particles.star -D 128 -o particles.128.mrcs
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from cryoscape.cli.options import add_ctf_overrides, load_image_input

log = logging.getLogger("cryoscape")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input",
        type=Path,
        help="particle images: a .mrcs/.mrc stack, a .txt list of stacks "
        "(one path per line, relative to the .txt), or a RELION .star / cryoSPARC .cs file",
    )
    parser.add_argument(
        "-D",
        "--box",
        type=int,
        required=True,
        metavar="NEW_BOX",
        help="new box size in pixels (even, at most the input box size)",
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
        "--chunk",
        type=int,
        default=1000,
        help="images processed at a time (default: %(default)s); memory use is about chunk × D² × 24 bytes",
    )
    parser.add_argument(
        "--datadir",
        type=Path,
        default=None,
        help="folder the image paths of a .star/.cs file are relative to (default: the file's own folder)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_ctf_overrides(parser)


def main(args: argparse.Namespace) -> int:
    import torch

    from cryoscape.data.images import ImageSource, iterate_chunks
    from cryoscape.data.stack_ops import table_on_new_stack
    from cryoscape.errors import InputError
    from cryoscape.imaging.fft import downsample_images
    from cryoscape.io.mrc_writer import StackWriter
    from cryoscape.io.paths import check_input, check_not_an_input, check_output

    check_input(args.input, "input")
    table, kind = load_image_input(args, args.input, args.datadir)
    D, d = table.box_size, args.box
    if d % 2 or d < 2 or d > D:
        raise InputError(f"new box size must be even and between 2 and {D} (the input box), got {d}")
    if args.chunk < 1:
        raise InputError(f"--chunk must be positive, got {args.chunk}")
    star_path = args.output.with_suffix(".star") if kind == "particles" else None
    for output in (args.output, star_path):
        if output is not None:
            check_not_an_input(output, [args.input, *table.image_paths])
            check_output(output, args.force)

    new_apix = np.asarray(table.apix, dtype=np.float64) * D / d
    if len(np.unique(new_apix)) > 1:
        log.warning(
            "the particles have different pixel sizes; the stack header gets the first one (%.4f Å)", new_apix[0]
        )
    log.info("read %d particles of %d×%d px (%.4f Å/px) from %s", len(table), D, D, table.apix[0], args.input)

    source = ImageSource.from_table(table, lazy=True)
    with StackWriter(args.output, len(table), d, float(new_apix[0]), force=args.force) as writer:
        for indices, images in iterate_chunks(source, args.chunk, desc="downsampling"):
            small = downsample_images(torch.from_numpy(images), d).numpy()
            writer.write(int(indices[0]), small)
    source.close()
    log.info("wrote %d particles of %d×%d px (%.4f Å/px) to %s", len(table), d, d, new_apix[0], args.output)

    if star_path is not None:
        from cryoscape.data.particle_io import save_star

        save_star(star_path, table_on_new_stack(table, args.output, box_size=d, apix=new_apix), force=args.force)
        log.info("wrote %s", star_path)
    return 0

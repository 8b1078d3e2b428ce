"""Argument types shared by several commands."""

from __future__ import annotations

import argparse


def parse_float_list(text: str) -> list[float]:
    """'1,2.5,3' -> [1.0, 2.5, 3.0]."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def parse_epoch(text: str) -> int | str:
    """'latest' or an epoch number (for --epoch)."""
    if text == "latest":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an epoch number or 'latest', got {text!r}") from None


def parse_int_list(text: str) -> list[int]:
    """'0,3,7' -> [0, 3, 7]."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def parse_range(text: str) -> tuple[int, float, float]:
    """'DIM:MIN:MAX' (DIM 1-based) -> (0-based column, min, max)."""
    try:
        dim, low, high = text.split(":")
        column = int(dim) - 1
        if column < 0:
            raise ValueError
        return column, float(low), float(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DIM:MIN:MAX with DIM counted from 1, got {text!r}") from None


def add_ctf_overrides(parser: argparse.ArgumentParser) -> None:
    """cryoDRGN's CTF options (--kv, --cs, -w, --ps) for a command that reads particles: each fills the
    particle file's missing column or replaces it (:class:`cryoscape.data.particles.CTFOverrides`)."""
    group = parser.add_argument_group(
        "CTF values",
        "used where the particle file lacks the column, or instead of it (the log says which)",
    )
    group.add_argument("--kv", type=float, default=None, metavar="KV", help="voltage in kV (e.g. 300)")
    group.add_argument("--cs", type=float, default=None, metavar="MM", help="spherical aberration in mm (e.g. 2.7)")
    group.add_argument(
        "-w", type=float, default=None, metavar="W", help="amplitude contrast ratio, a fraction (e.g. 0.1)"
    )
    group.add_argument("--ps", type=float, default=None, metavar="DEG", help="phase shift in degrees (e.g. 0)")


def ctf_overrides(args: argparse.Namespace):
    """The :class:`~cryoscape.data.particles.CTFOverrides` of the options of :func:`add_ctf_overrides`
    (InputError for a value out of range)."""
    from cryoscape.data.particles import CTFOverrides  # noqa: PLC0415 - keeps --help fast

    return CTFOverrides(voltage_kV=args.kv, cs_mm=args.cs, amplitude_contrast=args.w, phase_shift_deg=args.ps)


def load_image_input(args: argparse.Namespace, path, datadir):
    """(table, kind) of an image input of downsample/preprocess: a .star/.cs is read with the CTF
    options of ``args`` (so that its output star carries them), any other input as
    :func:`cryoscape.data.images.load_image_table` reads it."""
    from pathlib import Path  # noqa: PLC0415

    from cryoscape.data.images import load_image_table  # noqa: PLC0415
    from cryoscape.data.particle_io import load_particles  # noqa: PLC0415

    if Path(path).suffix.lower() in (".star", ".cs"):
        return load_particles(path, datadir=datadir, ctf_overrides=ctf_overrides(args)), "particles"
    return load_image_table(path, datadir)

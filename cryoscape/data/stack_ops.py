"""Helpers of the preprocessing commands: a table moved onto a new stack, and background
normalization of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError


def table_on_new_stack(
    table: ParticleTable, stack_path: str | Path, box_size: int | None = None, apix: np.ndarray | None = None
) -> ParticleTable:
    """A copy of ``table`` whose particle i is image i of the (new) stack ``stack_path``.

    ``box_size`` (pixels) and ``apix`` (Å, (N,) or scalar) replace the table's when given; poses,
    shifts in Å, CTF and metadata are kept. Image-name columns in the metadata (``rlnImageName``,
    ``blob/path``, ``blob/idx``) are updated to the new stack.
    """
    from dataclasses import replace

    stack_path = str(Path(stack_path).resolve())
    n = len(table)
    new = replace(
        table,
        image_paths=np.full(n, stack_path, dtype=object),
        image_indices=np.arange(n, dtype=np.int64),
        box_size=int(table.box_size if box_size is None else box_size),
        apix=np.broadcast_to(np.asarray(table.apix if apix is None else apix, dtype=np.float64), (n,)).copy(),
        metadata=table.metadata.copy(),
    )
    meta = new.metadata
    if len(meta):
        if "rlnImageName" in meta:
            meta["rlnImageName"] = [f"{i + 1:06d}@{stack_path}" for i in range(n)]
        if "blob/path" in meta:
            meta["blob/path"] = stack_path
        if "blob/idx" in meta:
            meta["blob/idx"] = np.arange(n)
        if "blob/shape" in meta:
            meta["blob/shape"] = [np.array([new.box_size, new.box_size])] * n
        if "blob/psize_A" in meta:
            meta["blob/psize_A"] = new.apix
        for column in ("rlnImagePixelSize",):
            if column in meta:
                meta[column] = new.apix
        if "rlnImageSize" in meta:
            meta["rlnImageSize"] = new.box_size
    return new


def background_mask(D: int) -> np.ndarray:
    """Boolean (D, D) mask of the background: pixels at distance ≥ D/2 from the centre pixel
    ``(D/2, D/2)`` (the corners outside the inscribed circle)."""
    y, x = np.mgrid[:D, :D] - D // 2
    return x * x + y * y >= (D / 2) ** 2


def normalize_background(images: np.ndarray, first_index: int = 0) -> np.ndarray:
    """Images ``(B, D, D)`` shifted and scaled to zero mean and unit standard deviation of their
    background (:func:`background_mask`). Raises InputError for an image with a constant
    background (particle number = ``first_index`` + position in the batch)."""
    images = np.asarray(images, dtype=np.float32)
    mask = background_mask(images.shape[-1])
    bg = images[:, mask].astype(np.float64)
    mean, std = bg.mean(axis=1), bg.std(axis=1)
    flat = ~(std > 0)
    if flat.any():
        raise InputError(
            f"particle {first_index + int(np.flatnonzero(flat)[0])} has a constant background; cannot normalize it"
        )
    return ((images - mean[:, None, None]) / std[:, None, None]).astype(np.float32)

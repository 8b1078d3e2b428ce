"""Particle stacks written chunk by chunk (:class:`StackWriter`, :func:`write_stack`): ``(N, D, D)``
float32 ``.mrcs`` files indexed ``[i, y, x]``, staged (:mod:`cryoscape.io.staging`) so that an
interrupted write never leaves a stack under its name.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import mrcfile
import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.paths import check_output
from cryoscape.io.staging import staged_file

log = logging.getLogger("cryoscape")


class StackWriter:
    """Write a ``(n_images, D, D)`` float32 stack chunk by chunk, for stacks larger than RAM.

    The file is created at once with its final header (mode 2, image stack, ``apix`` Å) and filled
    through a memory map: ``writer.write(start, images)`` stores ``images`` (B, D, D) as images
    ``start .. start+B-1``. ``close()`` writes the header statistics; it raises InputError if some
    images were never written. Use as a context manager.
    """

    def __init__(self, path: str | Path, n_images: int, D: int, apix: float, force: bool = False):
        if n_images < 1 or D < 1:
            raise InputError(f"cannot write {path}: need at least one image of positive size, got {n_images}×{D}×{D}")
        self.path = check_output(path, force)
        self.n, self.D, self.apix = int(n_images), int(D), float(apix)
        self._staging = staged_file(self.path, force)
        temp = self._staging.__enter__()
        try:
            self._mrc = mrcfile.new_mmap(temp, shape=(self.n, self.D, self.D), mrc_mode=2, overwrite=True)
            _allocate(temp)
        except BaseException:
            self._discard(*sys.exc_info())
            raise
        self._mrc.set_image_stack()
        if self.apix > 0:
            self._mrc.voxel_size = self.apix
        self._written = np.zeros(self.n, dtype=bool)
        self._min, self._max = np.inf, -np.inf
        self._sum = self._sumsq = 0.0

    def write(self, start: int, images: np.ndarray) -> None:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 2:
            images = images[None]
        if images.shape[1:] != (self.D, self.D):
            raise InputError(
                f"cannot write {self.path}: images of shape {images.shape[1:]} into a stack of {self.D}×{self.D}"
            )
        stop = start + len(images)
        if start < 0 or stop > self.n:
            raise InputError(f"cannot write {self.path}: images {start}..{stop - 1} outside a stack of {self.n}")
        self._mrc.data[start:stop] = images
        if len(images):
            self._min = min(self._min, float(images.min()))
            self._max = max(self._max, float(images.max()))
            self._sum += float(images.sum(dtype=np.float64))
            self._sumsq += float(np.einsum("ijk,ijk->", images, images, dtype=np.float64))
        self._written[start:stop] = True

    def close(self) -> None:
        if self._mrc is None:
            return
        missing = int((~self._written).sum())
        count = self.n * self.D * self.D
        header = self._mrc.header
        header.dmin, header.dmax = (self._min, self._max) if np.isfinite(self._min) else (0.0, 0.0)
        mean = self._sum / count
        header.dmean = mean
        header.rms = float(np.sqrt(max(self._sumsq / count - mean * mean, 0.0)))
        if missing:
            error = InputError(f"{self.path}: {missing} of {self.n} images were never written")
            self._discard(InputError, error, None)
            raise error
        self._mrc.close()
        self._mrc = None
        self._staging.__exit__(None, None, None)
        log.debug("wrote stack %s (%d × %d² px, %.4f Å)", self.path, self.n, self.D, self.apix)

    def __enter__(self) -> StackWriter:
        return self

    def _discard(self, exc_type, exc, tb) -> None:
        """Release and remove the staged file (an error is on its way; OutputError if it was an OSError)."""
        if getattr(self, "_mrc", None) is not None:
            self._mrc.close()
        self._mrc = None
        self._staging.__exit__(exc_type, exc, tb)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._mrc is not None:
            self._discard(exc_type, exc, tb)


def _allocate(path: Path) -> None:
    """Reserve the disk blocks of a memory-mapped file now: on a full disk, writing through the map
    would kill the process with SIGBUS; reserving raises ENOSPC here instead."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)


def write_stack(path: str | Path, images: np.ndarray, apix: float, force: bool = False) -> Path:
    """Write images ``(N, D, D)`` (or one ``(D, D)``) as a float32 ``.mrcs`` stack with pixel size ``apix`` Å."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise InputError(f"cannot write {path}: images must be (N, D, D), got shape {images.shape}")
    with StackWriter(path, len(images), images.shape[1], apix, force) as writer:
        writer.write(0, images)
    return writer.path

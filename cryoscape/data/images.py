"""Particle images of a :class:`~cryoscape.data.particles.ParticleTable`: lazy or in-memory access,
and chunked streaming for whole-dataset passes.

Images are ``(B, D, D)`` float32 arrays indexed ``[i, y, x]``; ``i`` is the row of the particle
table (0-based), not the slice of a stack. Pixel size and box size are those of the stored images.

- :class:`ImageSource` fetches images by table row. ``lazy=True`` reads stacks through memory maps
  (pages are read from disk on demand and live in the OS page cache, not in the process's
  anonymous memory), at most :func:`open_stack_limit` of them per process; further stacks are
  read with ``preadv`` through a descriptor held for one call (RELION writes one stack per
  micrograph: a map per stack would exhaust the file descriptors). ``lazy=False`` reads
  everything into one array up front.
- :mod:`cryoscape.data.batching` gives shuffled index batches and a DataLoader over them.
- :func:`iterate_chunks` streams all particles in order (for downsampling, preprocessing, ...).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cryoscape.data.particles import ParticleTable
from cryoscape.errors import InputError
from cryoscape.io.mrc_stacks import MRCStack, TooManyOpenFiles, fd_limit, read_stack_list
from cryoscape.io.paths import check_input

log = logging.getLogger("cryoscape")

# fraction of the available memory an in-memory load may take
MEMORY_FRACTION = 0.8
# open stacks per process: at most this many, and at most 1/8 of the open-file limit
MAX_OPEN_STACKS = 128


def open_stack_limit() -> int:
    """How many stacks a lazy ImageSource keeps open (mapped) in this process: ``MAX_OPEN_STACKS``,
    or an eighth of the soft RLIMIT_NOFILE if that is smaller (each open stack holds one file
    descriptor; DataLoader workers are processes, each with its own limit and its own stacks)."""
    return max(1, min(MAX_OPEN_STACKS, fd_limit() // 8))


def available_memory_bytes() -> int:
    """Memory the process can still use, in bytes: ``MemAvailable`` of /proc/meminfo (Linux),
    else free physical pages from ``os.sysconf``."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------------------------
# tables from image files


def load_image_table(path: str | Path, datadir: str | Path | None = None) -> tuple[ParticleTable, str]:
    """A ParticleTable for any image input, with the kind of input.

    ``.mrcs``/``.mrc`` (one stack) and ``.txt`` (a list of stacks) give a pose-free table, kind
    "stack" (pixel size from the header, 0.0 where it has none); ``.star``/``.cs`` are read by
    :func:`cryoscape.data.particle_io.load_particles` (``datadir`` = where their image paths are
    relative to), kind "particles".
    """
    from cryoscape.data.particle_io import load_particles, load_stacks

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".mrcs", ".mrc"):
        return load_stacks([check_input(path, "image stack")], header_apix_optional=True), "stack"
    if suffix == ".txt":
        return load_stacks(read_stack_list(path), header_apix_optional=True), "stack"
    if suffix in (".star", ".cs"):
        return load_particles(path, datadir=datadir), "particles"
    raise InputError(f"{path}: unknown image input type '{suffix}' (expected .mrcs, .mrc, .txt, .star or .cs)")


# ----------------------------------------------------------------------------------------------
# image source


class ImageSource:
    """The images of a particle table, fetched by table row.

    ``get(indices)`` returns float32 ``(B, D, D)`` in the requested order. ``lazy=True`` reads only
    what is asked: the first ``max_open_stacks`` stacks used (default :func:`open_stack_limit`,
    evaluated in each process) stay memory-mapped, one file descriptor each; the others are read
    through a descriptor held for one ``get`` (:meth:`MRCStack.read_unmapped`). A DataLoader
    worker, forked or spawned, maps its own stacks and never uses (or counts) its parent's.
    ``lazy=False`` loads all images into memory at construction, refusing (InputError) if they
    would take more than 80% of the available memory. ``invert`` multiplies images by -1.
    ``check_finite`` raises InputError naming the particle if a fetched image holds NaN/Inf.

    At construction every referenced stack must exist, be square with the table's box size, and
    hold every referenced index.
    """

    def __init__(
        self,
        image_paths: np.ndarray,
        image_indices: np.ndarray,
        box_size: int,
        lazy: bool = True,
        invert: bool = False,
        check_finite: bool = True,
        max_open_stacks: int | None = None,
    ):
        image_paths = np.asarray(image_paths)
        self.image_indices = np.asarray(image_indices).astype(np.int64).ravel()
        if len(image_paths) != len(self.image_indices):
            raise InputError(f"{len(image_paths)} image paths but {len(self.image_indices)} image indices")
        self.D = int(box_size)
        self.lazy, self.invert, self.check_finite = bool(lazy), bool(invert), bool(check_finite)
        unique, self._path_id = np.unique(image_paths.astype(str), return_inverse=True)
        self.paths = [Path(p) for p in unique]
        if max_open_stacks is not None and max_open_stacks < 1:
            raise InputError(f"max_open_stacks must be at least 1, got {max_open_stacks}")
        self.max_open_stacks = max_open_stacks
        self._all: list[MRCStack] = []  # one per path, header read; mapped only if in _stacks
        self._stacks: dict[int, MRCStack] = {}  # the mapped ones
        self._limit: int | None = None  # max mapped stacks, set in each process at its first read
        self._pid = os.getpid()
        self._validate()
        self._data: np.ndarray | None = None
        if not self.lazy:
            self._load_all()

    @classmethod
    def from_table(
        cls,
        table: ParticleTable,
        lazy: bool = True,
        invert: bool = False,
        check_finite: bool = True,
        max_open_stacks: int | None = None,
    ) -> ImageSource:
        return cls(
            table.image_paths,
            table.image_indices,
            table.box_size,
            lazy=lazy,
            invert=invert,
            check_finite=check_finite,
            max_open_stacks=max_open_stacks,
        )

    def __len__(self) -> int:
        return len(self.image_indices)

    @property
    def nbytes(self) -> int:
        """Bytes that all images take in memory as float32."""
        return len(self) * self.D * self.D * 4

    def _validate(self) -> None:
        for k, path in enumerate(self.paths):
            if not path.exists():
                raise InputError(f"image stack {path} does not exist")
            self._all.append(MRCStack(path))
            n, D = self._all[-1].n, self._all[-1].D
            if D != self.D:
                raise InputError(f"image stack {path} holds {D}×{D} images but the particles have box size {self.D}")
            rows = np.flatnonzero(self._path_id == k)
            idx = self.image_indices[rows]
            bad = (idx < 0) | (idx >= n)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"particle {int(rows[first])} refers to image {int(idx[first])} of {path}, which holds only {n} images"
                )

    def _mapped(self, k: int) -> MRCStack | None:
        """Stack ``k`` if it is (or may now be) mapped in this process, else None."""
        if self._pid != os.getpid():  # forked: the parent's maps are not ours to use or count
            self.close()
            self._pid, self._limit = os.getpid(), None
        stack = self._stacks.get(k)
        if self._limit is None:  # once per process
            self._limit = self.max_open_stacks or open_stack_limit()
        if stack is None and len(self._stacks) < self._limit:
            try:
                self._all[k].open()
            except TooManyOpenFiles:  # other files took the descriptors: read it unmapped
                return None
            stack = self._stacks[k] = self._all[k]
        return stack

    def _read(self, k: int, image_indices: np.ndarray, out: np.ndarray, rows: np.ndarray) -> None:
        stack = self._mapped(k)
        if stack is not None:
            stack.read_into(image_indices, out, rows)
        else:
            self._all[k].read_unmapped(image_indices, out, rows)

    def _load_all(self) -> None:
        from tqdm.auto import tqdm

        need, have = self.nbytes, available_memory_bytes()
        if need > MEMORY_FRACTION * have:
            raise InputError(
                f"loading {len(self)} images of {self.D}×{self.D} needs {need / 2**30:.1f} GiB but only "
                f"{have / 2**30:.1f} GiB of memory is available; use lazy loading instead"
            )
        log.info("loading %d images (%.2f GiB) into memory", len(self), need / 2**30)
        data = np.empty((len(self), self.D, self.D), dtype=np.float32)
        with tqdm(total=len(self), unit="img", desc="loading images", disable=None) as bar:
            for k, stack in enumerate(self._all):
                rows = np.flatnonzero(self._path_id == k)
                for start in range(0, len(rows), 4096):
                    part = rows[start : start + 4096]
                    stack.read_unmapped(self.image_indices[part], data, part)
                    bar.update(len(part))
        self._data = data

    def _check_rows(self, indices) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise InputError(f"particle indices must be integers, got {indices.dtype}")
        indices = indices.astype(np.int64).ravel()
        bad = (indices < 0) | (indices >= len(self))
        if bad.any():
            raise InputError(f"particle index {int(indices[bad][0])} is out of range (there are {len(self)} particles)")
        return indices

    def get(self, indices) -> np.ndarray:
        """Images ``(B, D, D)`` float32 of table rows ``indices`` (B,), in that order."""
        indices = self._check_rows(indices)
        if self._data is not None:
            out = self._data[indices]
        elif len(self.paths) == 1:  # one stack: no grouping
            out = np.empty((len(indices), self.D, self.D), dtype=np.float32)
            self._read(0, self.image_indices[indices], out, np.arange(len(indices)))
        else:
            out = np.empty((len(indices), self.D, self.D), dtype=np.float32)
            path_ids = self._path_id[indices]
            order = np.argsort(path_ids, kind="stable")  # rows of out grouped by stack
            ks, starts = np.unique(path_ids[order], return_index=True)
            for k, where in zip(ks.tolist(), np.split(order, starts[1:])):
                self._read(k, self.image_indices[indices[where]], out, where)
        if self.invert:
            np.negative(out, out=out)
        if self.check_finite and len(out):
            # a float64 sum is non-finite iff a pixel is NaN/Inf (finite float32 cannot overflow it);
            # cheaper than np.isfinite over every pixel
            finite = np.isfinite(out.sum(axis=(1, 2), dtype=np.float64))
            if not finite.all():
                j = int(np.flatnonzero(~finite)[0])
                row = int(indices[j])
                raise InputError(
                    f"particle {row} (image {int(self.image_indices[row])} of {self.paths[self._path_id[row]]}) holds NaN/Inf pixels"
                )
        return out

    def close(self) -> None:
        """Close the open stacks (they reopen on the next ``get``)."""
        for stack in self._stacks.values():
            stack.close()
        self._stacks.clear()

    def __getstate__(self) -> dict:
        # open memory maps do not travel to DataLoader workers; each worker opens its own
        state = self.__dict__.copy()
        state["_stacks"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid, self._limit = os.getpid(), None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------
# batching


def iterate_chunks(
    source: ImageSource, chunk_size: int = 1000, desc: str = "images"
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream all particles in table order: yields ``(indices (B,), images (B, D, D))`` chunks,
    with a tqdm progress bar (hidden when not on a terminal)."""
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise InputError(f"chunk size must be positive, got {chunk_size}")
    with tqdm(total=len(source), unit="img", desc=desc, disable=None) as bar:
        for start in range(0, len(source), chunk_size):
            indices = np.arange(start, min(start + chunk_size, len(source)))
            yield indices, source.get(indices)
            bar.update(len(indices))

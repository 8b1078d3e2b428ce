"""Particle images of a :class:`~cryoscape.data.particles.ParticleTable`: lazy or in-memory access,
batching for training loops, and chunked streaming for whole-dataset passes.

Images are ``(B, D, D)`` float32 arrays indexed ``[i, y, x]``; ``i`` is the row of the particle
table (0-based), not the slice of a stack. Pixel size and box size are those of the stored images.

- :class:`ImageSource` fetches images by table row. ``lazy=True`` keeps each stack memory-mapped
  (pages are read from disk on demand and live in the OS page cache, not in the process's
  anonymous memory); ``lazy=False`` reads everything into one array up front.
- :func:`iterate_batches` / :class:`ParticleBatchSampler` + :class:`ParticleImageDataset` give
  shuffled index batches; with ``DataLoader(dataset, sampler=sampler, batch_size=None)`` each
  worker fetches a whole batch with one call.
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
from cryoscape.io.mrc import MRCStack, read_stack_list, stack_info
from cryoscape.io.paths import check_input

log = logging.getLogger("cryoscape")

# fraction of the available memory an in-memory load may take
MEMORY_FRACTION = 0.8


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

    ``get(indices)`` returns float32 ``(B, D, D)`` in the requested order. ``lazy=True`` keeps one
    memory-mapped :class:`MRCStack` per distinct stack (opened on first use) and reads only what
    is asked; ``lazy=False`` loads all images into memory at construction, refusing (InputError)
    if they would take more than 80% of the available memory. ``invert`` multiplies images by -1.
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
    ):
        image_paths = np.asarray(image_paths)
        self.image_indices = np.asarray(image_indices).astype(np.int64).ravel()
        if len(image_paths) != len(self.image_indices):
            raise InputError(f"{len(image_paths)} image paths but {len(self.image_indices)} image indices")
        self.D = int(box_size)
        self.lazy, self.invert, self.check_finite = bool(lazy), bool(invert), bool(check_finite)
        unique, self._path_id = np.unique(image_paths.astype(str), return_inverse=True)
        self.paths = [Path(p) for p in unique]
        self._stacks: dict[int, MRCStack] = {}
        self._validate()
        self._data: np.ndarray | None = None
        if not self.lazy:
            self._load_all()

    @classmethod
    def from_table(
        cls, table: ParticleTable, lazy: bool = True, invert: bool = False, check_finite: bool = True
    ) -> ImageSource:
        return cls(
            table.image_paths, table.image_indices, table.box_size, lazy=lazy, invert=invert, check_finite=check_finite
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
            n, D, _ = stack_info(path)
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

    def _stack(self, k: int) -> MRCStack:
        stack = self._stacks.get(k)
        if stack is None:
            stack = self._stacks[k] = MRCStack(self.paths[k])
        return stack

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
            for k in range(len(self.paths)):
                rows = np.flatnonzero(self._path_id == k)
                stack = self._stack(k)
                for start in range(0, len(rows), 4096):
                    part = rows[start : start + 4096]
                    stack.read_into(self.image_indices[part], data, part)
                    bar.update(len(part))
                stack.close()
                del self._stacks[k]
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
        elif len(self.paths) == 1:  # one stack: no grouping, no second copy
            out = self._stack(0).get(self.image_indices[indices])
        else:
            out = np.empty((len(indices), self.D, self.D), dtype=np.float32)
            path_ids = self._path_id[indices]
            for k in np.unique(path_ids):
                where = np.flatnonzero(path_ids == k)
                self._stack(int(k)).read_into(self.image_indices[indices[where]], out, where)
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
        # open memory maps do not travel to DataLoader workers; each worker reopens its own
        state = self.__dict__.copy()
        state["_stacks"] = {}
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------
# batching


def _batches(n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool) -> list[np.ndarray]:
    if batch_size < 1:
        raise InputError(f"batch size must be positive, got {batch_size}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return [order[i : min(i + batch_size, stop)] for i in range(0, stop, batch_size)]


def iterate_batches(
    n: int, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays covering ``range(n)`` once, ``batch_size`` at a time.

    With ``shuffle`` the order is a permutation drawn from ``seed``; ``drop_last`` drops a final
    short batch.
    """
    yield from _batches(n, batch_size, shuffle, seed, drop_last)


class ParticleBatchSampler:
    """Batches of particle indices for ``DataLoader(..., sampler=this, batch_size=None)``.

    Each epoch uses the permutation of ``seed + epoch`` (call :meth:`set_epoch`). For distributed
    training give ``rank`` and ``world_size``: every rank takes its share ``batch[rank::world_size]``
    of each batch of the same permutation, so that the ranks together process exactly the batches
    one process would (a final batch smaller than ``world_size`` is dropped).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise InputError(f"rank {rank} is outside a world of size {world_size}")
        if batch_size < world_size:
            raise InputError(f"batch size {batch_size} is smaller than the number of processes {world_size}")
        self.n, self.batch_size, self.shuffle, self.seed, self.drop_last = n, batch_size, shuffle, seed, drop_last
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _mine(self) -> list[np.ndarray]:
        batches = _batches(self.n, self.batch_size, self.shuffle, self.seed + self.epoch, self.drop_last)
        if self.world_size == 1:
            return batches
        return [b[self.rank :: self.world_size] for b in batches if len(b) >= self.world_size]

    def __iter__(self) -> Iterator[np.ndarray]:
        yield from self._mine()

    def __len__(self) -> int:
        return len(self._mine())


class ParticleImageDataset:
    """A map-style torch dataset whose items are whole batches: ``dataset[indices]`` returns
    ``(images (B, D, D) float32 tensor, indices (B,) int64 tensor)``; an int index gives B = 1.

    Use with :class:`ParticleBatchSampler` and ``batch_size=None`` so that one worker reads one
    batch with a single grouped :meth:`ImageSource.get`. (It does not subclass
    ``torch.utils.data.Dataset``, which DataLoader does not require, so that importing this module
    does not import torch.)
    """

    def __init__(self, source: ImageSource):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, indices):
        import torch

        indices = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        return torch.from_numpy(self.source.get(indices)), torch.from_numpy(indices)


def make_dataloader(source: ImageSource, sampler: ParticleBatchSampler, num_workers: int = 0):
    """A ``torch.utils.data.DataLoader`` yielding ``(images (B, D, D), indices (B,))`` batches in the
    order of ``sampler``; workers stay alive between epochs."""
    from typing import cast  # noqa: PLC0415

    from torch.utils.data import DataLoader, Dataset  # noqa: PLC0415

    dataset = cast(Dataset, ParticleImageDataset(source))  # a map-style dataset, duck-typed
    return DataLoader(
        dataset, sampler=sampler, batch_size=None, num_workers=num_workers, persistent_workers=num_workers > 0
    )


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


# ----------------------------------------------------------------------------------------------
# helpers of the preprocessing commands


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

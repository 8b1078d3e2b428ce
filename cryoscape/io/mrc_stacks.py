"""Particle stacks (``.mrcs``): read memory-mapped (:class:`MRCStack`: only the requested images are
copied into memory; a map holds one file descriptor and can be closed and made again), listed in a
``.txt`` file (:func:`read_stack_list`); written by :mod:`cryoscape.io.mrc_writer`. A stack is
``(N, D, D)`` float32 indexed ``[i, y, x]``.

Every problem with a file raises :class:`cryoscape.errors.InputError` with a one-line message that
names the file.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.mrc import first_line, stack_info
from cryoscape.io.paths import check_input

log = logging.getLogger("cryoscape")


class TooManyOpenFiles(InputError):
    """A stack could not be opened because the process has used up its file descriptors (EMFILE)."""


def fd_limit() -> int:
    """This process's soft limit on open files (RLIMIT_NOFILE); 1024 where it cannot be read."""
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 1024
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _open_error(path: Path, err: OSError) -> InputError:
    if err.errno in (errno.EMFILE, errno.ENFILE):
        return TooManyOpenFiles(
            f"cannot open {path}: too many open files (this process may open {fd_limit()}; "
            "raise the limit with 'ulimit -n', or use fewer DataLoader workers)"
        )
    return InputError(f"{path} could not be memory-mapped ({err.strerror or first_line(err)})")


class MRCStack:
    """A particle stack read through a memory map: images are copied only when asked for.

    Attributes: ``n`` images, each ``D``×``D`` pixels of ``apix`` Å (0.0 if unknown). The header is
    read at construction; the map is made at the first read and holds one file descriptor until
    :meth:`close`, after which the next read maps the file again. A pickled (or forked) stack
    travels without its map.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.n, self.D, self.apix = stack_info(self.path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with mrcfile.open(self.path, mode="r", permissive=True, header_only=True) as mrc:
                    self._dtype = mrcfile.utils.data_dtype_from_header(mrc.header)
                    self._offset = int(mrc.header.nbytes) + int(mrc.header.nsymbt)
        except OSError as err:
            raise _open_error(self.path, err) from None
        except Exception as err:  # noqa: BLE001 - mrcfile raises ValueError variants on junk
            raise InputError(f"{self.path} could not be memory-mapped ({first_line(err)})") from None
        self._map: mmap.mmap | None = None
        self._data: np.ndarray | None = None
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"MRCStack({str(self.path)!r}, n={self.n}, D={self.D}, apix={self.apix:.4f})"

    @property
    def is_open(self) -> bool:
        """Whether this process holds the map (and its file descriptor)."""
        return self._data is not None and self._pid == os.getpid()

    def open(self) -> None:
        """Map the file now (a no-op if mapped). TooManyOpenFiles if no descriptor is left."""
        if self._pid != os.getpid():  # a map inherited through fork: release this process's copy
            self.close()
            self._pid = os.getpid()
        if self._data is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)  # keeps its own duplicate of fd
            finally:
                os.close(fd)
        except OSError as err:
            raise _open_error(self.path, err) from None
        try:
            data = np.frombuffer(mapped, self._dtype, self.n * self.D * self.D, self._offset)
        except ValueError:
            mapped.close()
            raise InputError(f"{self.path} is shorter than its header says (was it changed while open?)") from None
        self._map, self._data = mapped, data.reshape(self.n, self.D, self.D)

    def _check(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise InputError(f"{self.path}: image indices must be integers, got {indices.dtype}")
        indices = indices.astype(np.int64, copy=False).ravel()
        if len(indices) and (indices.min() < 0 or indices.max() >= self.n):
            bad = (indices < 0) | (indices >= self.n)
            raise InputError(
                f"{self.path}: image index {int(indices[bad][0])} is out of range (the stack holds {self.n} images)"
            )
        return indices

    def _array(self) -> np.ndarray:
        self.open()
        assert self._data is not None
        return self._data

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Images ``(B, D, D)`` float32 for 0-based ``indices`` (B,), in the requested order.

        The file is read in sorted index order (fewer seeks); duplicates are allowed. Runs of
        consecutive indices are copied as one slice: one contiguous copy per run is several times
        faster than numpy's fancy indexing of a memory map (which gathers element by element).
        """
        indices = self._check(indices)
        out = np.empty((len(indices), self.D, self.D), dtype=np.float32)
        self.read_into(indices, out, np.arange(len(indices)))
        return out

    def _runs(self, indices: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
        """Target rows in file order, and ``(first image, start, stop)`` per run of consecutive
        indices: images ``first, first + 1, ...`` go to rows ``targets[start:stop]``."""
        indices, rows = self._check(indices), np.asarray(rows).ravel()
        if len(indices) <= 1:  # one image: the common case with one stack per micrograph
            return rows, [(int(indices[0]), 0, 1)] if len(indices) else []
        sort = np.argsort(indices, kind="stable")
        ordered, targets = indices[sort], rows[sort]
        starts = [0, *(np.flatnonzero(ordered[1:] - ordered[:-1] != 1) + 1).tolist()]
        return targets, list(zip(ordered[starts].tolist(), starts, [*starts[1:], len(ordered)]))

    def read_into(self, indices: np.ndarray, out: np.ndarray, rows: np.ndarray) -> None:
        """Copy image ``indices[j]`` into ``out[rows[j]]`` for every j (``out`` float32 (M, D, D)),
        without an intermediate array, through the map (made if needed); see :meth:`get`."""
        targets, runs = self._runs(indices, rows)
        if not runs:
            return
        data, target_list = self._array(), targets.tolist()
        for first, a, b in runs:
            if b - a == 1:
                out[target_list[a]] = data[first]
            else:
                out[targets[a:b]] = data[first : first + (b - a)]

    def read_unmapped(self, indices: np.ndarray, out: np.ndarray, rows: np.ndarray) -> None:
        """As :meth:`read_into`, but through one file descriptor held for this call only and one
        ``preadv`` per run of consecutive images, without mapping the file (cheaper than a map
        for a stack read once: the map costs ~4× more to make than the reads)."""
        targets, runs = self._runs(indices, rows)
        if not runs:
            return
        size = self.D * self.D * self._dtype.itemsize
        direct = self._dtype == np.float32 and out.dtype == np.float32 and out[0].flags.c_contiguous
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as err:
            raise _open_error(self.path, err) from None
        try:
            for first, a, b in runs:
                for k in range(a, b, 512):  # within IOV_MAX buffers per call
                    part = targets[k : min(k + 512, b)]
                    buffers = [out[t] for t in part.tolist()] if direct else [bytearray(len(part) * size)]
                    if os.preadv(fd, buffers, self._offset + (first + k - a) * size) < len(part) * size:
                        raise InputError(f"{self.path} is shorter than its header says (was it changed?)")
                    if not direct:
                        out[part] = np.frombuffer(buffers[0], self._dtype).reshape(-1, self.D, self.D)
        finally:
            os.close(fd)

    def read_all(self) -> np.ndarray:
        """All images ``(n, D, D)`` float32, read into memory."""
        return np.array(self._array(), dtype=np.float32)

    def close(self) -> None:
        """Release the map and its file descriptor (the next read maps the file again)."""
        mapped, self._map, self._data = self._map, None, None
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:  # a view of it is still alive: it is unmapped when that view goes
                pass

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_map"] = state["_data"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def __enter__(self) -> MRCStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_stack_list(txt_path: str | Path) -> list[Path]:
    """Stacks listed in a cryoDRGN-style ``.txt`` file, one path per line.

    Relative paths are relative to the folder of the ``.txt``; blank lines and ``#`` comments are
    skipped. Every listed stack must exist.
    """
    txt_path = check_input(txt_path, "stack list")
    paths = []
    for lineno, line in enumerate(txt_path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        if not p.is_absolute():
            p = txt_path.parent / p
        if not p.exists():
            raise InputError(f"{txt_path} line {lineno}: stack {p} does not exist")
        paths.append(p)
    if not paths:
        raise InputError(f"{txt_path} lists no stacks")
    return paths

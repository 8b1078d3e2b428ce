"""MRC maps and particle stacks (``.mrc``, ``.mrcs``), read with ``mrcfile``.

Conventions:

- A volume is a float32 array indexed ``[z, y, x]`` (mrcfile's numpy order); a stack of images is
  ``(N, D, D)`` indexed ``[i, y, x]``. Images are square; a 2D single-image file is a stack of 1.
- Voxel / pixel sizes are in Å. A map's ``origin_A`` is the header's ``origin`` field ``(x, y, z)``
  in Å, i.e. the position of voxel ``[0, 0, 0]`` (as ChimeraX reads it); when that field is zero
  the ``nxstart/nystart/nzstart`` grid offsets times the voxel size are used instead.
- Stacks are read and written by :mod:`cryoscape.io.mrc_stacks`; :func:`stack_info` reads a stack's
  header here.

Every problem with a file raises :class:`cryoscape.errors.InputError` with a one-line message that
names the file.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import mrcfile
import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.paths import check_input, check_output
from cryoscape.io.staging import staged_file

log = logging.getLogger("cryoscape")

HEADER_BYTES = 1024

# MRC mode -> numpy dtype (little-endian; the header's machine stamp may flip it).
_MODE_DTYPES = {0: np.int8, 1: np.int16, 2: np.float32, 6: np.uint16, 12: np.float16}


# ----------------------------------------------------------------------------------------------
# headers


def _read_header(path: Path):
    """The main header (a numpy record) of an MRC file, without reading its data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=True, header_only=True) as mrc:
                header = mrc.header.copy()
    except Exception as err:  # mrcfile raises ValueError/OSError variants on junk
        raise InputError(f"{path} is not a readable MRC file ({first_line(err)})") from None
    if header is None:
        raise InputError(f"{path} is not a readable MRC file (no valid header)")
    dims = (int(header.nx), int(header.ny), int(header.nz))
    sane = int(header.mode) in _MODE_DTYPES and all(0 <= d < 1_000_000 for d in dims)
    if bytes(header.map) != b"MAP " and not sane:
        raise InputError(f"{path} is not a valid MRC file (no 'MAP ' identifier and an impossible header)")
    return header


def first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _header_dtype(path: Path, header) -> np.dtype:
    mode = int(header.mode)
    if mode not in _MODE_DTYPES:
        raise InputError(f"{path} has MRC mode {mode}, which cryoscape cannot read (supported: 0, 1, 2, 6, 12)")
    dtype = np.dtype(_MODE_DTYPES[mode])
    stamp = bytes(header.machst.tobytes()[:1])
    if stamp == b"\x11":  # big-endian machine stamp
        dtype = dtype.newbyteorder(">")
    return dtype


def _header_voxel_size(header) -> tuple[float, float, float]:
    """(x, y, z) voxel size in Å from ``cella / (mx, my, mz)``; 0.0 where the header has none."""
    cella = header.cella
    sizes = []
    for length, m in ((cella.x, header.mx), (cella.y, header.my), (cella.z, header.mz)):
        sizes.append(float(length) / int(m) if int(m) > 0 and float(length) > 0 else 0.0)
    return sizes[0], sizes[1], sizes[2]


def _check_size(path: Path, header, n_images: int, what: str) -> None:
    """Raise InputError if the file is shorter than its header says."""
    nx, ny = int(header.nx), int(header.ny)
    dtype = _header_dtype(path, header)
    offset = HEADER_BYTES + int(header.nsymbt)
    actual = path.stat().st_size
    expected = offset + n_images * nx * ny * dtype.itemsize
    if actual < expected:
        held = max(actual - offset, 0) // (nx * ny * dtype.itemsize)
        raise InputError(
            f"{path} is truncated: header says {n_images} {what} of {nx}×{ny} but the file holds only {held}"
        )
    if actual > expected:
        log.warning("%s has %d bytes more than its header describes; ignoring them", path, actual - expected)


# ----------------------------------------------------------------------------------------------
# maps


def read_map(path: str | Path, require_cubic: bool = True) -> tuple[np.ndarray, float, np.ndarray]:
    """Read a 3D map.

    Returns ``(volume, voxel_size_A, origin_A)``: ``volume`` float32 ``(D, D, D)`` indexed
    ``[z, y, x]`` (or ``(nz, ny, nx)`` if ``require_cubic`` is False), the voxel size in Å (x axis;
    a warning is logged if the axes differ), and ``origin_A`` float64 ``(3,)`` = (x, y, z) in Å.
    Non-standard axis orders (``mapc/mapr/maps``) are transposed to ``[z, y, x]``.

    Raises InputError for a missing, empty, corrupt or truncated file, a non-cubic map when
    ``require_cubic`` is True, or NaN/Inf values.
    """
    path = check_input(path, "map")
    header = _read_header(path)
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    if min(nx, ny, nz) <= 0:
        raise InputError(f"{path} has an invalid shape in its header ({nx}×{ny}×{nz})")
    _header_dtype(path, header)
    _check_size(path, header, nz, "sections")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None:
                    raise InputError(f"{path} holds no readable data")
                data = np.asarray(data, dtype=np.float32).reshape(nz, ny, nx)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{path} could not be read as an MRC map ({first_line(err)})") from None
    # file axes are (sections, rows, columns) holding the axes (maps, mapr, mapc); 1=x, 2=y, 3=z
    labels = [int(header.maps), int(header.mapr), int(header.mapc)]
    if sorted(labels) == [1, 2, 3] and labels != [3, 2, 1]:
        data = np.ascontiguousarray(np.transpose(data, [labels.index(3), labels.index(2), labels.index(1)]))
    if require_cubic and not (data.shape[0] == data.shape[1] == data.shape[2]):
        shape = "×".join(str(s) for s in data.shape[::-1])
        raise InputError(f"{path} is not a cubic map ({shape} voxels, x×y×z); a cubic map is required")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{path} holds {bad} NaN/Inf voxels")
    vx, vy, vz = _header_voxel_size(header)
    if vx > 0 and (abs(vy - vx) > 1e-3 * vx or abs(vz - vx) > 1e-3 * vx):
        log.warning("%s has anisotropic voxels (%.4f, %.4f, %.4f Å); using %.4f Å", path, vx, vy, vz, vx)
    origin = np.array([header.origin.x, header.origin.y, header.origin.z], dtype=np.float64)
    if not np.any(origin):
        origin = np.array([int(header.nxstart) * vx, int(header.nystart) * vy, int(header.nzstart) * vz])
    return data, float(vx), origin


def write_map(
    path: str | Path,
    volume: np.ndarray,
    voxel_size_A: float,
    origin_A: np.ndarray | None = None,
    force: bool = False,
) -> Path:
    """Write ``volume`` ``[z, y, x]`` as an MRC map (mode 2, float32) that ChimeraX opens in place.

    ``voxel_size_A`` goes into ``cella``; ``origin_A`` = (x, y, z) Å into the header's ``origin``
    (default 0). Header statistics (min, max, mean, rms) are filled. Refuses to overwrite an
    existing file unless ``force``.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise InputError(f"cannot write {path}: a map must be 3D, got shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise InputError(f"cannot write {path}: the volume holds NaN/Inf values")
    if not voxel_size_A > 0:
        raise InputError(f"cannot write {path}: voxel size must be positive, got {voxel_size_A}")
    path = check_output(path, force)
    origin = np.zeros(3) if origin_A is None else np.asarray(origin_A, dtype=np.float64).reshape(3)
    with staged_file(path, force) as staged, mrcfile.new(staged, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
        mrc.set_volume()
        mrc.voxel_size = float(voxel_size_A)
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(v) for v in origin)
        mrc.update_header_stats()
    log.debug("wrote map %s (%s voxels, %.4f Å)", path, volume.shape, voxel_size_A)
    return path


# ----------------------------------------------------------------------------------------------
# stacks


def stack_info(path: str | Path) -> tuple[int, int, float]:
    """``(n_images, D, apix)`` of an image stack, reading only its header.

    ``apix`` is the pixel size in Å from the header (0.0 if the header has none). Checks that the
    images are square and that the file is as long as the header says.
    """
    path = check_input(path, "stack")
    header = _read_header(path)
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    if min(nx, ny) <= 0 or nz < 0:
        raise InputError(f"{path} has an invalid shape in its header ({nx}×{ny}×{nz})")
    n = max(nz, 1)  # a 2D image (nz = 0 in some writers, 1 in most) is a stack of one
    if nx != ny:
        raise InputError(f"{path} holds non-square images ({nx}×{ny} pixels); square images are required")
    _header_dtype(path, header)
    _check_size(path, header, n, "images")
    return n, nx, _header_voxel_size(header)[0]

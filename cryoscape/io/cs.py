"""cryoSPARC ``.cs`` particle files: read, write, and convert poses to cryoscape's conventions.

A ``.cs`` file is a numpy structured array written with ``np.save`` (read here with
``allow_pickle=False``). Fields used by cryoscape (all others are carried through untouched):

==========================  =====================================================================
``blob/path``               bytes, stack path relative to the cryoSPARC project folder; may start
                            with ``>`` (imported data), which is stripped
``blob/idx``                0-based slice in the stack
``blob/shape``              (2,) image size in pixels
``blob/psize_A``            pixel size of the stored images, Å
``alignments3D/pose``       (3,) axis-angle vector (axis × angle), radians
``alignments3D/shift``      (2,) shift in pixels of ``alignments3D/psize_A``
``alignments3D/psize_A``    pixel size of the images the poses were found on, Å; after cryoSPARC's
                            "Downsample particles" it is smaller than ``blob/psize_A`` (absent: the
                            shifts are pixels of ``blob/psize_A``)
``ctf/df1_A``, ``df2_A``    defocus U, V in Å
``ctf/df_angle_rad``        astigmatism angle, radians
``ctf/accel_kv``            voltage, kV
``ctf/cs_mm``               spherical aberration, mm
``ctf/amp_contrast``        amplitude contrast (fraction)
``ctf/phase_shift_rad``     phase shift, radians
``ctf/bfactor``             B-factor, Å² (optional)
==========================  =====================================================================

Conventions (verified against cryoDRGN 4.3.1 ``parse_pose_csparc`` on the fixtures in
``tests/metadata/data`` and against pyem's ``csparc2star``):

- **Rotation.** With ``expm([v]ₓ)`` the standard (right-handed, Rodrigues) rotation of the
  axis-angle vector ``v = alignments3D/pose``, cryoscape's rotation (RELION's Euler matrix A, also
  cryoDRGN's pose matrix) is its transpose: ``A = expm([v]ₓ)ᵀ``, i.e. the rotation by ``-|v|`` about
  ``v/|v|``. cryoDRGN computes exactly ``lie_tools.expmap(pose)ᵀ`` (standard Rodrigues, then
  transposed; it gives NaN for a zero vector, cryoscape gives the identity); pyem's ``expmap`` uses
  the negated cross-product matrix, i.e. builds the same transposed matrix, and hands it to its
  RELION Euler decomposition (``rot2euler``), so pyem's ``_rlnAngle*`` describe the same A.
- **Shift.** ``alignments3D/shift`` has the *same sign* as RELION's origin offset: RELION
  ``_rlnOriginX/Y`` (px) = cryoSPARC shift (px), so ``shifts_A = shift × alignments3D/psize_A``
  (as cryoSPARC's own tools convert them). cryoDRGN writes ``shift / D`` into its pose pickle just
  as it writes ``origin_px / D`` for RELION, and pyem copies the shift into ``_rlnOriginX/Y``
  unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.paths import check_input, check_output
from cryoscape.io.staging import staged_file

POSE_FIELD = "alignments3D/pose"
SHIFT_FIELD = "alignments3D/shift"
SHIFT_APIX_FIELD = "alignments3D/psize_A"
CTF_FIELDS = ("ctf/df1_A", "ctf/df2_A", "ctf/df_angle_rad", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast")
BLOB_FIELDS = ("blob/path", "blob/idx")


def read_cs(path: str | Path) -> np.ndarray:
    """Read a cryoSPARC ``.cs`` file as a 1-D numpy structured array (no pickles are loaded)."""
    path = check_input(path, "cryoSPARC file")
    try:
        records = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise InputError(f"cryoSPARC file {path} is not a readable .cs (numpy) file: {err}") from None
    except Exception as err:  # noqa: BLE001 - truncated/corrupt files raise many types
        raise InputError(f"cryoSPARC file {path} is not a readable .cs (numpy) file ({type(err).__name__})") from None
    if not isinstance(records, np.ndarray) or records.dtype.names is None:
        raise InputError(f"cryoSPARC file {path} holds a plain array, not a cryoSPARC structured array")
    if records.ndim != 1:
        records = records.reshape(-1)
    if len(records) == 0:
        raise InputError(f"cryoSPARC file {path} holds no particles")
    return records


def write_cs(path: str | Path, records: np.ndarray, force: bool = False) -> Path:
    """Write a structured array as a ``.cs`` file (``np.save`` format, the name is kept as given)."""
    if records.dtype.names is None:
        raise ValueError("records must be a numpy structured array")
    path = check_output(path, force)
    with (
        staged_file(path, force) as staged,
        open(staged, "wb") as f,
    ):  # a file object: np.save would append '.npy' to a bare name
        np.save(f, records, allow_pickle=False)
    return path


def require_fields(records: np.ndarray, names, path, what: str) -> None:
    """Raise InputError naming the missing fields if any of ``names`` is absent."""
    missing = [n for n in names if n not in (records.dtype.names or ())]
    if missing:
        raise InputError(f"cryoSPARC file {path} lacks the {what} field(s) {', '.join(missing)}")


def blob_path_strings(records: np.ndarray) -> np.ndarray:
    """``blob/path`` decoded to str with a leading ``>`` removed (object array (N,))."""
    raw = records["blob/path"]
    out = np.empty(len(raw), dtype=object)
    for i, p in enumerate(raw):
        s = p.decode("utf-8") if isinstance(p, bytes) else str(p)
        out[i] = s[1:] if s.startswith(">") else s
    return out


def cs_pose_to_rotations(pose: np.ndarray) -> np.ndarray:
    """(N, 3) cryoSPARC axis-angle (rad) -> (N, 3, 3) cryoscape rotations ``A = expm([v]ₓ)ᵀ``."""
    from cryoscape.imaging.rotations import axis_angle_to_matrix  # noqa: PLC0415

    R = np.asarray(axis_angle_to_matrix(np.asarray(pose, dtype=np.float64)), dtype=np.float64)
    return np.swapaxes(R, -1, -2)


def rotations_to_cs_pose(rotations: np.ndarray) -> np.ndarray:
    """(N, 3, 3) cryoscape rotations -> (N, 3) cryoSPARC axis-angle vectors (rad)."""
    from cryoscape.imaging.rotations import matrix_to_axis_angle  # noqa: PLC0415

    Rt = np.swapaxes(np.asarray(rotations, dtype=np.float64), -1, -2)
    return np.asarray(matrix_to_axis_angle(Rt), dtype=np.float64)


def write_cs_subset(source: str | Path, index: np.ndarray, path: str | Path, force: bool = False) -> Path:
    """Write the particles ``index`` (0-based rows, in that order) of the .cs file ``source`` to
    ``path``, every field kept (paths stay relative to the cryoSPARC project, as cryoSPARC expects)."""
    return write_cs(path, read_cs(source)[np.asarray(index)], force=force)

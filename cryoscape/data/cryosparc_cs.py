"""cryoSPARC ``.cs`` particle files <-> :class:`ParticleTable` (pose and shift conventions in
:mod:`cryoscape.io.cs`; shifts are pixels of ``alignments3D/psize_A`` Å). ``metadata`` keeps every
field, vector fields such as ``alignments3D/pose`` as an object column of 1-D arrays.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.data.particle_rules import (
    check_one_pixel_size,
    common_stack_box,
    file_pixel_sizes,
    first_bad_row,
    relative_to,
    resolve_stacks,
)
from cryoscape.data.particles import CTFOverrides, ParticleTable, resolve_ctf
from cryoscape.errors import InputError
from cryoscape.io import cs as csio

log = logging.getLogger("cryoscape")


# CTFParams field -> (cryoSPARC field, factor to cryoscape's unit)
_CS_CTF = {
    "defocus_u_A": ("ctf/df1_A", 1.0),
    "defocus_v_A": ("ctf/df2_A", 1.0),
    "astig_angle_deg": ("ctf/df_angle_rad", 180.0 / np.pi),
    "voltage_kV": ("ctf/accel_kv", 1.0),
    "cs_mm": ("ctf/cs_mm", 1.0),
    "amplitude_contrast": ("ctf/amp_contrast", 1.0),
    "phase_shift_deg": ("ctf/phase_shift_rad", 180.0 / np.pi),
    "bfactor_A2": ("ctf/bfactor", 1.0),
}


def load_cs(
    path: Path,
    datadir,
    apix,
    check_stacks,
    default_box,
    default_apix,
    *,
    ctf_overrides: CTFOverrides | None = None,
    require_ctf: bool = False,
) -> ParticleTable:
    """Read a cryoSPARC .cs file. Shifts (px) are converted with ``alignments3D/psize_A``, the pixel
    size of the images they were found on (cryoSPARC's own tools do so; it differs from
    ``blob/psize_A`` after "Downsample particles"), falling back to the file's ``blob/psize_A``."""
    rec = csio.read_cs(path)
    fields = rec.dtype.names or ()
    csio.require_fields(rec, csio.BLOB_FIELDS, path, "image")
    _check_finite(rec, path)
    n = len(rec)
    names = csio.blob_path_strings(rec)
    indices = rec["blob/idx"].astype(np.int64)
    image_paths, infos = resolve_stacks(names, indices, path, datadir, check_stacks)
    stack_box = common_stack_box(infos, path)

    box = int(np.asarray(rec["blob/shape"]).reshape(n, -1)[0, 0]) if "blob/shape" in fields else None
    if box is None and stack_box is None:
        box = default_box
        if box is None:
            raise InputError(f"cryoSPARC file {path} has no blob/shape and its stacks cannot be read; pass -D")
    file_apix = rec["blob/psize_A"] if "blob/psize_A" in fields else None
    px = file_pixel_sizes(
        n,
        apix,
        file_apix,
        default_apix,
        f"cryoSPARC file {path} has no blob/psize_A",
        box,
        stack_box,
        path,
        "blob/shape",
    )
    if apix is None:
        check_one_pixel_size(
            px.apix,
            None,
            path,
            "blob/psize_A",
            "select the particles of one pixel size, or downsample them to one",
        )

    rotations = shifts_A = None
    if csio.POSE_FIELD in fields:
        rotations = csio.cs_pose_to_rotations(rec[csio.POSE_FIELD])
        if csio.SHIFT_FIELD in fields:
            align_apix = rec[csio.SHIFT_APIX_FIELD] if csio.SHIFT_APIX_FIELD in fields else px.file_apix
            shifts_A = rec[csio.SHIFT_FIELD].astype(np.float64) * np.asarray(align_apix, dtype=np.float64)[:, None]
        else:
            shifts_A = np.zeros((n, 2))

    ctf = None
    if "ctf/df1_A" in fields:
        columns = {k: rec[f].astype(np.float64) * scale if f in fields else None for k, (f, scale) in _CS_CTF.items()}
        labels = {k: f for k, (f, _) in _CS_CTF.items()}
        ctf = resolve_ctf(columns, labels, ctf_overrides, f"cryoSPARC file {path}", require_ctf)
    elif ctf_overrides is not None and ctf_overrides.given():
        resolve_ctf({}, {"defocus_u_A": "ctf/df1_A"}, ctf_overrides, f"cryoSPARC file {path}", require_ctf)
    return ParticleTable(
        image_paths=image_paths,
        image_indices=indices,
        box_size=px.box,
        apix=px.apix,
        rotations=rotations,
        shifts_A=shifts_A,
        ctf=ctf,
        metadata=_records_to_frame(rec),
    )


def _check_finite(rec: np.ndarray, path: Path) -> None:
    """InputError naming the first particle (1-based) with a NaN/Inf pose, shift, pixel size or CTF value."""
    names = rec.dtype.names or ()
    used = [csio.POSE_FIELD, csio.SHIFT_FIELD, csio.SHIFT_APIX_FIELD, "blob/psize_A"] + [f for f, _ in _CS_CTF.values()]
    for name in (f for f in used if f in names):
        row = first_bad_row(rec[name])
        if row is not None:
            raise InputError(
                f"cryoSPARC file {path}: {name} of particle {row + 1} is {rec[name][row]}, not a finite number"
            )


def _records_to_frame(rec: np.ndarray) -> pd.DataFrame:
    cols = {}
    for name in rec.dtype.names or ():
        values = rec[name]
        if values.ndim > 1:
            obj = np.empty(len(values), dtype=object)
            obj[:] = list(values)
            cols[name] = obj
        else:
            cols[name] = values
    return pd.DataFrame(cols)


def _frame_to_records(df: pd.DataFrame) -> dict[str, np.ndarray]:
    out = {}
    for name in df.columns:
        values = df[name].to_numpy()
        if values.dtype == object and len(values) and isinstance(values[0], np.ndarray):
            values = np.stack(values)
        elif values.dtype == object and len(values) and isinstance(values[0], bytes):
            values = values.astype(bytes)
        elif values.dtype == object and len(values) and isinstance(values[0], str):
            values = np.char.encode(values.astype(str), "utf-8")
        out[name] = values
    return out


def save_cs(path: str | Path, table: ParticleTable, force: bool = False) -> Path:
    """Write ``table`` as a cryoSPARC ``.cs`` file.

    If the table came from a ``.cs`` its fields are all kept (rows subset as in the table) and the
    image, pose (``alignments3D/pose``, ``alignments3D/shift`` in px) and CTF fields are overwritten.
    Otherwise a minimal particle file is built (uid, blob/*, ctf/*, alignments3D/*), with stack paths
    relative to the .cs folder when they lie inside it.
    """
    path = Path(path)
    n = len(table)
    meta = table.metadata
    cols = _frame_to_records(meta) if len(meta) == n and "blob/idx" in meta.columns else {}
    folder = Path(os.path.abspath(path.parent))
    if "uid" not in cols:
        cols["uid"] = np.arange(n, dtype=np.uint64)
    if "blob/path" not in cols:
        stacks, inverse = np.unique(np.asarray(table.image_paths).astype(str), return_inverse=True)
        cols["blob/path"] = np.array([relative_to(p, folder).encode() for p in stacks])[inverse]
    cols["blob/idx"] = np.asarray(table.image_indices, dtype=np.uint32)
    cols["blob/shape"] = np.tile(np.array([table.box_size, table.box_size], dtype=np.uint32), (n, 1))
    cols["blob/psize_A"] = np.asarray(table.apix, dtype=np.float32)
    if table.ctf is not None:
        c = table.ctf.as_dict()
        cols["ctf/accel_kv"] = c["voltage_kV"].astype(np.float32)
        cols["ctf/cs_mm"] = c["cs_mm"].astype(np.float32)
        cols["ctf/amp_contrast"] = c["amplitude_contrast"].astype(np.float32)
        cols["ctf/df1_A"] = c["defocus_u_A"].astype(np.float32)
        cols["ctf/df2_A"] = c["defocus_v_A"].astype(np.float32)
        cols["ctf/df_angle_rad"] = np.deg2rad(c["astig_angle_deg"]).astype(np.float32)
        cols["ctf/phase_shift_rad"] = np.deg2rad(c["phase_shift_deg"]).astype(np.float32)
        cols["ctf/bfactor"] = c["bfactor_A2"].astype(np.float32)
    if table.rotations is not None:
        cols[csio.POSE_FIELD] = csio.rotations_to_cs_pose(table.rotations).astype(np.float32)
        shifts = table.shifts_A if table.shifts_A is not None else np.zeros((n, 2))
        cols[csio.SHIFT_FIELD] = (np.asarray(shifts) / np.asarray(table.apix)[:, None]).astype(np.float32)
        cols[csio.SHIFT_APIX_FIELD] = np.asarray(table.apix, dtype=np.float32)
    dtype = []
    for name, values in cols.items():
        values = np.asarray(values)
        dtype.append((name, values.dtype, values.shape[1:]) if values.ndim > 1 else (name, values.dtype))
    rec = np.zeros(n, dtype=dtype)
    for name, values in cols.items():
        rec[name] = values
    csio.write_cs(path, rec, force=force)
    log.info("wrote %d particles to %s", n, path)
    return path

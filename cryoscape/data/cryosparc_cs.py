"""cryoSPARC ``.cs`` particle files <-> :class:`ParticleTable` (pose and shift conventions in
:mod:`cryoscape.io.cs`). ``metadata`` keeps every field, vector fields such as
``alignments3D/pose`` as an object column of 1-D arrays.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.data.particle_rules import common_stack_box, pixel_sizes, relative_to, rescale_to_stacks, resolve_stacks
from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.errors import InputError
from cryoscape.io import cs as csio

log = logging.getLogger("cryoscape")


def load_cs(path: Path, datadir, apix, check_stacks, default_box, default_apix) -> ParticleTable:
    rec = csio.read_cs(path)
    fields = rec.dtype.names or ()
    csio.require_fields(rec, csio.BLOB_FIELDS, path, "image")
    n = len(rec)
    names = csio.blob_path_strings(rec)
    indices = rec["blob/idx"].astype(np.int64)
    image_paths, infos = resolve_stacks(names, indices, path, datadir, check_stacks)
    stack_box = common_stack_box(infos, path)

    if "blob/shape" in fields:
        box = int(np.asarray(rec["blob/shape"]).reshape(n, -1)[0, 0])
    else:
        box = stack_box if stack_box is not None else default_box
        if box is None:
            raise InputError(f"cryoSPARC file {path} has no blob/shape and its stacks cannot be read; pass -D")
    file_apix = rec["blob/psize_A"] if "blob/psize_A" in fields else None
    apix_arr = pixel_sizes(n, apix, file_apix, default_apix, f"cryoSPARC file {path} has no blob/psize_A")

    rotations = shifts_A = None
    if csio.POSE_FIELD in fields:
        rotations = csio.cs_pose_to_rotations(rec[csio.POSE_FIELD])
        if csio.SHIFT_FIELD in fields:
            shifts_A = rec[csio.SHIFT_FIELD].astype(np.float64) * apix_arr[:, None]
        else:
            shifts_A = np.zeros((n, 2))
    box, apix_arr = rescale_to_stacks(box, stack_box, apix_arr, path, "blob/shape")

    ctf = None
    if all(f in fields for f in csio.CTF_FIELDS):

        def get(name, scale=1.0):
            return rec[name].astype(np.float64) * scale if name in fields else np.zeros(n)

        ctf = CTFParams(
            defocus_u_A=get("ctf/df1_A"),
            defocus_v_A=get("ctf/df2_A"),
            astig_angle_deg=np.rad2deg(get("ctf/df_angle_rad")),
            voltage_kV=get("ctf/accel_kv"),
            cs_mm=get("ctf/cs_mm"),
            amplitude_contrast=get("ctf/amp_contrast"),
            phase_shift_deg=np.rad2deg(get("ctf/phase_shift_rad")),
            bfactor_A2=get("ctf/bfactor"),
        )
    return ParticleTable(
        image_paths=image_paths,
        image_indices=indices,
        box_size=box,
        apix=apix_arr,
        rotations=rotations,
        shifts_A=shifts_A,
        ctf=ctf,
        metadata=_records_to_frame(rec),
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
        cols["alignments3D/psize_A"] = np.asarray(table.apix, dtype=np.float32)
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

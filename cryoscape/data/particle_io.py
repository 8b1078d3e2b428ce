"""Load particle tables from RELION / cryoSPARC / cryoDRGN files and save them back.

Every reader converts to the internal conventions of :mod:`cryoscape.data.particles`:
rotations = RELION's Euler matrix A, shifts in Å with RELION's origin sign, CTF per particle,
``apix`` of the stored images, 0-based image indices into absolute stack paths.

Inputs understood by :func:`load_particles`:

- ``.star`` (RELION 3.0 / 3.1 / 4 / 5). ``rlnImageName`` = ``index@stack`` with a 1-based index.
  Pixel size: ``rlnImagePixelSize``, else ``rlnDetectorPixelSize`` (µm) × 10⁴ / ``rlnMagnification``.
  Shifts: ``rlnOriginX/YAngst`` (Å) or ``rlnOriginX/Y`` (px × apix).
- ``.cs`` (cryoSPARC): see :mod:`cryoscape.io.cs` for the pose and shift conventions.
- an image stack ``.mrcs`` / ``.mrc`` or a ``.txt`` list of stacks, with cryoDRGN ``poses`` / ``ctf``
  pickles (read safely, see :mod:`cryoscape.io.legacy_pickle`). Pickles may also be given with a
  ``.star`` / ``.cs``; they then replace the file's poses / CTF.

Relative stack paths are looked up in ``datadir`` (if given: ``datadir/name``, then
``datadir/basename``), then next to the particle file (``folder/name``, ``folder/basename``).

``metadata`` keeps every column of the input: RELION labels without the leading underscore for
``.star`` (optics columns merged in), cryoSPARC field names for ``.cs`` (vector fields such as
``alignments3D/pose`` as an object column of 1-D arrays).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.data.particles import CTFParams, ParticleTable
from cryoscape.errors import InputError
from cryoscape.io import cs as csio
from cryoscape.io import star as stario
from cryoscape.io.legacy_pickle import (read_cryodrgn_ctf, read_cryodrgn_poses, write_cryodrgn_ctf,
                                        write_cryodrgn_poses)
from cryoscape.io.paths import check_input, check_output

log = logging.getLogger("cryoscape")

STAR_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
STAR_ORIGINS_A = ("rlnOriginXAngst", "rlnOriginYAngst")
STAR_ORIGINS_PX = ("rlnOriginX", "rlnOriginY")
STAR_CTF_REQUIRED = ("rlnDefocusU", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast")
STACK_SUFFIXES = (".mrcs", ".mrc", ".txt")
# Columns that RELION 3.0 had and 3.1 replaced; they are not written back.
_STAR_LEGACY = ("rlnOriginX", "rlnOriginY", "rlnDetectorPixelSize", "rlnMagnification")


# ---------------------------------------------------------------------------------------------
# loading


def load_particles(
    path: str | Path,
    datadir: str | Path | None = None,
    poses: str | Path | None = None,
    ctf: str | Path | None = None,
    apix: float | None = None,
    *,
    require_ctf: bool = False,
    check_stacks: bool = True,
    default_box_size: int | None = None,
    default_apix: float | None = None,
) -> ParticleTable:
    """Read particles from a ``.star``, ``.cs``, or a stack (``.mrcs``/``.mrc``/``.txt``) plus pickles.

    Args:
        path: the particle file.
        datadir: folder in which relative stack paths are looked up first.
        poses: cryoDRGN pose pickle ``(rot (N,3,3), trans (N,2) in fractions of the box)``.
        ctf: cryoDRGN CTF pickle (N, 9).
        apix: pixel size of the stored images, Å; overrides the files.
        require_ctf: raise InputError if no CTF parameters are found (else ``table.ctf`` is None).
        check_stacks: require every referenced stack to exist and to hold the referenced images
            (reads stack headers only). If False, unresolved paths are kept as their first candidate.
        default_box_size: box (px) of the stored images if neither the file nor a stack tells it.
        default_apix: pixel size (Å) if neither the file nor ``apix`` tells it.
    """
    path = check_input(path, "particle file")
    suffix = path.suffix.lower()
    if suffix == ".star":
        table = _load_star(path, datadir, apix, check_stacks, default_box_size, default_apix)
    elif suffix == ".cs":
        table = _load_cs(path, datadir, apix, check_stacks, default_box_size, default_apix)
    elif suffix in STACK_SUFFIXES:
        if poses is None and ctf is None:
            log.info("%s: an image stack without poses or CTF", path)
        table = _load_stack(path, apix, ctf, default_apix)
    else:
        raise InputError(f"particle file {path}: unknown type '{suffix}' (expected .star, .cs, .mrcs, .mrc or .txt)")
    if poses is not None:
        _apply_pose_pickle(table, poses)
    if ctf is not None and suffix not in STACK_SUFFIXES:
        _apply_ctf_pickle(table, ctf)
    if require_ctf and table.ctf is None:
        raise InputError(
            f"particle file {path} has no CTF parameters (needs {', '.join('_' + c for c in STAR_CTF_REQUIRED)} "
            "in a .star, ctf/* fields in a .cs, or a --ctf pickle)"
        )
    log.info("read %d particles from %s (box %d px, %.4g Å/px%s%s)", len(table), path, table.box_size,
             float(np.median(table.apix)), ", poses" if table.rotations is not None else "",
             ", CTF" if table.ctf is not None else "")
    return table


# --- RELION ----------------------------------------------------------------------------------


def _load_star(path: Path, datadir, apix, check_stacks, default_box, default_apix) -> ParticleTable:
    df, _ = stario.read_star(path)
    n = len(df)
    stack_names, indices = _split_image_names(df["rlnImageName"], path)
    image_paths, infos = _resolve_stacks(stack_names, indices, path, datadir, check_stacks)

    box = None
    if "rlnImageSize" in df.columns:
        sizes = df["rlnImageSize"].to_numpy()
        if len(np.unique(sizes)) > 1:
            raise InputError(f"star file {path}: particles have different _rlnImageSize values {np.unique(sizes)[:4]}")
        box = int(sizes[0])
    stack_box = _common_stack_box(infos, path)

    file_apix = _star_apix(df)
    if apix is not None:
        apix_arr = np.full(n, float(apix))
    elif file_apix is not None:
        apix_arr = file_apix
    elif default_apix is not None:
        apix_arr = np.full(n, float(default_apix))
    else:
        raise InputError(f"star file {path} gives no pixel size (_rlnImagePixelSize or _rlnDetectorPixelSize and "
                         "_rlnMagnification); pass --apix")

    if box is None:
        box = stack_box if stack_box is not None else default_box
        if box is None:
            raise InputError(f"star file {path} gives no _rlnImageSize and its stacks cannot be read; pass -D")
    shifts_A = None
    if all(c in df.columns for c in STAR_ORIGINS_A):
        shifts_A = df[list(STAR_ORIGINS_A)].to_numpy(dtype=np.float64)
    elif all(c in df.columns for c in STAR_ORIGINS_PX):
        shifts_A = df[list(STAR_ORIGINS_PX)].to_numpy(dtype=np.float64) * apix_arr[:, None]

    if stack_box is not None and stack_box != box:
        # The stacks were downsampled after the star was written: keep Å values, rescale apix.
        log.warning("%s: _rlnImageSize is %d but the stacks are %d px; pixel size scaled by %d/%d",
                     path, box, stack_box, box, stack_box)
        apix_arr = apix_arr * box / stack_box
        box = stack_box

    rotations = None
    if all(c in df.columns for c in STAR_ANGLES):
        from cryoscape.imaging.rotations import euler_relion_to_matrix  # noqa: PLC0415

        rotations = np.asarray(euler_relion_to_matrix(df[list(STAR_ANGLES)].to_numpy(dtype=np.float64).copy()))
        if shifts_A is None:
            shifts_A = np.zeros((n, 2))
    return ParticleTable(
        image_paths=image_paths, image_indices=indices, box_size=int(box), apix=apix_arr,
        rotations=rotations, shifts_A=shifts_A, ctf=_star_ctf(df), metadata=df,
    )


def _star_apix(df: pd.DataFrame) -> np.ndarray | None:
    if "rlnImagePixelSize" in df.columns:
        return df["rlnImagePixelSize"].to_numpy(dtype=np.float64)
    if "rlnDetectorPixelSize" in df.columns and "rlnMagnification" in df.columns:
        return df["rlnDetectorPixelSize"].to_numpy(dtype=np.float64) * 1e4 / df["rlnMagnification"].to_numpy(dtype=np.float64)
    return None


def _star_ctf(df: pd.DataFrame) -> CTFParams | None:
    if not all(c in df.columns for c in STAR_CTF_REQUIRED):
        return None
    n = len(df)

    def col(name, default):
        return df[name].to_numpy(dtype=np.float64) if name in df.columns else np.full(n, float(default))

    dfu = col("rlnDefocusU", 0.0)
    return CTFParams(
        defocus_u_A=dfu,
        defocus_v_A=df["rlnDefocusV"].to_numpy(dtype=np.float64) if "rlnDefocusV" in df.columns else dfu.copy(),
        astig_angle_deg=col("rlnDefocusAngle", 0.0),
        voltage_kV=col("rlnVoltage", 0.0),
        cs_mm=col("rlnSphericalAberration", 0.0),
        amplitude_contrast=col("rlnAmplitudeContrast", 0.0),
        phase_shift_deg=col("rlnPhaseShift", 0.0),
        bfactor_A2=col("rlnCtfBfactor", 0.0),
    )


def _split_image_names(names: pd.Series, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``index@stack`` (1-based) -> (stack names (N,) object, 0-based indices (N,) int64)."""
    parts = names.astype(str).str.split("@", n=1, expand=True)
    if parts.shape[1] != 2 or parts[1].isna().any():
        bad = names[parts[1].isna()].iloc[0] if parts.shape[1] == 2 else names.iloc[0]
        raise InputError(f"star file {path}: image name '{bad}' is not of the form index@stack")
    idx = pd.to_numeric(parts[0], errors="coerce")
    if idx.isna().any() or (idx < 1).any():
        bad = names[idx.isna() | (idx < 1)].iloc[0]
        raise InputError(f"star file {path}: image name '{bad}' has no valid 1-based index before '@'")
    return parts[1].to_numpy(dtype=object), idx.to_numpy(dtype=np.int64) - 1


# --- stack paths -------------------------------------------------------------------------------


def _candidates(name: str, source: Path, datadir) -> list[Path]:
    p = Path(name)
    if p.is_absolute():
        out = [p]
        if datadir is not None:
            out.append(Path(datadir) / p.name)
        return out
    out = []
    if datadir is not None:
        out += [Path(datadir) / p, Path(datadir) / p.name]
    out += [source.parent / p, source.parent / p.name]
    return out


def _resolve_stacks(names: np.ndarray, indices: np.ndarray, source: Path, datadir, check: bool):
    """Absolute stack paths (N,) for stack names (N,); header info per stack if they can be read."""
    uniq, inverse = np.unique(names.astype(str), return_inverse=True)
    max_index = np.full(len(uniq), -1, dtype=np.int64)
    np.maximum.at(max_index, inverse, indices)
    resolved, infos = [], {}
    for k, name in enumerate(uniq):
        cands = _candidates(name, source, datadir)
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            if check:
                count = int(np.sum(inverse == k))
                where = ", ".join(sorted({str(c.parent) for c in cands}))
                raise InputError(
                    f"{source}: image stack {name} (used by {count} particles) not found in {where}"
                    + ("" if datadir is not None else "; pass --datadir")
                )
            resolved.append(Path(os.path.abspath(cands[0])))
            continue
        found = Path(os.path.abspath(found))
        resolved.append(found)
        if check:
            infos[k] = _stack_info(found)
            n_img = infos[k][0]
            if max_index[k] >= n_img:
                raise InputError(
                    f"{source}: image {int(max_index[k]) + 1}@{name} is beyond the end of {found} ({n_img} images)"
                )
    paths = np.array([str(p) for p in resolved], dtype=object)[inverse]
    return paths, infos


def _stack_info(path: Path) -> tuple[int, int, float]:
    from cryoscape.io.mrc import stack_info  # noqa: PLC0415

    return stack_info(path)


def _common_stack_box(infos: dict, source: Path) -> int | None:
    boxes = {info[1] for info in infos.values()}
    if len(boxes) > 1:
        raise InputError(f"{source}: its stacks have different image sizes {sorted(boxes)}")
    return boxes.pop() if boxes else None


# --- cryoSPARC ---------------------------------------------------------------------------------


def _load_cs(path: Path, datadir, apix, check_stacks, default_box, default_apix) -> ParticleTable:
    rec = csio.read_cs(path)
    csio.require_fields(rec, csio.BLOB_FIELDS, path, "image")
    n = len(rec)
    names = csio.blob_path_strings(rec)
    indices = rec["blob/idx"].astype(np.int64)
    image_paths, infos = _resolve_stacks(names, indices, path, datadir, check_stacks)
    stack_box = _common_stack_box(infos, path)

    if "blob/shape" in rec.dtype.names:
        box = int(np.asarray(rec["blob/shape"]).reshape(n, -1)[0, 0])
    else:
        box = stack_box if stack_box is not None else default_box
        if box is None:
            raise InputError(f"cryoSPARC file {path} has no blob/shape and its stacks cannot be read; pass -D")
    if apix is not None:
        apix_arr = np.full(n, float(apix))
    elif "blob/psize_A" in rec.dtype.names:
        apix_arr = rec["blob/psize_A"].astype(np.float64)
    elif default_apix is not None:
        apix_arr = np.full(n, float(default_apix))
    else:
        raise InputError(f"cryoSPARC file {path} has no blob/psize_A; pass --apix")

    rotations = shifts_A = None
    if csio.POSE_FIELD in rec.dtype.names:
        rotations = csio.cs_pose_to_rotations(rec[csio.POSE_FIELD])
        if csio.SHIFT_FIELD in rec.dtype.names:
            shifts_A = rec[csio.SHIFT_FIELD].astype(np.float64) * apix_arr[:, None]
        else:
            shifts_A = np.zeros((n, 2))
    if stack_box is not None and stack_box != box:
        log.warning("%s: blob/shape is %d but the stacks are %d px; pixel size scaled by %d/%d",
                    path, box, stack_box, box, stack_box)
        apix_arr = apix_arr * box / stack_box
        box = stack_box

    ctf = None
    if all(f in rec.dtype.names for f in csio.CTF_FIELDS):
        def get(name, scale=1.0):
            return rec[name].astype(np.float64) * scale if name in rec.dtype.names else np.zeros(n)

        ctf = CTFParams(
            defocus_u_A=get("ctf/df1_A"), defocus_v_A=get("ctf/df2_A"),
            astig_angle_deg=np.rad2deg(get("ctf/df_angle_rad")), voltage_kV=get("ctf/accel_kv"),
            cs_mm=get("ctf/cs_mm"), amplitude_contrast=get("ctf/amp_contrast"),
            phase_shift_deg=np.rad2deg(get("ctf/phase_shift_rad")), bfactor_A2=get("ctf/bfactor"),
        )
    return ParticleTable(image_paths=image_paths, image_indices=indices, box_size=box, apix=apix_arr,
                         rotations=rotations, shifts_A=shifts_A, ctf=ctf, metadata=_records_to_frame(rec))


def _records_to_frame(rec: np.ndarray) -> pd.DataFrame:
    cols = {}
    for name in rec.dtype.names:
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


# --- cryoDRGN-style stacks + pickles ----------------------------------------------------------


def load_stacks(stacks: list[str | Path], apix: float | None = None, default_apix: float | None = None,
                header_apix_optional: bool = False) -> ParticleTable:
    """A pose-free ParticleTable holding every image of the given stacks, in order.

    The pixel size is ``apix`` if given, else each stack header's, else ``default_apix``; with
    ``header_apix_optional`` a stack without one gets 0.0 instead of an error.
    """
    paths, idx, boxes, header_apix = [], [], set(), []
    for s in stacks:
        n_img, D, a = _stack_info(Path(s))
        paths += [str(Path(os.path.abspath(s)))] * n_img
        idx.append(np.arange(n_img))
        boxes.add(D)
        header_apix += [a] * n_img
    if len(boxes) > 1:
        raise InputError(f"the stacks {', '.join(str(s) for s in stacks)} have different image sizes {sorted(boxes)}")
    n = len(paths)
    if apix is not None:
        apix_arr = np.full(n, float(apix))
    elif min(header_apix) > 0 or header_apix_optional:
        apix_arr = np.asarray(header_apix, dtype=np.float64)
    elif default_apix is not None:
        apix_arr = np.full(n, float(default_apix))
    else:
        raise InputError(f"{stacks[0]}: no pixel size in the stack header and no CTF file; pass --apix")
    return ParticleTable(image_paths=np.array(paths, dtype=object), image_indices=np.concatenate(idx),
                         box_size=boxes.pop(), apix=apix_arr)


def _load_stack(path: Path, apix, ctf_path, default_apix) -> ParticleTable:
    from cryoscape.io.mrc import read_stack_list  # noqa: PLC0415

    stacks = read_stack_list(path) if path.suffix.lower() == ".txt" else [path]
    if ctf_path is None:
        return load_stacks(stacks, apix, default_apix)
    table = load_stacks(stacks, apix, default_apix, header_apix_optional=True)
    arr = read_cryodrgn_ctf(ctf_path)
    if len(arr) != len(table):
        raise InputError(f"CTF file {ctf_path} has {len(arr)} rows but {path} holds {len(table)} images")
    if not np.allclose(arr[:, 0], table.box_size):
        raise InputError(f"CTF file {ctf_path} is for D={int(arr[0, 0])} but the images in {path} are {table.box_size} px")
    table.ctf = _ctf_from_array(arr)
    if apix is None:
        table.apix = arr[:, 1].astype(np.float64)
    return table


def _ctf_from_array(arr: np.ndarray) -> CTFParams:
    arr = np.asarray(arr, dtype=np.float64)
    return CTFParams(defocus_u_A=arr[:, 2], defocus_v_A=arr[:, 3], astig_angle_deg=arr[:, 4],
                     voltage_kV=arr[:, 5], cs_mm=arr[:, 6], amplitude_contrast=arr[:, 7],
                     phase_shift_deg=arr[:, 8], bfactor_A2=np.zeros(len(arr)))


def _apply_pose_pickle(table: ParticleTable, poses) -> None:
    rot, trans = read_cryodrgn_poses(poses)
    if len(rot) != len(table):
        raise InputError(f"pose file {poses} has {len(rot)} poses but there are {len(table)} particles")
    table.rotations = rot
    table.shifts_A = (np.zeros((len(rot), 2)) if trans is None
                      else trans * table.box_size * table.apix[:, None])


def _apply_ctf_pickle(table: ParticleTable, ctf) -> None:
    arr = read_cryodrgn_ctf(ctf)
    if len(arr) != len(table):
        raise InputError(f"CTF file {ctf} has {len(arr)} rows but there are {len(table)} particles")
    table.ctf = _ctf_from_array(arr)


# ---------------------------------------------------------------------------------------------
# saving


def save_star(path: str | Path, table: ParticleTable, force: bool = False) -> Path:
    """Write ``table`` as a RELION 3.1 star file (``data_optics`` + ``data_particles``).

    One optics group per distinct (pixel size, voltage, Cs, amplitude contrast, box) and per distinct
    value of the user's other optics columns (e.g. ``rlnOpticsGroupName``, ``rlnMtfFileName``).
    Image names are ``index@stack`` with stacks relative to the star file's folder when they lie
    inside it, absolute otherwise. Every RELION column of ``table.metadata`` is written back; pose
    (angles, ``rlnOriginX/YAngst``) and CTF columns are overwritten with the table's values, and
    RELION 3.0's ``rlnOriginX/Y``, ``rlnDetectorPixelSize`` and ``rlnMagnification`` are dropped.
    """
    path = Path(path)
    n = len(table)
    meta = table.metadata
    keep = [c for c in meta.columns if isinstance(c, str) and c.startswith("rln")] if len(meta) == n else []
    df = meta[keep].reset_index(drop=True).copy() if keep else pd.DataFrame(index=range(n))
    df = df.drop(columns=[c for c in _STAR_LEGACY if c in df.columns])

    folder = Path(os.path.abspath(path.parent))
    stacks, inverse = np.unique(np.asarray(table.image_paths).astype(str), return_inverse=True)
    rel = np.array([_relative_to(p, folder) for p in stacks], dtype=object)[inverse]
    df["rlnImageName"] = [f"{i + 1:06d}@{p}" for i, p in zip(np.asarray(table.image_indices).tolist(), rel)]
    if table.rotations is not None:
        from cryoscape.imaging.rotations import matrix_to_euler_relion  # noqa: PLC0415

        eul = np.asarray(matrix_to_euler_relion(np.asarray(table.rotations, dtype=np.float64)))
        for k, c in enumerate(STAR_ANGLES):
            df[c] = eul[:, k]
    if table.shifts_A is not None:
        for k, c in enumerate(STAR_ORIGINS_A):
            df[c] = np.asarray(table.shifts_A, dtype=np.float64)[:, k]
    df["rlnImagePixelSize"] = np.asarray(table.apix, dtype=np.float64)
    df["rlnImageSize"] = int(table.box_size)
    if "rlnImageDimensionality" not in df.columns:
        df["rlnImageDimensionality"] = 2
    if table.ctf is not None:
        c = table.ctf.as_dict()
        df["rlnDefocusU"], df["rlnDefocusV"] = c["defocus_u_A"], c["defocus_v_A"]
        df["rlnDefocusAngle"], df["rlnPhaseShift"] = c["astig_angle_deg"], c["phase_shift_deg"]
        df["rlnVoltage"], df["rlnSphericalAberration"] = c["voltage_kV"], c["cs_mm"]
        df["rlnAmplitudeContrast"] = c["amplitude_contrast"]
        if "rlnCtfBfactor" in df.columns or np.any(c["bfactor_A2"] != 0):
            df["rlnCtfBfactor"] = c["bfactor_A2"]
    particles, optics = _split_optics(df)
    stario.write_star(path, particles, optics, force=force)
    log.info("wrote %d particles in %d optics group(s) to %s", n, len(optics), path)
    return path


def _relative_to(p, folder: Path) -> str:
    p = Path(p)
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


def _split_optics(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Group per-particle optics values into optics groups (numbered by first appearance)."""
    optics_cols = [c for c in stario.OPTICS_COLUMNS if c in df.columns and c != "rlnOpticsGroup"]
    key = df[optics_cols].copy()
    for c in optics_cols:
        if key[c].dtype.kind == "f":
            key[c] = key[c].round(9)
    codes, _ = pd.factorize(pd.MultiIndex.from_frame(key.astype(str)))
    group = codes + 1
    first = pd.Series(np.arange(len(df))).groupby(group).first()
    optics = df.loc[first.to_numpy(), optics_cols].reset_index(drop=True)
    optics.insert(0, "rlnOpticsGroup", first.index.to_numpy())
    if "rlnOpticsGroupName" not in optics.columns:
        optics.insert(1, "rlnOpticsGroupName", [f"opticsGroup{g}" for g in optics["rlnOpticsGroup"]])
    particles = df.drop(columns=optics_cols + (["rlnOpticsGroup"] if "rlnOpticsGroup" in df.columns else []))
    particles["rlnOpticsGroup"] = group
    return particles, optics


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
        cols["blob/path"] = np.array([_relative_to(p, folder).encode() for p in stacks])[inverse]
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


# ---------------------------------------------------------------------------------------------
# cryoDRGN export


def cryodrgn_arrays(table: ParticleTable, D: int | None = None, apix: float | None = None,
                    amplitude_contrast: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """cryoDRGN's ``(rot (N,3,3), trans (N,2) box fractions, ctf (N,9) or None)`` for images of box D.

    ``D`` (px) defaults to the stored box; ``apix`` (Å/px of the D-pixel images) defaults to the stored
    pixel size × stored box / D (Fourier-cropped stacks). Translations are ``shift_Å / apix / D``,
    which is exactly what ``cryodrgn parse_pose_star -D D --Apix apix`` and ``parse_pose_csparc``
    write, and the CTF rows are ``[D, apix, dfU, dfV, dfang°, kV, Cs, w, phase°]`` as
    ``parse_ctf_star -D D --Apix apix [-w w]`` writes them.
    """
    if table.rotations is None:
        raise InputError("the particles have no poses to export")
    D = int(table.box_size if D is None else D)
    if D <= 0:
        raise InputError(f"box size D must be positive, got {D}")
    n = len(table)
    apix_out = (np.asarray(table.apix, dtype=np.float64) * table.box_size / D if apix is None
                else np.full(n, float(apix)))
    shifts = np.zeros((n, 2)) if table.shifts_A is None else np.asarray(table.shifts_A, dtype=np.float64)
    trans = shifts / apix_out[:, None] / D
    ctf = None
    if table.ctf is not None:
        c = table.ctf.as_dict()
        w = c["amplitude_contrast"] if amplitude_contrast is None else np.full(n, float(amplitude_contrast))
        ctf = np.stack([np.full(n, float(D)), apix_out, c["defocus_u_A"], c["defocus_v_A"], c["astig_angle_deg"],
                        c["voltage_kV"], c["cs_mm"], w, c["phase_shift_deg"]], axis=1)
    return np.asarray(table.rotations, dtype=np.float64), trans, ctf


def export_cryodrgn(table: ParticleTable, D: int | None = None, apix: float | None = None,
                    poses_path: str | Path | None = None, ctf_path: str | Path | None = None,
                    force: bool = False, amplitude_contrast: float | None = None) -> tuple[Path | None, Path | None]:
    """Write cryoDRGN ``poses.pkl`` and/or ``ctf.pkl`` for images of box ``D`` (see :func:`cryodrgn_arrays`)."""
    if poses_path is None and ctf_path is None:
        raise InputError("nothing to export: give a poses and/or a CTF output path")
    if ctf_path is not None and table.ctf is None:
        raise InputError("the particles have no CTF parameters; cannot write a CTF file")
    if poses_path is not None and table.rotations is None:
        raise InputError("the particles have no poses; cannot write a pose file")
    for p in (poses_path, ctf_path):
        if p is not None:
            check_output(p, force)  # fail before writing anything
    rot, trans, ctf = cryodrgn_arrays(table, D, apix, amplitude_contrast)
    out_p = out_c = None
    if poses_path is not None:
        out_p = write_cryodrgn_poses(poses_path, rot, trans, force=force)
        log.info("wrote %d poses (rotations + translations as box fractions, D=%d) to %s", len(rot),
                 int(table.box_size if D is None else D), out_p)
    if ctf_path is not None:
        out_c = write_cryodrgn_ctf(ctf_path, ctf, force=force)
        log.info("wrote %d CTF rows (D=%d, %.4g Å/px) to %s", len(ctf), int(ctf[0, 0]), float(ctf[0, 1]), out_c)
    return out_p, out_c

"""RELION ``.star`` particle files (RELION 3.0 / 3.1 / 4 / 5) <-> :class:`ParticleTable`.

``rlnImageName`` = ``index@stack`` with a 1-based index. Pixel size: ``rlnImagePixelSize``, else
``rlnDetectorPixelSize`` (µm) × 10⁴ / ``rlnMagnification``, of images of ``rlnImageSize`` px (scaled
when the stacks are smaller: downsampled after the file was written). Shifts: ``rlnOriginX/YAngst``
(Å) or ``rlnOriginX/Y`` (pixels of the ``rlnImageSize`` images). CTF: per particle, optics groups
resolved; ``rlnDefocusV`` defaults to U, angle / phase shift / B-factor to 0; voltage, Cs and
amplitude contrast come from the file or :class:`~cryoscape.data.particles.CTFOverrides`.
``metadata`` keeps every column, RELION labels without the leading underscore, optics columns merged
in.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.data.particle_rules import (
    check_one_pixel_size,
    check_optics,
    common_stack_box,
    file_pixel_sizes,
    relative_to,
    resolve_stacks,
)
from cryoscape.data.particles import CTFOverrides, CTFParams, ParticleTable, resolve_ctf
from cryoscape.errors import InputError
from cryoscape.io import star as stario

log = logging.getLogger("cryoscape")

STAR_ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
STAR_ORIGINS_A = ("rlnOriginXAngst", "rlnOriginYAngst")
STAR_ORIGINS_PX = ("rlnOriginX", "rlnOriginY")
STAR_CTF_REQUIRED = ("rlnDefocusU", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast")
_STAR_LEGACY = ("rlnOriginX", "rlnOriginY", "rlnDetectorPixelSize", "rlnMagnification")


# columns read as numbers; a value that is not one is an error that names it
_NUMERIC = (
    *STAR_ANGLES,
    *STAR_ORIGINS_A,
    *STAR_ORIGINS_PX,
    "rlnDefocusU",
    "rlnDefocusV",
    "rlnDefocusAngle",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
    "rlnPhaseShift",
    "rlnCtfBfactor",
    "rlnImagePixelSize",
    "rlnDetectorPixelSize",
    "rlnMagnification",
    "rlnImageSize",
)


def _numbers(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df`` with its numeric columns as numbers; InputError naming the first value that is not a
    finite number."""
    for column in (c for c in _NUMERIC if c in df.columns):
        values = pd.to_numeric(df[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = df[column].iloc[row]
            text = repr(value) if isinstance(value, str) else str(float(value))
            what = "a number" if pd.isna(values.iloc[row]) and isinstance(value, str) else "a finite number"
            raise InputError(f"star file {path}: _{column} of particle {row + 1} is {text}, not {what}")
        df[column] = values
    return df


def load_star(
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
    """Read a RELION star file (see the module docstring); ``require_ctf``: the command uses the CTF,
    so that a CTF the file cannot give (a missing column without its override, premultiplied images,
    defocus in µm) is an InputError rather than a warning."""
    df, optics = stario.read_star(path)
    df = _numbers(df, path)
    n = len(df)
    stack_names, indices = _split_image_names(df["rlnImageName"], path)
    image_paths, infos = resolve_stacks(stack_names, indices, path, datadir, check_stacks)

    box = None
    if "rlnImageSize" in df.columns:
        sizes = df["rlnImageSize"].to_numpy()
        if len(np.unique(sizes)) > 1:
            raise InputError(f"star file {path}: particles have different _rlnImageSize values {np.unique(sizes)[:4]}")
        box = int(sizes[0])
    stack_box = common_stack_box(infos, path)
    if box is None and stack_box is None:
        box = default_box
        if box is None:
            raise InputError(f"star file {path} gives no _rlnImageSize and its stacks cannot be read; pass -D")
    px = file_pixel_sizes(
        n,
        apix,
        _star_apix(df),
        default_apix,
        f"star file {path} gives no pixel size (_rlnImagePixelSize or _rlnDetectorPixelSize and _rlnMagnification)",
        box,
        stack_box,
        path,
        "_rlnImageSize",
    )
    if apix is None:
        check_one_pixel_size(
            px.apix,
            _group_names(df) if "rlnOpticsGroup" in df.columns else None,
            path,
            "optics groups" if "rlnOpticsGroup" in df.columns else "per particle",
            "select the particles of one optics group (relion_star_handler --select rlnOpticsGroup), or "
            "re-extract or rescale them to one pixel size",
        )
    shifts_A = None
    if all(c in df.columns for c in STAR_ORIGINS_A):
        shifts_A = df[list(STAR_ORIGINS_A)].to_numpy(dtype=np.float64)
    elif all(c in df.columns for c in STAR_ORIGINS_PX):
        # RELION 3.0 origins are pixels of the images the file describes (its _rlnImageSize box)
        shifts_A = df[list(STAR_ORIGINS_PX)].to_numpy(dtype=np.float64) * px.file_apix[:, None]

    rotations = None
    if all(c in df.columns for c in STAR_ANGLES):
        from cryoscape.imaging.rotations import euler_relion_to_matrix  # noqa: PLC0415

        rotations = np.asarray(euler_relion_to_matrix(df[list(STAR_ANGLES)].to_numpy(dtype=np.float64).copy()))
        if shifts_A is None:
            shifts_A = np.zeros((n, 2))
    check_optics(df, optics, _group_names(df) if "rlnOpticsGroup" in df.columns else None, path, require_ctf)
    return ParticleTable(
        image_paths=image_paths,
        image_indices=indices,
        box_size=px.box,
        apix=px.apix,
        rotations=rotations,
        shifts_A=shifts_A,
        ctf=_star_ctf(df, f"star file {path}", ctf_overrides, require_ctf),
        metadata=df,
    )


def _group_names(df: pd.DataFrame) -> np.ndarray:
    """Each particle's optics group for messages: 'group 1 (opticsGroup1)'."""
    groups = "group " + df["rlnOpticsGroup"].astype(str)
    if "rlnOpticsGroupName" in df.columns:
        groups = groups + " (" + df["rlnOpticsGroupName"].astype(str) + ")"
    return groups.to_numpy(dtype=object)


def _star_apix(df: pd.DataFrame) -> np.ndarray | None:
    if "rlnImagePixelSize" in df.columns:
        return df["rlnImagePixelSize"].to_numpy(dtype=np.float64)
    if "rlnDetectorPixelSize" in df.columns and "rlnMagnification" in df.columns:
        return (
            df["rlnDetectorPixelSize"].to_numpy(dtype=np.float64)
            * 1e4
            / df["rlnMagnification"].to_numpy(dtype=np.float64)
        )
    return None


# CTFParams field -> RELION column
_STAR_CTF = {
    "defocus_u_A": "rlnDefocusU",
    "defocus_v_A": "rlnDefocusV",
    "astig_angle_deg": "rlnDefocusAngle",
    "voltage_kV": "rlnVoltage",
    "cs_mm": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
    "phase_shift_deg": "rlnPhaseShift",
    "bfactor_A2": "rlnCtfBfactor",
}


def _star_ctf(df: pd.DataFrame, source: str, overrides: CTFOverrides | None, required: bool) -> CTFParams | None:
    columns = {k: df[c].to_numpy(dtype=np.float64) if c in df.columns else None for k, c in _STAR_CTF.items()}
    return resolve_ctf(columns, {k: "_" + c for k, c in _STAR_CTF.items()}, overrides, source, required)


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
    rel = np.array([relative_to(p, folder) for p in stacks], dtype=object)[inverse]
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
        ctf = table.ctf.as_dict()
        df["rlnDefocusU"], df["rlnDefocusV"] = ctf["defocus_u_A"], ctf["defocus_v_A"]
        df["rlnDefocusAngle"], df["rlnPhaseShift"] = ctf["astig_angle_deg"], ctf["phase_shift_deg"]
        df["rlnVoltage"], df["rlnSphericalAberration"] = ctf["voltage_kV"], ctf["cs_mm"]
        df["rlnAmplitudeContrast"] = ctf["amplitude_contrast"]
        if "rlnCtfBfactor" in df.columns or np.any(ctf["bfactor_A2"] != 0):
            df["rlnCtfBfactor"] = ctf["bfactor_A2"]
    particles, optics = _split_optics(df)
    stario.write_star(path, particles, optics, force=force)
    log.info("wrote %d particles in %d optics group(s) to %s", n, len(optics), path)
    return path


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

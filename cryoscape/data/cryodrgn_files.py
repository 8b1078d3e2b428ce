"""cryoDRGN inputs and outputs: bare image stacks (``.mrcs`` / ``.mrc`` or a ``.txt`` list) with
``poses`` / ``ctf`` pickles (read safely, see :mod:`cryoscape.io.legacy_pickle`), and the export of
a :class:`ParticleTable` as cryoDRGN's ``poses.pkl`` and ``ctf.pkl``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoscape.data.particle_rules import check_rotations, first_bad_row, pixel_sizes, stack_info
from cryoscape.data.particles import CTFOverrides, CTFParams, ParticleTable, resolve_ctf
from cryoscape.errors import InputError
from cryoscape.io.legacy_pickle import read_cryodrgn_ctf, read_cryodrgn_poses, write_cryodrgn_ctf, write_cryodrgn_poses
from cryoscape.io.paths import check_output

log = logging.getLogger("cryoscape")


def load_stacks(
    stacks: Sequence[str | Path],
    apix: float | None = None,
    default_apix: float | None = None,
    header_apix_optional: bool = False,
) -> ParticleTable:
    """A pose-free ParticleTable holding every image of the given stacks, in order.

    The pixel size is ``apix`` if given, else each stack header's, else ``default_apix``; with
    ``header_apix_optional`` a stack without one gets 0.0 instead of an error.
    """
    paths, idx, boxes, header_apix = [], [], set(), []
    for s in stacks:
        n_img, D, a = stack_info(Path(s))
        paths += [str(Path(os.path.abspath(s)))] * n_img
        idx.append(np.arange(n_img))
        boxes.add(D)
        header_apix += [a] * n_img
    if len(boxes) > 1:
        raise InputError(f"the stacks {', '.join(str(s) for s in stacks)} have different image sizes {sorted(boxes)}")
    from_headers = header_apix if min(header_apix) > 0 or header_apix_optional else None
    apix_arr = pixel_sizes(
        len(paths), apix, from_headers, default_apix, f"{stacks[0]}: no pixel size in the stack header and no CTF file"
    )
    return ParticleTable(
        image_paths=np.array(paths, dtype=object),
        image_indices=np.concatenate(idx),
        box_size=boxes.pop(),
        apix=apix_arr,
    )


def load_stack(
    path: Path, apix, ctf_path, default_apix, ctf_overrides: CTFOverrides | None = None, require_ctf: bool = False
) -> ParticleTable:
    """The images of a stack (or a .txt list), with the CTF of the cryoDRGN pickle ``ctf_path``."""
    from cryoscape.io.mrc_stacks import read_stack_list  # noqa: PLC0415

    stacks = read_stack_list(path) if path.suffix.lower() == ".txt" else [path]
    if ctf_path is None:
        return load_stacks(stacks, apix, default_apix)
    table = load_stacks(stacks, apix, default_apix, header_apix_optional=True)
    arr = read_cryodrgn_ctf(ctf_path)
    if len(arr) != len(table):
        raise InputError(f"CTF file {ctf_path} has {len(arr)} rows but {path} holds {len(table)} images")
    table.ctf = _ctf_from_array(arr, ctf_path, ctf_overrides, require_ctf)
    if apix is None:
        # cryoDRGN's rule: the box is D × Apix Å whatever the stack's size, so a CTF file made at the
        # original box serves a downsampled stack (its pixel size grows by D / box)
        table.apix = arr[:, 0] * arr[:, 1] / table.box_size
        if not np.allclose(arr[:, 0], table.box_size):
            log.info(
                "%s: CTF file %s was made for a %d-px box at %.4g Å/px; the images are %d px: %.4g Å/px",
                path,
                ctf_path,
                int(arr[0, 0]),
                float(arr[0, 1]),
                table.box_size,
                float(table.apix[0]),
            )
    return table


_PICKLE_COLUMNS = ("defocus_u_A", "defocus_v_A", "astig_angle_deg", "voltage_kV", "cs_mm", "amplitude_contrast")


def _ctf_from_array(arr: np.ndarray, source, overrides: CTFOverrides | None, required: bool) -> CTFParams:
    """CTFParams of a cryoDRGN (N, 9) CTF array (1-based columns 3..9), with the user's overrides."""
    arr = np.asarray(arr, dtype=np.float64)
    row = first_bad_row(arr[:, :2])
    if row is not None:
        raise InputError(f"CTF file {source}: the box or pixel size of particle {row + 1} is not a finite number")
    columns: dict[str, np.ndarray | None] = {name: arr[:, k + 2] for k, name in enumerate(_PICKLE_COLUMNS)}
    columns["phase_shift_deg"] = arr[:, 8]
    labels = {name: f"column {k} ({name})" for k, name in enumerate((*_PICKLE_COLUMNS, "phase_shift_deg"), start=3)}
    labels["bfactor_A2"] = "B-factor"
    ctf = resolve_ctf(columns, labels, overrides, f"CTF file {source}", required)
    assert ctf is not None  # the array always has a defocus column
    return ctf


def apply_pose_pickle(table: ParticleTable, poses) -> None:
    """Replace the table's poses with those of a cryoDRGN pose pickle (rotations must be proper and
    finite, translations finite)."""
    rot, trans = read_cryodrgn_poses(poses)
    if len(rot) != len(table):
        raise InputError(f"pose file {poses} has {len(rot)} poses but there are {len(table)} particles")
    check_rotations(rot, f"pose file {poses}")
    if trans is not None and (row := first_bad_row(trans)) is not None:
        raise InputError(f"pose file {poses}: the translation of particle {row + 1} is {trans[row]}, not finite")
    table.rotations = rot
    table.shifts_A = np.zeros((len(rot), 2)) if trans is None else trans * table.box_size * table.apix[:, None]


def apply_ctf_pickle(table: ParticleTable, ctf, overrides: CTFOverrides | None = None, required: bool = False) -> None:
    """Replace the table's CTF with that of a cryoDRGN CTF pickle (and the user's overrides)."""
    arr = read_cryodrgn_ctf(ctf)
    if len(arr) != len(table):
        raise InputError(f"CTF file {ctf} has {len(arr)} rows but there are {len(table)} particles")
    table.ctf = _ctf_from_array(arr, ctf, overrides, required)


def cryodrgn_arrays(
    table: ParticleTable, D: int | None = None, apix: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """cryoDRGN's ``(rot (N,3,3), trans (N,2) box fractions, ctf (N,9) or None)`` for images of box D.

    ``D`` (px) defaults to the stored box; ``apix`` (Å/px of the D-pixel images) defaults to the stored
    pixel size × stored box / D (Fourier-cropped stacks). Translations are ``shift_Å / apix / D``,
    which is exactly what ``cryodrgn parse_pose_star -D D --Apix apix`` and ``parse_pose_csparc``
    write, and the CTF rows are ``[D, apix, dfU, dfV, dfang°, kV, Cs, w, phase°]`` as
    ``parse_ctf_star -D D --Apix apix`` writes them (its ``-w`` and ``--kv`` ... are
    :class:`~cryoscape.data.particles.CTFOverrides` given when the table is read).
    """
    if table.rotations is None:
        raise InputError("the particles have no poses to export")
    D = int(table.box_size if D is None else D)
    if D <= 0:
        raise InputError(f"box size D must be positive, got {D}")
    n = len(table)
    apix_out = (
        np.asarray(table.apix, dtype=np.float64) * table.box_size / D if apix is None else np.full(n, float(apix))
    )
    shifts = np.zeros((n, 2)) if table.shifts_A is None else np.asarray(table.shifts_A, dtype=np.float64)
    trans = shifts / apix_out[:, None] / D
    ctf = None
    if table.ctf is not None:
        c = table.ctf.as_dict()
        ctf = np.stack(
            [
                np.full(n, float(D)),
                apix_out,
                c["defocus_u_A"],
                c["defocus_v_A"],
                c["astig_angle_deg"],
                c["voltage_kV"],
                c["cs_mm"],
                c["amplitude_contrast"],
                c["phase_shift_deg"],
            ],
            axis=1,
        )
    return np.asarray(table.rotations, dtype=np.float64), trans, ctf


def export_cryodrgn(
    table: ParticleTable,
    D: int | None = None,
    apix: float | None = None,
    poses_path: str | Path | None = None,
    ctf_path: str | Path | None = None,
    force: bool = False,
) -> tuple[Path | None, Path | None]:
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
    rot, trans, ctf = cryodrgn_arrays(table, D, apix)
    out_p = out_c = None
    if poses_path is not None:
        out_p = write_cryodrgn_poses(poses_path, rot, trans, force=force)
        log.info(
            "wrote %d poses (rotations + translations as box fractions, D=%d) to %s",
            len(rot),
            int(table.box_size if D is None else D),
            out_p,
        )
    if ctf_path is not None and ctf is not None:
        out_c = write_cryodrgn_ctf(ctf_path, ctf, force=force)
        log.info("wrote %d CTF rows (D=%d, %.4g Å/px) to %s", len(ctf), int(ctf[0, 0]), float(ctf[0, 1]), out_c)
    return out_p, out_c

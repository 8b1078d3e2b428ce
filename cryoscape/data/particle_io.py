"""Load particle tables from RELION / cryoSPARC / cryoDRGN files and save them back: one entry
point over the per-format modules (:mod:`~cryoscape.data.relion_star`,
:mod:`~cryoscape.data.cryosparc_cs`, :mod:`~cryoscape.data.cryodrgn_files`), which share the rules
of :mod:`~cryoscape.data.particle_rules`.

Every reader converts to the internal conventions of :mod:`cryoscape.data.particles`:
rotations = RELION's Euler matrix A, shifts in Å with RELION's origin sign, CTF per particle,
``apix`` of the stored images, 0-based image indices into absolute stack paths.

Inputs understood by :func:`load_particles`:

- ``.star`` (RELION 3.0 / 3.1 / 4 / 5). ``rlnImageName`` = ``index@stack`` with a 1-based index.
  Pixel size: ``rlnImagePixelSize``, else ``rlnDetectorPixelSize`` (µm) × 10⁴ / ``rlnMagnification``.
  Shifts: ``rlnOriginX/YAngst`` (Å) or ``rlnOriginX/Y`` (px × the pixel size of the file's box).
- ``.cs`` (cryoSPARC): see :mod:`cryoscape.io.cs` for the pose and shift conventions.

A user's ``apix`` is the pixel size of the stored images, taken as is; a file's is scaled when its
box is larger than the stacks' (downsampled after it was written). Particles of one file must share
one pixel size (within 0.1%). Missing CTF columns are filled, present ones replaced, by
:class:`~cryoscape.data.particles.CTFOverrides`. Non-finite values, improper pose matrices and
premultiplied images are refused (see :mod:`~cryoscape.data.particle_rules`).
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
from pathlib import Path

import numpy as np

from cryoscape.data.cryodrgn_files import (
    apply_ctf_pickle,
    apply_pose_pickle,
    cryodrgn_arrays,
    export_cryodrgn,
    load_stack,
    load_stacks,
)
from cryoscape.data.cryosparc_cs import load_cs, save_cs
from cryoscape.data.particles import CTFOverrides, ParticleTable
from cryoscape.data.relion_star import load_star, save_star
from cryoscape.errors import InputError
from cryoscape.io.paths import check_input

log = logging.getLogger("cryoscape")

STACK_SUFFIXES = (".mrcs", ".mrc", ".txt")

__all__ = [
    "CTFOverrides",
    "cryodrgn_arrays",
    "export_cryodrgn",
    "load_particles",
    "load_stacks",
    "save_cs",
    "save_star",
]


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
    ctf_overrides: CTFOverrides | None = None,
) -> ParticleTable:
    """Read particles from a ``.star``, ``.cs``, or a stack (``.mrcs``/``.mrc``/``.txt``) plus pickles.

    Args:
        path: the particle file.
        datadir: folder in which relative stack paths are looked up first.
        poses: cryoDRGN pose pickle ``(rot (N,3,3), trans (N,2) in fractions of the box)``.
        ctf: cryoDRGN CTF pickle (N, 9).
        apix: pixel size of the stored images, Å, taken as is (overrides the files).
        require_ctf: the caller uses the CTF: InputError if no CTF parameters are found (else
            ``table.ctf`` is None), naming a missing column and its option; CTF problems that are
            warnings otherwise (premultiplied images, defocus in µm) are errors.
        check_stacks: require every referenced stack to exist and to hold the referenced images
            (reads stack headers only). If False, unresolved paths are kept as their first candidate.
        default_box_size: box (px) of the stored images if neither the file nor a stack tells it.
        default_apix: pixel size (Å) if neither the file nor ``apix`` tells it.
        ctf_overrides: voltage, Cs, amplitude contrast, phase shift given by the user: each fills the
            file's missing column or replaces it (logged).
    """
    path = check_input(path, "particle file")
    suffix = path.suffix.lower()
    # the file's CTF must be complete only if no pickle replaces it
    file_ctf_required = require_ctf and ctf is None
    if suffix in (".star", ".cs"):
        table = (load_star if suffix == ".star" else load_cs)(
            path,
            datadir,
            apix,
            check_stacks,
            default_box_size,
            default_apix,
            ctf_overrides=ctf_overrides,
            require_ctf=file_ctf_required,
        )
    elif suffix in STACK_SUFFIXES:
        if poses is None and ctf is None:
            log.info("%s: an image stack without poses or CTF", path)
        table = load_stack(path, apix, ctf, default_apix, ctf_overrides, require_ctf)
    else:
        raise InputError(f"particle file {path}: unknown type '{suffix}' (expected .star, .cs, .mrcs, .mrc or .txt)")
    if poses is not None:
        apply_pose_pickle(table, poses)
    if ctf is not None and suffix not in STACK_SUFFIXES:
        apply_ctf_pickle(table, ctf, ctf_overrides, require_ctf)
    if require_ctf and table.ctf is None:
        raise InputError(
            f"particle file {path} has no CTF parameters (needs a defocus: _rlnDefocusU in a .star, ctf/df1_A "
            "in a .cs, or a --ctf pickle)"
        )
    log.info(
        "read %d particles from %s (box %d px, %.4g Å/px%s%s)",
        len(table),
        path,
        table.box_size,
        float(np.median(table.apix)),
        ", poses" if table.rotations is not None else "",
        ", CTF" if table.ctf is not None else "",
    )
    return table

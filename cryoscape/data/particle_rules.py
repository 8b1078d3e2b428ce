"""Rules every particle-file reader shares, written once: where stacks named in a file are found,
the pixel-size precedence (a user's --apix is the stored images', taken as is), the rescale when the
stacks were downsampled after the file was written, one pixel size per file, finite values and
proper rotations.

Relative stack paths are looked up in ``datadir`` (if given: ``datadir/name``, then
``datadir/basename``), then from the folders of :func:`cryoscape.io.paths.relative_path_bases`
(the particle file's folder, the working directory, the folders above the file's: RELION's paths
are relative to its project folder), then as ``folder/basename``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from cryoscape.errors import InputError
from cryoscape.io.paths import relative_path_bases

log = logging.getLogger("cryoscape")


@dataclass
class PixelSizes:
    """Box and pixel sizes of a particle file's images.

    ``box`` (px) and ``apix`` (N,) Å are those of the stored images (the stacks); ``file_apix`` (N,)
    Å is the pixel size of the images the file's pixel-unit values (RELION 3.0 origins) refer to:
    the images of the file's own box, larger than the stacks' pixels when the stacks were
    downsampled after the file was written."""

    box: int
    apix: np.ndarray
    file_apix: np.ndarray


def pixel_sizes(
    n: int, override: float | None, from_file: ArrayLike | None, default: float | None, missing: str
) -> np.ndarray:
    """(n,) pixel sizes in Å: ``override`` (--apix) if given, else the file's, else ``default``;
    InputError with ``missing`` (what the file lacks) when none is known."""
    if override is not None:
        return np.full(n, float(override))
    if from_file is not None:
        return np.asarray(from_file, dtype=np.float64)
    if default is not None:
        return np.full(n, float(default))
    raise InputError(f"{missing}; pass --apix")


def file_pixel_sizes(
    n: int,
    override: float | None,
    from_file: ArrayLike | None,
    default: float | None,
    missing: str,
    box: int | None,
    stack_box: int | None,
    source: Path,
    box_field: str,
) -> PixelSizes:
    """Box and pixel sizes (see :class:`PixelSizes`) of n particles.

    ``override`` (--apix) is the pixel size of the stored images, taken as is. Otherwise the file's
    pixel size ``from_file`` (of its ``box``, the field ``box_field``) is scaled by box / stack_box when
    the stacks (``stack_box`` px) were downsampled after the file was written; else ``default``. An
    InputError with ``missing`` (what the file lacks) when none is known.
    """
    stored_box = stack_box if stack_box is not None else box
    ratio = 1.0 if box is None or stack_box is None else box / stack_box
    if ratio != 1.0:
        log.warning(
            "%s: %s is %d but the stacks are %d px (downsampled): %s",
            source,
            box_field,
            box,
            stack_box,
            "the pixel size given is taken as that of the stacks"
            if override is not None
            else f"pixel size scaled by {box}/{stack_box}",
        )
    assert stored_box is not None, "the caller knows a box (the file's, the stacks' or a default)"
    apix = pixel_sizes(n, override, from_file, default, missing)
    if override is None and from_file is not None:  # the file's: of its own box
        return PixelSizes(int(stored_box), apix * ratio, apix)
    return PixelSizes(int(stored_box), apix, apix / ratio)  # given: of the stored images


def check_one_pixel_size(apix: np.ndarray, groups: np.ndarray | None, source: Path, what: str, fix: str) -> None:
    """InputError when the particles' pixel sizes (N,) Å differ by 0.1% or more: cryoscape models one
    pixel size. ``groups`` (N,) names each particle's group (e.g. 'group 1 (opticsGroup1)'; None: the
    particles are counted by pixel size), ``what`` the field and ``fix`` how to make them one."""
    apix = np.asarray(apix, dtype=np.float64)
    if len(apix) == 0 or np.max(apix) - np.min(apix) < 1e-3 * np.min(apix):
        return
    if groups is None:
        values, counts = np.unique(apix, return_counts=True)
        shown = [f"{c} particles at {v:.4g} Å/px" for v, c in zip(values, counts)]
    else:
        names, first = np.unique(np.asarray(groups).astype(str), return_index=True)
        shown = [f"{names[k]}: {apix[first[k]]:.4g} Å/px" for k in np.argsort(first)]
    raise InputError(
        f"{source}: particles have different pixel sizes ({what}: {', '.join(shown[:6])}"
        f"{', ...' if len(shown) > 6 else ''}); cryoscape models one pixel size and will not guess: {fix}"
    )


def first_bad_row(values: np.ndarray) -> int | None:
    """0-based index of the first row (along axis 0) holding NaN or Inf, or None."""
    bad = ~np.isfinite(np.asarray(values, dtype=np.float64).reshape(len(values), -1)).all(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def check_rotations(rotations: np.ndarray, source: str, tolerance: float = 1e-3) -> None:
    """InputError unless every (3, 3) matrix of ``rotations`` (N, 3, 3) is a finite proper rotation
    (max |R Rᵀ − I| <= ``tolerance``, det R > 0); the message names the worst deviation and its row."""
    rot = np.asarray(rotations, dtype=np.float64)
    row = first_bad_row(rot)
    if row is not None:
        raise InputError(f"{source}: the rotation of particle {row + 1} holds NaN or Inf")
    err = np.abs(rot @ np.swapaxes(rot, -1, -2) - np.eye(3)).max(axis=(1, 2))
    worst = int(np.argmax(err)) if len(err) else 0
    if len(err) and err[worst] > tolerance:
        raise InputError(
            f"{source}: rotations are not orthogonal: |R Rᵀ − I| reaches {err[worst]:.3g} (particle {worst + 1}); "
            "poses from such a file would give a falsely good resolution"
        )
    det = np.linalg.det(rot)
    if len(det) and det.min() < 0:
        raise InputError(f"{source}: the matrix of particle {int(np.argmin(det)) + 1} is a reflection (det −1)")


def relative_to(p, folder: Path) -> str:
    """``p`` relative to ``folder`` when it lies inside it, else as given."""
    p = Path(p)
    try:
        return str(p.relative_to(folder))
    except ValueError:
        return str(p)


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
    out += [base / p for base in relative_path_bases(source)]
    return out + [source.parent / p.name]


def resolve_stacks(names: np.ndarray, indices: np.ndarray, source: Path, datadir, check: bool):
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
            infos[k] = stack_info(found)
            n_img = infos[k][0]
            if max_index[k] >= n_img:
                raise InputError(
                    f"{source}: image {int(max_index[k]) + 1}@{name} is beyond the end of {found} ({n_img} images)"
                )
    paths = np.array([str(p) for p in resolved], dtype=object)[inverse]
    return paths, infos


def stack_info(path: Path) -> tuple[int, int, float]:
    """(number of images, box in px, header pixel size in Å) of a stack, from its header."""
    from cryoscape.io.mrc import stack_info as header_info  # noqa: PLC0415

    return header_info(path)


def common_stack_box(infos: dict, source: Path) -> int | None:
    boxes = {info[1] for info in infos.values()}
    if len(boxes) > 1:
        raise InputError(f"{source}: its stacks have different image sizes {sorted(boxes)}")
    return boxes.pop() if boxes else None


# optics-group labels of RELION 3.1+ that change image formation but that cryoscape does not model,
# with the value each takes when it has no effect
_NOT_MODELLED = {
    "rlnBeamTiltX": ("beam tilt", 0.0),
    "rlnBeamTiltY": ("beam tilt", 0.0),
    "rlnMagMat00": ("anisotropic magnification", 1.0),
    "rlnMagMat01": ("anisotropic magnification", 0.0),
    "rlnMagMat10": ("anisotropic magnification", 0.0),
    "rlnMagMat11": ("anisotropic magnification", 1.0),
    "rlnOddZernike": ("odd Zernike aberrations", None),
    "rlnEvenZernike": ("even Zernike aberrations", None),
}


def check_optics(
    df: pd.DataFrame, optics: pd.DataFrame | None, groups: np.ndarray | None, path: Path, require_ctf: bool
) -> None:
    """RELION optics of a star file's particles ``df`` (optics merged in; ``optics`` the 3.1+ block;
    ``groups`` (N,) each particle's group for messages, or None). Premultiplied images: InputError
    where the CTF is used (it would be applied twice), else a warning. Beam tilt, anisotropic
    magnification and Zernike terms other than the identity / zero: a warning that they are present
    and not modelled."""
    flag = "rlnCtfDataAreCtfPremultiplied"
    if flag in df.columns and (pd.to_numeric(df[flag], errors="coerce") == 1).any():  # 3.0 or 3.1+
        on = (pd.to_numeric(df[flag], errors="coerce") == 1).to_numpy()
        named = sorted(set(np.asarray(groups)[on])) if groups is not None else []
        where = f" in optics {', '.join(named[:4])}" if named else ""
        msg = (
            f"star file {path}: _{flag} is 1{where}: the images are already multiplied by "
            "their CTF, which cryoscape would apply a second time; extract the particles without CTF "
            "premultiplication"
        )
        if require_ctf:
            raise InputError(msg)
        log.warning("%s (the CTF is not used here)", msg)
    table = optics if optics is not None else df
    found: dict[str, list[str]] = {}
    for label, (what, neutral) in _NOT_MODELLED.items():
        if label not in table.columns:
            continue
        values = table[label]
        if neutral is None:  # '[0.1,-0.2,...]': any non-zero coefficient
            active = values.astype(str).map(_any_nonzero)
        else:
            active = (pd.to_numeric(values, errors="coerce").fillna(neutral) - neutral).abs() > 1e-9
        if active.any():
            found.setdefault(what, []).append("_" + label)
    for what, labels in found.items():
        log.warning("star file %s: %s (%s) present and not modelled by cryoscape", path, what, ", ".join(labels))


def _any_nonzero(text: str) -> bool:
    """Whether a RELION list of numbers ('[0.1,0.2]' or '0.1,0.2') has a non-zero one (a word that is
    not a number counts as one)."""
    for word in text.strip().strip("[]").replace(",", " ").split():
        try:
            value = float(word)
        except ValueError:
            return True
        if value != 0 and value == value:  # NaN: an empty value
            return True
    return False

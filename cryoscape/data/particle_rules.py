"""Rules every particle-file reader shares, written once: where stacks named in a file are found,
the pixel-size precedence, and the rescale when the stacks were downsampled after the file was
written.

Relative stack paths are looked up in ``datadir`` (if given: ``datadir/name``, then
``datadir/basename``), then from the folders of :func:`cryoscape.io.paths.relative_path_bases`
(the particle file's folder, the working directory, the folders above the file's: RELION's paths
are relative to its project folder), then as ``folder/basename``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from cryoscape.errors import InputError
from cryoscape.io.paths import relative_path_bases

log = logging.getLogger("cryoscape")


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


def rescale_to_stacks(
    box: int, stack_box: int | None, apix: np.ndarray, source: Path, field: str
) -> tuple[int, np.ndarray]:
    """(box, apix) of the stored images: when the stacks are ``stack_box`` pixels but the file says
    ``box`` (``field``), the stacks were downsampled after it was written: Å values are kept and the
    pixel size scaled by box/stack_box."""
    if stack_box is None or stack_box == box:
        return box, apix
    log.warning(
        "%s: %s is %d but the stacks are %d px; pixel size scaled by %d/%d",
        source,
        field,
        box,
        stack_box,
        box,
        stack_box,
    )
    return stack_box, apix * box / stack_box


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

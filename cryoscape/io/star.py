"""RELION ``.star`` particle files: read 3.0 / 3.1 / 4 / 5, write 3.1 (optics + particles).

Files are parsed by :mod:`cryoscape.io.star_parse` (errors name the line). Column names are RELION
labels without the leading underscore (``rlnImageName``, ``rlnOriginXAngst``, ...). Values are not converted here; units are
RELION's (angles in degrees, defocus in Å, ``rlnOriginX/Y`` in pixels (3.0), ``rlnOriginX/YAngst`` in
Å (3.1+), voltage kV, Cs mm, pixel sizes in Å, ``rlnDetectorPixelSize`` in µm).

Versions:

- 3.0: one data block (usually ``data_`` or ``data_images``), no optics block; optics values
  (voltage, Cs, ...) are particle columns.
- 3.1, 4.x, 5.x: a ``data_optics`` block and a ``data_particles`` block that refers to it through
  ``rlnOpticsGroup``.

:func:`read_star` returns the particles with every optics column copied onto each particle
(a particle's own value wins if both blocks have a column). :func:`write_star` writes RELION 3.1
(``# version 30001``), which RELION 3.1, 4 and 5 read; :func:`write_star_subset` writes a subset in
the version of its source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryoscape.errors import InputError
from cryoscape.io.paths import check_input, check_output, relative_path_bases
from cryoscape.io.staging import staged_file
from cryoscape.io.star_parse import StarBlock, parse_star

# Labels that RELION 3.1+ keeps in the optics block (per optics group, not per particle).
OPTICS_COLUMNS = (
    "rlnOpticsGroup",
    "rlnOpticsGroupName",
    "rlnMtfFileName",
    "rlnMicrographOriginalPixelSize",
    "rlnMicrographPixelSize",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
    "rlnImagePixelSize",
    "rlnImageSize",
    "rlnImageDimensionality",
    "rlnCtfDataAreCtfPremultiplied",
    "rlnBeamTiltX",
    "rlnBeamTiltY",
    "rlnOddZernike",
    "rlnEvenZernike",
    "rlnMagMat00",
    "rlnMagMat01",
    "rlnMagMat10",
    "rlnMagMat11",
    "rlnMtfValue",
    "rlnAmplitudeCorrelationMaskedMaps",
)

# Strings that must stay strings even if they look like numbers.
_STRING_COLUMNS = [
    "rlnImageName",
    "rlnMicrographName",
    "rlnOpticsGroupName",
    "rlnMtfFileName",
    "rlnMicrographMovieName",
    "rlnOddZernike",
    "rlnEvenZernike",
]


def read_star(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read a RELION particle ``.star`` file.

    Returns ``(particles, optics)``: ``particles`` has one row per particle with the optics-group
    columns resolved per particle; ``optics`` is the optics block as read (None for RELION 3.0).
    Raises InputError, naming the line where there is one, for an empty or unparseable file (see
    :mod:`cryoscape.io.star_parse`), a missing particle block, a missing ``rlnImageName`` column, an
    image name that is not ``index@stack`` with a whole index >= 1, or optics groups that are
    referenced but not defined.
    """
    path = check_input(path, "star file")
    blocks = _parse(path)
    block, table = _particle_block(path, blocks)
    particles = table.reset_index(drop=True).copy()
    if len(particles) == 0:
        raise InputError(f"star file {path} holds no particles")
    if "rlnImageName" not in particles.columns:
        raise InputError(f"star file {path} has no _rlnImageName column in its particle table")
    particles["rlnImageName"] = particles["rlnImageName"].astype(str)
    _check_image_names(path, particles["rlnImageName"], block.rows)
    optics = next((b.table for b in blocks if b.name == "optics" and b.table is not None), None)
    if optics is not None:
        optics = optics.reset_index(drop=True).copy()
        particles = _merge_optics(particles, optics, path, block.rows)
    return particles, optics


def _parse(path: Path) -> list[StarBlock]:
    blocks = parse_star(path, _STRING_COLUMNS)
    if not blocks:
        raise InputError(f"star file {path} has no data_ blocks (is it a STAR file?)")
    return blocks


def _particle_block(path: Path, blocks: list[StarBlock]) -> tuple[StarBlock, pd.DataFrame]:
    """``data_particles``, else (RELION 3.0: ``data_`` or ``data_images``) the largest other table;
    returned with its table."""
    tables = [(b, b.table) for b in blocks if b.table is not None and b.name != "optics"]
    named = [bt for bt in tables if bt[0].name == "particles"]
    if named:
        return named[0]
    if not tables:
        found = ", ".join(f"data_{b.name}" for b in blocks)
        raise InputError(f"star file {path} has no particle table (a loop_ block); data blocks found: {found}")
    return max(tables, key=lambda bt: len(bt[1]))


def _check_image_names(path: Path, names: pd.Series, lines: np.ndarray) -> None:
    """Every ``index@stack`` must have a whole index >= 1 (digits only) and a stack."""
    has_at = names.str.contains("@", regex=False)
    bad = has_at & ~names.str.match(r"^\s*0*[1-9][0-9]*@.")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"star file {path} line {lines[row]} (particle {row + 1}): image name '{names.iloc[row]}' "
            "needs a whole 1-based index and a stack, like 000001@stack.mrcs"
        )


def _merge_optics(particles: pd.DataFrame, optics: pd.DataFrame, path: Path, lines: np.ndarray) -> pd.DataFrame:
    """Copy each optics-group column onto the particles of that group (order kept)."""
    if len(optics) == 0:
        raise InputError(f"star file {path} has an empty data_optics block")
    if "rlnOpticsGroup" not in optics.columns:
        raise InputError(f"star file {path}: its data_optics block has no _rlnOpticsGroup column")
    if optics["rlnOpticsGroup"].duplicated().any():
        raise InputError(f"star file {path}: data_optics defines an optics group twice")
    if "rlnOpticsGroup" not in particles.columns:
        if len(optics) > 1:
            raise InputError(
                f"star file {path} defines {len(optics)} optics groups but its particles have no _rlnOpticsGroup"
            )
        particles["rlnOpticsGroup"] = optics["rlnOpticsGroup"].iloc[0]
    groups = particles["rlnOpticsGroup"]
    table = optics.set_index("rlnOpticsGroup")
    undefined = sorted(set(groups.unique()) - set(table.index), key=str)
    if undefined:
        shown = ", ".join(str(g) for g in undefined[:5])
        row = int(np.flatnonzero(~groups.isin(table.index).to_numpy())[0])
        raise InputError(
            f"star file {path} line {lines[row]}: particles refer to optics group(s) {shown} not defined in data_optics"
        )
    for col in table.columns:
        if col not in particles.columns:
            particles[col] = groups.map(table[col]).to_numpy()
    return particles


# ---------------------------------------------------------------------------------------------
# writing


def write_star(path: str | Path, particles: pd.DataFrame, optics: pd.DataFrame, force: bool = False) -> Path:
    """Write a RELION 3.1 star file: ``data_optics`` then ``data_particles``, each ``# version 30001``.

    ``particles`` must have ``rlnImageName`` and ``rlnOpticsGroup``; ``optics`` must define every
    group used. Floats are written in their shortest round-trip form (lossless).
    Column names may be given with or without the leading underscore.
    """
    particles = _strip_underscores(particles)
    optics = _strip_underscores(optics)
    for col in ("rlnImageName", "rlnOpticsGroup"):
        if col not in particles.columns:
            raise ValueError(f"particles need a {col} column")
    if "rlnOpticsGroup" not in optics.columns:
        raise ValueError("optics need a rlnOpticsGroup column")
    missing = set(particles["rlnOpticsGroup"]) - set(optics["rlnOpticsGroup"])
    if missing:
        raise ValueError(f"optics groups {sorted(missing)} are used but not defined")
    path = check_output(path, force)
    with staged_file(path, force) as staged, open(staged, "w") as f:
        f.write("\n# version 30001\n\n")
        _write_block(f, "optics", optics)
        f.write("\n# version 30001\n\n")
        _write_block(f, "particles", particles)
    return path


def _strip_underscores(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns=lambda c: c[1:] if isinstance(c, str) and c.startswith("_") else c)


def _write_block(f, name: str, df: pd.DataFrame) -> None:
    f.write(f"data_{name}\n\nloop_ \n")
    for i, col in enumerate(df.columns, start=1):
        f.write(f"_{col} #{i} \n")
    if len(df):
        formatted = [_format_column(df[c]).tolist() for c in df.columns]
        f.write("\n".join(map(" ".join, zip(*formatted))))
        f.write("\n")
    f.write("\n")


def _format_column(series: pd.Series) -> np.ndarray:
    """Values of one column as an object array of STAR tokens.

    Floats use Python's shortest round-trip representation (lossless); strings with whitespace
    (or empty) are double-quoted.
    """
    values = series.to_numpy()
    if values.dtype.kind == "f":
        return np.array(list(map(repr, values.astype(np.float64).tolist())), dtype=object)
    if values.dtype.kind in "iub":
        return np.array(list(map(str, values.astype(np.int64).tolist())), dtype=object)
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=False)
    tokens = np.array([_format_token(v) for v in uniques], dtype=object)
    return tokens[codes]


def _format_token(v) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    s = v.decode() if isinstance(v, bytes) else str(v)
    if s == "" or any(ch.isspace() for ch in s):
        return '"' + s + '"'
    return s


def _image_base(source: Path, stack: str) -> Path:
    """The folder a relative stack path of ``source`` resolves from (its own folder if none does)."""
    if not stack or os.path.isabs(stack):
        return Path(os.path.abspath(source.parent))
    return next((b for b in relative_path_bases(source) if (b / stack).is_file()), Path(os.path.abspath(source.parent)))


def write_star_subset(source: str | Path, index: np.ndarray, path: str | Path, force: bool = False) -> Path:
    """Write the particles ``index`` (0-based rows of the particle table, in that order) of the star
    file ``source`` to ``path``, every block and column kept as they are (optics groups included,
    and the RELION version: a 3.0 file stays 3.0, without version line or optics block);
    relative stack paths in ``rlnImageName`` keep pointing at the same stacks: paths relative to the
    source's own folder are rewritten relative to the new file's folder; paths relative to a RELION
    project folder (one of :func:`~cryoscape.io.paths.relative_path_bases` above the source) are kept
    as they are when the new file is inside that project, and made absolute otherwise."""
    source = check_input(source, "star file")
    blocks = _parse(source)
    chosen, table = _particle_block(source, blocks)
    particles = table.iloc[np.asarray(index)].reset_index(drop=True).copy()
    path = check_output(path, force)
    own, new = Path(os.path.abspath(source.parent)), Path(os.path.abspath(path.parent))
    if "rlnImageName" in particles.columns and len(particles):
        base = _image_base(source, str(particles["rlnImageName"].iloc[0]).partition("@")[2])
        in_project = base != own and (new == base or base in new.parents)

        def moved(image: str) -> str:
            number, _, stack = str(image).partition("@")
            if not stack or os.path.isabs(stack) or in_project:
                return str(image)  # absolute, or relative to the project the new file is in
            if base == own:
                return f"{number}@{os.path.relpath(base / stack, new)}"
            return f"{number}@{base / stack}"  # out of its project: absolute

        particles["rlnImageName"] = particles["rlnImageName"].astype(str).map(moved)
    with staged_file(path, force) as staged, open(staged, "w") as f:
        for block in blocks:
            # each block as the source wrote it: RELION 3.0 has no version line, 3.1/4 30001, 5 50001
            f.write(f"\n# version {block.version}\n\n" if block.version else "\n")
            if block is chosen:
                _write_block(f, block.name, particles)
            elif block.table is not None:
                _write_block(f, block.name, block.table)
            else:
                f.write(f"data_{block.name}\n\n")
                f.writelines(f"_{key} {_format_token(value)}\n" for key, value in block.pairs.items())
                f.write("\n")
    return path

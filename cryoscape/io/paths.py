"""Output-path guard: nothing the user has is overwritten without ``--force``."""

from __future__ import annotations

import os
from pathlib import Path

from cryoscape.errors import InputError, OverwriteError


def check_output(path: str | Path, force: bool = False) -> Path:
    """Return ``path`` as a Path ready to be written; create its folder.

    Raises OverwriteError if it exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OverwriteError(f"{path} exists; use --force to overwrite it")
    if path.exists() and path.is_dir():
        raise OverwriteError(f"{path} is a folder, not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def relative_path_bases(source: str | Path) -> list[Path]:
    """The folders a relative image path in the particle file ``source`` may be relative to, in the
    order they are tried: the file's own folder (cryoscape's and cryoDRGN's convention), then, as
    RELION resolves paths from its project folder, the working directory and every folder above the
    file's (nearest first: ``Refine3D/job010/run_data.star`` names ``Extract/job005/...``)."""
    folder = Path(os.path.abspath(Path(source).parent))
    bases = [folder, Path(os.getcwd()), *folder.parents]
    return list(dict.fromkeys(bases))


def check_not_an_input(output: str | Path, inputs) -> None:
    """InputError if ``output`` is one of the files ``inputs`` (paths) that the command reads: writing
    it would destroy the data while it is still being read, ``--force`` or not."""
    out = Path(output).resolve()
    for path in {str(p) for p in inputs}:
        if Path(path).resolve() == out:
            raise InputError(f"{output} is also an input of this command; write the output to another file")


def check_input(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing, non-empty file; else raise InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path} is empty")
    return path

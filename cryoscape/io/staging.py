"""Outputs that appear whole or not at all.

Every file a command writes is first written to a hidden sibling (``.NAME.part-XXXX.SUFFIX``, the
real suffix kept so that writers that go by it still work) and renamed onto its name when complete:
a reader, a kill or a full disk never leaves a truncated output under the real name. Inside
:func:`output_transaction` (the command line opens one around every command that does not checkpoint
as it goes) the renames wait for the command's end, so that a command's outputs appear together, and
an error or interrupt removes every staged file: a rerun finds nothing in its way.

An OSError while writing (no space, quota, read-only file system, file-size limit) becomes one
:class:`OutputError` naming the output and the cause.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from cryoscape.errors import CryoscapeError, OverwriteError
from cryoscape.io.paths import check_output


class OutputError(CryoscapeError, OSError):
    """An output could not be written (disk full, read-only, ...); nothing partial was left."""


# The pending renames (commit, discard) of the open transaction; None outside one.
_pending: contextvars.ContextVar[list[tuple[Callable[[], None], Callable[[], None]]] | None] = contextvars.ContextVar(
    "cryoscape_pending_outputs", default=None
)


def _cause(err: OSError) -> str:
    if err.errno == errno.EFBIG:
        return "the file-size limit was reached"
    return err.strerror or str(err)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _sync(path: Path) -> None:
    """Flush a written file to disk, so that the rename publishes complete contents."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(action: Callable[[], None], discard: Callable[[], None]) -> None:
    pending = _pending.get()
    if pending is None:
        action()
    else:
        pending.append((action, discard))


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Turn an OSError (not a CryoscapeError) raised inside into one OutputError naming ``path``."""
    try:
        yield
    except CryoscapeError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write {path}: {_cause(err)}") from err


@contextlib.contextmanager
def staged_file(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path`` (now, or at
    the end of the open transaction), on error it is removed. Raises OverwriteError if ``path``
    exists without ``force``, OutputError on a write failure."""
    with _naming(Path(path)):
        path = check_output(path, force)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.part-", suffix=path.suffix, dir=path.parent)
        os.close(fd)
        temp = Path(name)
        try:
            yield temp
            _sync(temp)
            os.chmod(temp, 0o666 & ~_umask())
        except BaseException:
            _unlink(temp)
            raise
    _commit(lambda: os.replace(temp, path), lambda: _unlink(temp))


@contextlib.contextmanager
def staged_folder(path: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a fresh sibling folder to write into; on success it replaces ``path`` (now, or at the
    end of the open transaction), on any error it is removed. Raises OverwriteError if ``path``
    exists (and is not empty) without ``force``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OverwriteError(f"{path} is a file, not a folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise OverwriteError(f"{path} exists; use --force to overwrite it")
    with _naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def replace() -> None:
        if path.exists():
            shutil.rmtree(path)
        staging.chmod(0o777 & ~_umask())
        staging.rename(path)

    _commit(replace, lambda: shutil.rmtree(staging, ignore_errors=True))


@contextlib.contextmanager
def output_transaction() -> Iterator[None]:
    """Hold back the renames of the files staged inside; publish them all when the block ends
    without error, remove them all otherwise (including on KeyboardInterrupt)."""
    pending: list[tuple[Callable[[], None], Callable[[], None]]] = []
    token = _pending.set(pending)
    try:
        yield
    except BaseException:
        for _, discard in pending:
            discard()
        raise
    finally:
        _pending.reset(token)
    for action, _ in pending:
        action()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

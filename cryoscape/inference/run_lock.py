"""One training at a time in a run folder, and nothing left of a run that never completed an epoch.

The lock is an advisory ``flock`` on the run folder itself (no lock file to go stale): the kernel
drops it when the process ends, however it ends. Two trainings started into one folder at the same
moment would otherwise both write there and leave one's config with the other's weights.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from cryoscape.errors import InputError
from cryoscape.inference.checkpoint import available_epochs

log = logging.getLogger("cryoscape")

# What a new run writes before its first checkpoint (besides hooks' files, which come with epochs).
_FIRST_FILES = ("config.json", "run.log", "log.csv", "loss.png")


@contextlib.contextmanager
def run_lock(run: Path, held: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``run`` (when ``held``; other torchrun ranks pass False).
    InputError at once if another process holds it. Where the file system has no locks (some network
    mounts), a warning says the folder is not protected."""
    if not held:
        yield
        return
    fd = os.open(run, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise InputError(
                    f"{run} is in use by another training; wait for it to finish, or train into another folder"
                ) from None
            log.warning("cannot lock %s (%s): nothing stops two trainings writing into it", run, err.strerror)
        yield
    finally:
        os.close(fd)  # releases the lock


def discard_unfinished_run(run: Path, created: bool) -> None:
    """After a new run failed before its first complete epoch: remove what it wrote, and the folder
    if this run created it and it is now empty, so that the same command can simply be run again."""
    if available_epochs(run):
        return
    for name in _FIRST_FILES:
        with contextlib.suppress(FileNotFoundError):
            (run / name).unlink()
    if created:
        with contextlib.suppress(OSError):
            run.rmdir()  # only if empty

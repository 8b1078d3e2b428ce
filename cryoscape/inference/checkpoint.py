"""Checkpoints: written atomically (temporary file, then rename), read with ``weights_only=True``.

A run folder holds ``weights.EPOCH.pt`` after every epoch; ``latest`` means the highest complete
epoch. A checkpoint holds the model and optimizer states, the epoch, the log rows and the hooks'
states (e.g. pose corrections). No random-number state is needed: the engine seeds the batch order
and the noise of every epoch from (seed, epoch), and the settings are in the run's config.json, so a
killed run resumes exactly where its last epoch ended. The file is flushed to disk (fsync) before
the rename, so that a power cut leaves either the old checkpoint or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import torch

from cryoscape.errors import InputError
from cryoscape.io.staging import staged_file

_NAME = re.compile(r"weights\.(\d+)\.pt$")


def checkpoint_path(run: Path, epoch: int) -> Path:
    return Path(run) / f"weights.{epoch}.pt"


def save_checkpoint(run: Path, epoch: int, state: dict) -> Path:
    """Write ``state`` for ``epoch`` atomically; a crash leaves either the old files or the new one."""
    path = checkpoint_path(run, epoch)
    with staged_file(path, force=True) as staged:
        torch.save(state, staged)
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def fitting(run: Path, epoch: int):
    """Turn a failure to load the checkpoint of ``epoch`` into the model, optimizer and hooks its
    config.json describes into one InputError."""
    try:
        yield
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise InputError(
            f"checkpoint of epoch {epoch} in {run} does not fit its config.json: {str(err).splitlines()[0]}"
        ) from None


def available_epochs(run: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in Path(run).glob("weights.*.pt") if (m := _NAME.search(p.name)))


def load_checkpoint(run: Path, epoch: int | str = "latest") -> tuple[int, dict]:
    """(epoch, state) of ``epoch`` (an int or "latest") in ``run``."""
    epochs = available_epochs(run)
    if not epochs:
        raise InputError(f"{run} holds no checkpoint (weights.N.pt)")
    chosen = epochs[-1] if epoch == "latest" else int(epoch)
    if chosen not in epochs:
        raise InputError(f"{run} has no checkpoint for epoch {chosen} (available: {epochs[0]}..{epochs[-1]})")
    try:
        state = torch.load(checkpoint_path(run, chosen), map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise InputError(f"cannot read checkpoint {checkpoint_path(run, chosen)}: {str(err).splitlines()[0]}") from None
    return chosen, state

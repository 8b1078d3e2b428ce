"""The run format: ``RUN/config.json``, built once when a run starts and never changed afterwards.

It records the model ``kind`` and its settings (a registered :class:`~cryoscape.models.registry.ModelSettings`),
the training settings, what was measured from the data (box, pixel size, normalization, particle
count and files), and the cryoscape version, command line and time that made it. Every reader
goes through :func:`read_run_config`; runs written before this format (one flat table of settings,
cryoscape ≤ 0.1.0) are converted on reading.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

from cryoscape import __version__
from cryoscape.errors import InputError
from cryoscape.models.registry import ModelSettings, dataclass_from, settings_class

FORMAT = 2


@dataclass(frozen=True)
class TrainingSettings:
    """How the engine trains. ``window``: inner radius (fraction of D/2) of the real-space image
    window, 0 for none. ``refine_poses``: per-particle pose corrections from epoch 2 on, SparseAdam
    with step ``pose_lr`` radians (rotations) and ``pose_lr`` · D/3 pixels (shifts). ``amp``: bfloat16
    autocast. ``lr_decay``: factor by which the learning rate falls per epoch (geometrically, step by
    step: lr · lr_decay^(epoch − 1 + fraction of the epoch done); 1 keeps it constant).
    ``epochs``, ``num_workers`` and ``amp`` may change when a run is resumed; the others
    may not."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 1.0
    invert: bool = False
    use_ctf: bool = True
    window: float = 0.0
    refine_poses: bool = False
    pose_lr: float = 3e-3
    amp: bool = False
    num_workers: int = 0
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError("epochs and batch size must be at least 1")
        if not self.lr > 0:
            raise InputError(f"the learning rate must be positive, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"the learning-rate decay per epoch must be in (0, 1], got {self.lr_decay}")
        if self.num_workers < 0:
            raise InputError(f"number of data-loading workers must be >= 0, got {self.num_workers}")
        if self.window and not 0 < self.window < 0.99:
            raise InputError(
                f"the window's inner radius (--window-r) must be in (0, 0.99) of the box radius, got {self.window}"
            )
        if self.refine_poses and not self.pose_lr > 0:
            raise InputError(f"the pose learning rate must be positive, got {self.pose_lr}")


RESUMABLE_CHANGES = ("epochs", "num_workers", "amp")


@dataclass(frozen=True)
class DataSummary:
    """Measured from the data when the run started: box ``D`` (px), median pixel size ``apix`` (Å),
    ``scale`` (std of the centred Hartley images, divided out in training), ``n_particles``, and the
    absolute paths of the particle file and index file (``ind``, "" for none)."""

    D: int
    apix: float
    scale: float
    n_particles: int
    particles: str = ""
    ind: str = ""


class RunOrigin(NamedTuple):
    """Where a run's data came from: the absolute paths of the particle file and index file ("" for
    none), and the command line that started it ("": this process's)."""

    particles: str = ""
    ind: str = ""
    command: str = ""


UNKNOWN_ORIGIN = RunOrigin()


@dataclass(frozen=True)
class RunConfig:
    model: ModelSettings
    training: TrainingSettings
    data: DataSummary
    version: str = __version__
    command: str = ""
    created: str = ""

    @property
    def kind(self) -> str:
        """The registered kind of the run's model family."""
        return self.model.kind

    @property
    def zdim(self) -> int:
        """Width of the per-particle latent the run's maps depend on (0: one map)."""
        return self.model.zdim

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "kind": self.kind,
                "model": asdict(self.model),
                "training": asdict(self.training),
                "data": asdict(self.data),
                "version": self.version,
                "command": self.command,
                "created": self.created,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> RunConfig:
        if "format" not in saved:
            saved = _from_flat(saved)
        elif saved["format"] > FORMAT:
            raise InputError(
                f"config.json was written by cryoscape {saved.get('version')} in run format "
                f"{saved['format']}; this cryoscape ({__version__}) reads format {FORMAT} and older"
            )
        model = settings_class(saved["kind"]).from_values(saved["model"])
        return cls(
            model=model,
            training=dataclass_from(TrainingSettings, saved["training"]),
            data=dataclass_from(DataSummary, saved["data"]),
            version=saved.get("version", ""),
            command=saved.get("command", ""),
            created=saved.get("created", ""),
        )


def new_run_config(model: ModelSettings, training: TrainingSettings, data: DataSummary, command: str = "") -> RunConfig:
    """The config of a run starting now, stamped with the version, the command line (default: this
    process's) and the time."""
    return RunConfig(
        model=model,
        training=training,
        data=data,
        command=command or shlex.join(sys.argv),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _from_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """A config.json of cryoscape 0.1.0 (one flat table, kind homogeneous or vae) in this format."""
    kind = flat.get("kind")
    if kind not in ("homogeneous", "vae"):
        raise InputError(f"config.json names no known model kind (got {kind!r})")
    return {"kind": kind, "model": flat, "training": flat, "data": flat, "version": "0.1.0"}


def read_run_config(run: str | Path) -> RunConfig:
    """The config of a run folder; InputError if it is not one, or of an unknown kind or format."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise InputError(f"{run} is not a run folder (no config.json)")
    try:
        saved = json.loads(path.read_text())
        return RunConfig.from_json(saved)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(f"{path} is not a cryoscape run config: {err}") from None


def _differences(saved, asked, skip: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{f.name} {getattr(saved, f.name)!r} (asked: {getattr(asked, f.name)!r})"
        for f in fields(saved)
        if f.name not in skip and getattr(saved, f.name) != getattr(asked, f.name)
    ]


def resumed_config(saved: RunConfig, model: ModelSettings, training: TrainingSettings) -> RunConfig:
    """The config a resumed run continues with: ``saved`` with the training settings that may change
    (:data:`RESUMABLE_CHANGES`) taken from ``training``; InputError naming every other difference
    between the saved settings and those asked for (``model``, ``training``)."""
    if model.kind != saved.kind:
        differences = [f"model {saved.kind} (asked: {model.kind})"]
    else:
        differences = _differences(saved.model, model)
    differences += _differences(saved.training, training, RESUMABLE_CHANGES)
    if differences:
        raise InputError(
            "--load latest continues a run with its own settings, but the command line changes "
            + "; ".join(differences)
            + ": repeat the run's settings (see its config.json), "
            "or start a new run"
        )
    changes = {name: getattr(training, name) for name in RESUMABLE_CHANGES}
    return replace(saved, training=replace(saved.training, **changes))

"""The registry of model families: kind -> settings class, which builds the model.

A family is one module in :mod:`cryoscape.models` holding its :class:`VolumeModel` and a frozen
settings dataclass decorated with :func:`register`; nothing else names it. The settings are what
``config.json`` records under ``"model"``; :meth:`ModelSettings.build` makes the untrained model.
Every module of the package is imported on the first look-up, so a new family file registers
itself.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from cryoscape.errors import InputError
from cryoscape.models.contract import VolumeModel

_FAMILIES: dict[str, type[ModelSettings]] = {}


@dataclass(frozen=True)
class ModelSettings:
    """Settings of a family (subclasses add fields). Class attributes: ``kind`` (the name in
    config.json), ``command`` (the command that trains it), ``option`` (its name for that command's
    ``--model``), ``default_lr``, ``default_lr_decay`` and ``default_batch_size`` (its learning rate,
    decay per epoch and images per step unless --lr, --lr-decay and -b are given), ``amp_pays``
    (whether --amp is on by default where bfloat16 is native), ``summary`` (for --help)."""

    kind: ClassVar[str]
    command: ClassVar[str]
    option: ClassVar[str]
    default_lr: ClassVar[float] = 1e-4
    default_lr_decay: ClassVar[float] = 1.0
    default_batch_size: ClassVar[int] = 8
    amp_pays: ClassVar[bool] = True  # False: --amp stays off unless asked (networks too small to gain)
    summary: ClassVar[str] = ""

    @property
    def zdim(self) -> int:
        """Width of the per-particle latent the maps depend on (0: one map)."""
        return 0

    def build(self, D: int, seed: int) -> VolumeModel:
        raise NotImplementedError

    def check(self) -> None:
        """InputError for settings that cannot train."""

    def check_particles(self, n: int) -> None:
        """InputError for settings that cannot train on ``n`` particles (e.g. too many classes)."""

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ModelSettings:
        """Settings from a mapping (options or saved JSON); keys that are not fields are ignored."""
        return dataclass_from(cls, values)


def dataclass_from(cls, values: dict[str, Any]):
    """An instance of the dataclass ``cls`` from the entries of ``values`` that are its fields (the
    others are ignored: options of other families, keys of other versions)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


def register(settings: type[ModelSettings]) -> type[ModelSettings]:
    """Class decorator: make a family's settings class known by its ``kind``."""
    _FAMILIES[settings.kind] = settings
    return settings


@functools.cache
def _import_families() -> None:
    import cryoscape.models as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"cryoscape.models.{module.name}")


def settings_class(kind: str) -> type[ModelSettings]:
    """The settings class of a registered kind; InputError naming the known kinds otherwise."""
    _import_families()
    if kind not in _FAMILIES:
        raise InputError(f"unknown model kind {kind!r}; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[kind]


def families_of(command: str) -> dict[str, type[ModelSettings]]:
    """The families a command trains, by their ``--model`` option name (registration order)."""
    _import_families()
    return {s.option: s for s in _FAMILIES.values() if s.command == command}
